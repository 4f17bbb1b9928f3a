//! The walker against real Linux page tables, checked by QEMU's monitor.
//!
//! `scripts/mmu/linux_guest.py --write-fixtures` booted a Debian 6.1 kernel
//! under QEMU (TCG), paused it with a user process current, and saved the
//! page-table pages reachable from CR3 together with the monitor's answers:
//! `gva2gpa` for ~500 addresses and the whole `info tlb`. One guest uses
//! 4-level paging (`qemu64`, KASLR, no 1 GiB pages), the other 5-level
//! (`-cpu max`, `pti=on`, a 1 GiB page in the direct map).
//!
//! The format is described in `tests/fixtures/mod.rs`.

mod fixtures;

use std::fmt::Write as _;

use fixtures::{Fixture, PagesHeldWhole, load};
use vmwalk::walker::info_tlb::InfoTlbLine;
use vmwalk::walker::{FaultKind, VirtAddr};

/// Every address QEMU's `gva2gpa` answered: the same physical address, or
/// unmapped for the same reason the CPU would give (never a failed read,
/// which would mean the walker left the guest's tables).
fn check_translations(fx: &Fixture) -> usize {
    let (mut mapped, mut bad) = (0, Vec::new());
    for &(va, want) in &fx.gva2gpa {
        let got = fx.paging.translate(&fx.tables, VirtAddr(va));
        let ok = match (&got, want) {
            (Ok(t), Some(pa)) => t.pa.0 == pa,
            (Err(f), None) if fx.paging.mode().is_canonical(VirtAddr(va)) => {
                matches!(f.kind, FaultKind::NotPresent { .. })
            }
            (Err(f), None) => matches!(f.kind, FaultKind::NonCanonical { .. }),
            _ => false,
        };
        mapped += usize::from(want.is_some());
        if !ok {
            bad.push(format!("{va:#x}: gva2gpa {want:x?}, walker {got:x?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} translations disagree with gva2gpa:\n{}",
        bad.len(),
        fx.gva2gpa.len(),
        bad.join("\n")
    );
    mapped
}

/// The enumeration, printed like `info tlb`, must be QEMU's text byte for
/// byte; and every leaf must translate back through `translate`.
fn check_enumeration(fx: &Fixture) -> usize {
    let mut text = String::new();
    let mut leaves = 0;
    for leaf in fx.paging.leaves(&fx.tables) {
        let m = leaf.unwrap_or_else(|f| panic!("enumeration fault: {f}"));
        writeln!(text, "{}", InfoTlbLine(&m)).expect("write");
        let last = m.va.0 + (m.size.bytes() - 1);
        for (va, pa) in [(m.va.0, m.pa.0), (last, m.pa.0 + (m.size.bytes() - 1))] {
            let t = fx.paging.translate(&fx.tables, VirtAddr(va));
            assert_eq!(t.map(|t| t.pa.0).ok(), Some(pa), "leaf {m:x?} at {va:#x}");
        }
        leaves += 1;
    }
    // `fold` scans tables in its own loop: the same leaves as `next`, both
    // entry by entry and 64 entries at a time over pages held whole (the
    // 4-level guest points 2 048 directory entries at one page table).
    let stepped = fx.paging.leaves(&fx.tables).collect::<Vec<_>>();
    let mut folded = Vec::new();
    fx.paging
        .leaves(&fx.tables)
        .for_each(|leaf| folded.push(leaf));
    assert_eq!(folded, stepped);
    let whole = PagesHeldWhole::of(&fx.tables);
    let mut folded_whole = Vec::new();
    fx.paging
        .leaves(&whole)
        .for_each(|leaf| folded_whole.push(leaf));
    assert_eq!(folded_whole, stepped, "pages held whole");
    if text != fx.info_tlb {
        let (ours, qemu): (Vec<_>, Vec<_>) =
            (text.lines().collect(), fx.info_tlb.lines().collect());
        let at = ours.iter().zip(&qemu).take_while(|(a, b)| a == b).count();
        panic!(
            "enumeration differs from info tlb (walker {} lines, info tlb {}), first at line {}:\n  info tlb: {}\n  walker:   {}",
            ours.len(),
            qemu.len(),
            at + 1,
            qemu.get(at).unwrap_or(&"<end>"),
            ours.get(at).unwrap_or(&"<end>"),
        );
    }
    leaves
}

fn check(name: &str, min_leaves: usize) {
    let fx = load(name);
    let mapped = check_translations(&fx);
    let leaves = check_enumeration(&fx);
    assert!(leaves >= min_leaves, "{name}: only {leaves} leaves");
    assert!(
        mapped > 100 && mapped < fx.gva2gpa.len(),
        "{name}: {mapped} mapped"
    );
    println!(
        "{name}: {} gva2gpa agree ({mapped} mapped), {leaves} leaves == info tlb",
        fx.gva2gpa.len()
    );
}

#[test]
fn linux_4_level() {
    check("linux-la48.fixture.gz", 10_000);
}

#[test]
fn linux_5_level_pti_with_1g_page() {
    check("linux-la57.fixture.gz", 10_000);
    let fx = load("linux-la57.fixture.gz");
    let gb = fx
        .paging
        .leaves(&fx.tables)
        .filter_map(Result::ok)
        .filter(|m| m.size.bytes() == 1 << 30)
        .count();
    assert!(gb > 0, "the 5-level fixture must contain a 1 GiB page");
}

/// Ranged translation reuses upper-level entries; on real tables (long runs
/// of 4 KiB pages, large pages, holes) every page must still get the
/// mapping `translate` finds.
#[test]
fn ranged_translation_matches_translate() {
    for name in ["linux-la48.fixture.gz", "linux-la57.fixture.gz"] {
        let fx = load(name);
        let mode = fx.paging.mode();
        let mut pages = 0;
        for &(va, _) in fx.gva2gpa.iter().step_by(4) {
            let va = VirtAddr(va);
            if !mode.is_canonical(va) {
                continue;
            }
            let start = mode.linear(va).saturating_sub(300 << 12);
            let end = (mode.linear(va) + (300 << 12)).min((1 << mode.address_bits()) - 1);
            let (first, last) = (mode.canonicalize(start), mode.canonicalize(end));
            let range = || {
                fx.paging
                    .translate_range(&fx.tables, VirtAddr(first), VirtAddr(last))
                    .expect("canonical range")
            };
            // `fold` runs through PTs in its own loop: it must agree with `next`.
            let mut by_fold = Vec::new();
            range().for_each(|page| by_fold.push(page));
            assert_eq!(by_fold, range().collect::<Vec<_>>(), "{name}");
            for (i, page) in by_fold.into_iter().enumerate() {
                let va = VirtAddr(mode.canonicalize((start & !0xfff) + ((i as u64) << 12)));
                let expected = fx.paging.translate(&fx.tables, va).ok();
                assert_eq!(page.va, va);
                assert_eq!(page.mapping, expected.map(|t| t.mapping), "{name} {va}");
                assert_eq!(page.pa(), expected.map(|t| t.pa), "{name} {va}");
                pages += 1;
            }
        }
        println!("{name}: {pages} pages of ranges agree with translate");
    }
}
