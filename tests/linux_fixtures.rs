//! The walker against real Linux page tables, checked by QEMU's monitor.
//!
//! `scripts/mmu/linux_guest.py --write-fixtures` booted a Debian 6.1 kernel
//! under QEMU (TCG), paused it with a user process current, and saved the
//! page-table pages reachable from CR3 together with the monitor's answers:
//! `gva2gpa` for ~500 addresses and the whole `info tlb`. One guest uses
//! 4-level paging (`qemu64`, KASLR, no 1 GiB pages), the other 5-level
//! (`-cpu max`, `pti=on`, a 1 GiB page in the direct map).
//!
//! Fixture format (gzip): header lines `key value` (`cr3`, `cr4`, `efer` in
//! hex, `maxphyaddr`, `gbpages`, then `pages N`); N records of a u64 LE
//! physical address and the page's 512 entries, each stored as the wrapping
//! difference from the entry before it (the first from 0); then `gva2gpa N`
//! and N lines `0x<va> 0x<pa>` or `0x<va> -`; then `tlb N` and N lines
//! `<va delta> <pa delta> <flags>` (signed hex, from the previous line, the
//! first from 0), from which QEMU's `info tlb` text is rebuilt exactly.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;

use flate2::read::GzDecoder;
use vmwalk::walker::info_tlb::InfoTlbLine;
use vmwalk::walker::{FaultKind, Paging, PhysAddr, PhysicalMemory, VirtAddr};

/// The saved page-table pages; any other read fails, so a walk that strays
/// outside the tables the guest had shows up as a failed read.
struct Tables(HashMap<u64, Vec<u64>>);

#[derive(Debug, PartialEq, Eq)]
struct NotInFixture(PhysAddr);

impl std::fmt::Display for NotInFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "physical {} is not a saved page-table page", self.0)
    }
}

impl PhysicalMemory for Tables {
    type Error = NotInFixture;

    fn read_u64(&self, addr: PhysAddr) -> Result<u64, NotInFixture> {
        let (page, index) = (addr.0 & !0xfff, (addr.0 & 0xfff) / 8);
        self.0
            .get(&page)
            .and_then(|entries| entries.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(NotInFixture(addr))
    }
}

struct Fixture {
    paging: Paging,
    tables: Tables,
    /// `(va, Some(pa))` or `(va, None)` for `Unmapped`.
    gva2gpa: Vec<(u64, Option<u64>)>,
    info_tlb: String,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex number")
}

/// Signed hex (`-1f`), as Python formats a negative number.
fn signed_hex(s: &str) -> u64 {
    s.strip_prefix('-')
        .map_or_else(|| hex(s), |digits| hex(digits).wrapping_neg())
}

/// Splits off the first line of `data`, returning it as text.
fn line<'a>(data: &mut &'a [u8]) -> &'a str {
    let end = data.iter().position(|&b| b == b'\n').expect("a line");
    let text = std::str::from_utf8(&data[..end]).expect("UTF-8 line");
    *data = &data[end + 1..];
    text
}

/// `key value` from the next line.
fn field<'a>(data: &mut &'a [u8], key: &str) -> &'a str {
    let text = line(data);
    let (k, value) = text.split_once(' ').expect("key value");
    assert_eq!(k, key, "fixture line {text:?}");
    value
}

fn load(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut bytes = Vec::new();
    GzDecoder::new(file).read_to_end(&mut bytes).expect("gzip");
    let data = &mut bytes.as_slice();

    assert_eq!(line(data), "vmwalk-linux-fixture 1");
    let cr3 = hex(field(data, "cr3"));
    let cr4 = hex(field(data, "cr4"));
    let efer = hex(field(data, "efer"));
    let maxphy = field(data, "maxphyaddr").parse().expect("maxphyaddr");
    let gb_pages = field(data, "gbpages") == "1";
    let paging = Paging::from_registers(cr3, cr4, efer)
        .with_max_phys_bits(maxphy)
        .expect("MAXPHYADDR")
        .with_gigabyte_pages(gb_pages);

    let pages: usize = field(data, "pages").parse().expect("page count");
    let mut tables = HashMap::new();
    for record in data[..pages * 4104].chunks_exact(4104) {
        let mut words = record
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let addr = words.next().expect("page address");
        let entries = words
            .scan(0u64, |prev, delta| {
                *prev = prev.wrapping_add(delta);
                Some(*prev)
            })
            .collect();
        tables.insert(addr, entries);
    }
    *data = &data[pages * 4104..];

    let count = field(data, "gva2gpa").parse().expect("count");
    let gva2gpa = (0..count)
        .map(|_| {
            let (va, pa) = line(data).split_once(' ').expect("va pa");
            (hex(va), (pa != "-").then(|| hex(pa)))
        })
        .collect();

    let count: usize = field(data, "tlb").parse().expect("count");
    let (mut va, mut pa) = (0u64, 0u64);
    let mut info_tlb = String::new();
    for _ in 0..count {
        let mut parts = line(data).split(' ');
        let mut next = || parts.next().expect("va pa flags");
        va = va.wrapping_add(signed_hex(next()));
        pa = pa.wrapping_add(signed_hex(next()));
        writeln!(info_tlb, "{va:016x}: {pa:016x} {}", next()).expect("write");
    }
    assert!(data.is_empty(), "trailing fixture data");
    Fixture {
        paging,
        tables: Tables(tables),
        gva2gpa,
        info_tlb,
    }
}

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
    // `fold` scans PTs in its own loop: the same leaves as `next`.
    let mut folded = Vec::new();
    fx.paging
        .leaves(&fx.tables)
        .for_each(|leaf| folded.push(leaf));
    assert_eq!(folded, fx.paging.leaves(&fx.tables).collect::<Vec<_>>());
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
