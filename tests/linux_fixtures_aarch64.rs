//! The AArch64 walker against real arm64 Linux translation tables, checked by
//! QEMU's MMU and by the reference model.
//!
//! `scripts/mmu/linux_guest_aarch64.py --write-fixtures` booted Debian 12's
//! arm64 installer kernel (Linux 6.1) under QEMU 7.2 (TCG, `-M virt -cpu
//! cortex-a57`), stopped the CPU through the gdbstub and saved the table pages
//! reachable from TTBR0_EL1 and TTBR1_EL1, with QEMU's `gva2gpa` answers for
//! 450-500 addresses, each asked as EL1, as EL1 with PSTATE.PAN and as EL0:
//!
//! - `kpti-el0`: KASLR, so KPTI; stopped at EL0 in a shell loop: TTBR1 is the
//!   trampoline table (a few pages).
//! - `kpti-el1`: the same boot stopped at EL1 while `dd` copies zeros, with
//!   dd's TTBR0: TTBR1 is `swapper_pg_dir`, the linear map in 4 KiB pages
//!   (rodata=full), 2 MiB blocks in the kernel image, vmemmap and PCI space.
//! - `nokpti-el0`: `nokaslr rodata=off`, 2 GiB: no KPTI, so at EL0 (`dd`, in
//!   libc) TTBR1 is `swapper_pg_dir`, whose linear map has 2 MiB blocks and a
//!   1 GiB block.
//!
//! The format is described in `tests/fixtures_aarch64/mod.rs`.
// Arm's register and field names are written as the Arm ARM writes them; the
// reference model is test code on a 64-bit host, where index casts cannot
// truncate and `const` buys nothing (as in tests/walker_aarch64_model.rs).
#![allow(
    clippy::doc_markdown,
    clippy::cast_possible_truncation,
    clippy::missing_const_for_fn
)]

mod fixtures;
mod fixtures_aarch64;
mod model_aarch64;

use fixtures::PagesHeldWhole;
use fixtures_aarch64::{Answers, Fixture, NotInFixture, load};
use model_aarch64::compare::{fold_outcomes, leaf_outcomes, translation_outcome};
use model_aarch64::{Outcome, Regs, enumerate, translate};
use vmwalk::walker::VirtAddr;
use vmwalk::walker::aarch64::{Fault, FaultKind, Paging, Translation, VaRange};

fn paging(fx: &Fixture) -> Paging {
    Paging::from_registers(fx.ttbr0, fx.ttbr1, fx.tcr).expect("Linux's TCR_EL1 is modelled")
}

const fn regs(fx: &Fixture) -> Regs {
    Regs {
        ttbr0: fx.ttbr0,
        ttbr1: fx.ttbr1,
        tcr: fx.tcr,
    }
}

/// What `gva2gpa` must say in each view: at EL1 any translation; with PAN
/// only one without EL0 access (AP\[1\] clear and no APTable\[0\] above: a
/// privileged load there is a Permission fault); at EL0 only one with EL0
/// read access. The access flag does not count: QEMU's debug walks never
/// take an Access flag fault (target/arm/ptw.c skips the check when
/// `ptw->in_debug`), so AF-clear pages answer.
fn expected(result: &Result<Translation, Fault<NotInFixture>>) -> Answers {
    let unmapped = Answers {
        el1: None,
        el1_pan: None,
        el0: None,
    };
    result.as_ref().map_or(unmapped, |t| {
        let el0 = t.mapping.access.unprivileged_read;
        Answers {
            el1: Some(t.pa.0),
            el1_pan: (!el0).then_some(t.pa.0),
            el0: el0.then_some(t.pa.0),
        }
    })
}

/// Counts of what the recorded answers cover.
#[derive(Debug, Default)]
struct Covered {
    el1: usize,
    el1_pan: usize,
    el0: usize,
    access_flag_clear: usize,
    outside_ranges: usize,
    upper: usize,
}

/// Every recorded answer, and the model's outcome for every address. A failed
/// read means the walker left the guest's tables: a failure, never a fault.
fn check_translations(name: &str, fx: &Fixture) -> Covered {
    let (paging, regs, words) = (paging(fx), regs(fx), fx.tables.words());
    let mut covered = Covered::default();
    let mut bad = Vec::new();
    for &(va, qemu) in &fx.gva2gpa {
        let result = paging.translate(&fx.tables, VirtAddr(va));
        let model = translate(&words, regs, va);
        if let Err(Fault {
            kind: FaultKind::ReadFailed { .. },
            ..
        }) = &result
        {
            bad.push(format!(
                "{va:#x}: the walk left the saved tables: {result:x?}"
            ));
        } else if expected(&result) != qemu {
            bad.push(format!("{va:#x}: gva2gpa {qemu:x?}, walker {result:x?}"));
        } else if translation_outcome(&result) != model {
            bad.push(format!("{va:#x}: model {model:x?}, walker {result:x?}"));
        }
        covered.el1 += usize::from(qemu.el1.is_some());
        covered.el1_pan += usize::from(qemu.el1_pan.is_some());
        covered.el0 += usize::from(qemu.el0.is_some());
        covered.access_flag_clear +=
            usize::from(result.as_ref().is_ok_and(|t| !t.mapping.accessed()));
        covered.outside_ranges += usize::from(matches!(model, Outcome::OutOfRange));
        covered.upper += usize::from(VaRange::of(va) == VaRange::Upper);
    }
    assert!(
        bad.is_empty(),
        "{name}: {} of {} addresses disagree:\n{}",
        bad.len(),
        fx.gva2gpa.len(),
        bad.join("\n")
    );
    covered
}

/// Leaves by range and size.
#[derive(Debug, Default)]
struct Leaves {
    ttbr0: usize,
    ttbr1: usize,
    page: usize,
    block_2m: usize,
    block_1g: usize,
}

/// The enumeration must be the model's (leaves, permissions, descriptors,
/// with no fault: Linux's tables hold no reserved encoding and every table
/// is saved), and every leaf must translate back through `translate`.
fn check_enumeration(name: &str, fx: &Fixture) -> Leaves {
    let paging = paging(fx);
    let ours = leaf_outcomes(paging.leaves(&fx.tables));
    let model = enumerate(&fx.tables.words(), regs(fx));
    // `fold`'s own loop, over tables held whole (scanned 64 entries at a
    // time) and read entry by entry, gives the model's leaves too.
    let whole = PagesHeldWhole::of(&fx.tables);
    for folded in [
        fold_outcomes(paging.leaves(&whole)),
        fold_outcomes(paging.leaves(&fx.tables)),
    ] {
        assert!(folded == model, "{name}: fold differs from the model");
    }
    if ours != model {
        let at = ours.iter().zip(&model).take_while(|(a, b)| a == b).count();
        panic!(
            "{name}: enumeration differs from the model (walker {}, model {}), first at {at}:\n  model:  {:x?}\n  walker: {:x?}",
            ours.len(),
            model.len(),
            model.get(at),
            ours.get(at),
        );
    }
    let mut leaves = Leaves::default();
    for leaf in paging.leaves(&fx.tables) {
        let m = leaf.unwrap_or_else(|f| panic!("{name}: enumeration fault: {f}"));
        let last = m.va.0 + (m.size.bytes() - 1);
        for (va, pa) in [(m.va.0, m.pa.0), (last, m.pa.0 + (m.size.bytes() - 1))] {
            let t = paging.translate(&fx.tables, VirtAddr(va));
            assert_eq!(
                t.map(|t| t.pa.0).ok(),
                Some(pa),
                "{name}: leaf {m:x?} at {va:#x}"
            );
        }
        match m.range {
            VaRange::Lower => leaves.ttbr0 += 1,
            VaRange::Upper => leaves.ttbr1 += 1,
        }
        match m.size.bytes() {
            0x1000 => leaves.page += 1,
            0x20_0000 => leaves.block_2m += 1,
            _ => leaves.block_1g += 1,
        }
    }
    leaves
}

fn check(name: &str) -> (Fixture, Covered, Leaves) {
    let fx = load(name);
    let covered = check_translations(name, &fx);
    let leaves = check_enumeration(name, &fx);
    let n = fx.gva2gpa.len();
    // Every view answered both ways, and both ranges and the gap were asked.
    for (view, mapped) in [
        ("el1", covered.el1),
        ("el1-pan", covered.el1_pan),
        ("el0", covered.el0),
    ] {
        assert!(
            mapped > 20 && mapped + 100 < n,
            "{name}: {view} mapped {mapped} of {n}"
        );
    }
    assert!(
        covered.upper > 100 && covered.upper + 100 < n,
        "{name}: {covered:?}"
    );
    assert!(covered.outside_ranges > 20, "{name}: {covered:?}");
    assert!(
        leaves.ttbr0 > 100,
        "{name}: a user process's TTBR0: {leaves:?}"
    );
    println!(
        "{name}: stopped at {}, {n} addresses agree with gva2gpa in 3 views and with the model ({covered:?}); enumeration == model ({leaves:?})",
        fx.stopped
    );
    (fx, covered, leaves)
}

#[test]
fn kpti_el0_trampoline_ttbr1() {
    let (fx, _, leaves) = check("linux-aarch64-kpti-el0.fixture.gz");
    assert_eq!(fx.stopped, "el0");
    // KPTI: at EL0 TTBR1 maps only the trampoline (vectors, data).
    assert!(leaves.ttbr1 > 0 && leaves.ttbr1 < 16, "{leaves:?}");
}

#[test]
fn kpti_el1_swapper_ttbr1() {
    let (fx, _, leaves) = check("linux-aarch64-kpti-el1.fixture.gz");
    assert_eq!(fx.stopped, "el1");
    // The linear map page by page (rodata=full), and 2 MiB blocks elsewhere.
    assert!(leaves.ttbr1 > 200_000 && leaves.block_2m > 0, "{leaves:?}");
}

#[test]
fn nokpti_el0_blocks() {
    let (fx, _, leaves) = check("linux-aarch64-nokpti-el0.fixture.gz");
    assert_eq!(fx.stopped, "el0");
    // Without KPTI the kernel stays mapped at EL0; rodata=off: blocks.
    assert!(
        leaves.ttbr1 > 1000 && leaves.block_2m > 100 && leaves.block_1g > 0,
        "{leaves:?}"
    );
}

/// QEMU's answers for pages whose access flag is clear (Linux clears AF to
/// age user pages): the fixtures must hold some, or the rule above is untested.
#[test]
fn access_flag_clear_pages_are_covered() {
    let total: usize = [
        "linux-aarch64-kpti-el0.fixture.gz",
        "linux-aarch64-kpti-el1.fixture.gz",
        "linux-aarch64-nokpti-el0.fixture.gz",
    ]
    .into_iter()
    .map(|name| check_translations(name, &load(name)).access_flag_clear)
    .sum();
    assert!(total > 0, "no AF-clear page among the recorded addresses");
}
