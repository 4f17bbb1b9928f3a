//! Real `!pte` output, printed by `WinDbg` on real Windows machines and
//! published by others (each file in `tests/windbg/` names its source URL on
//! its first line): every entry's `contains` value must decode to exactly
//! what `WinDbg` printed for it — `pfn` and flag string of a valid entry, the
//! `LARGE PAGE pfn` of a large page, and the lines under `not valid`.
//!
//! The transcripts give no MAXPHYADDR. The two swizzled ones (01, 24) show
//! the mask at bit 45, Windows' `1 << (MAXPHYADDR - 1)` for MAXPHYADDR 46, the
//! common Intel value; all are decoded with that mask, except 23, which
//! predates the mitigation (Windows 10 before 1803, `FireEye`'s white paper).

use std::fs;
use std::path::{Path, PathBuf};

use vmwalk::walker::software_pte::{InvalidPteMask, SoftwarePte};
use vmwalk::walker::windbg::Flags;
use vmwalk::walker::windbg::PteBlock;
use vmwalk::walker::x86_64::{Level, PageTableEntry, PagingMode, Path as Walk, SelfMap, Visited};
use vmwalk::walker::{PhysAddr, VirtAddr};

const MAXPHYADDR: u32 = 46;

fn transcript_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/windbg");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("tests/windbg")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

/// The transcript as `WinDbg` printed it: after the header block, without the
/// comment or abridgement markers its publisher put before each line.
fn body(text: &str) -> Vec<String> {
    let (_, body) = text
        .split_once("\n\n")
        .expect("header, blank line, transcript");
    body.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let unmarked = trimmed
                .strip_prefix("// ")
                .or_else(|| trimmed.strip_prefix("//"))
                .or_else(|| trimmed.strip_prefix("... "))
                .unwrap_or(line);
            unmarked.trim_end().to_owned()
        })
        .collect()
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(&text.replace('`', ""), 16).unwrap_or_else(|_| panic!("hex {text:?}"))
}

fn level(name: &str) -> Level {
    match name {
        "PXE" => Level::Pml4,
        "PPE" => Level::Pdpt,
        "PDE" => Level::Pd,
        "PTE" => Level::Pt,
        other => panic!("no level is called {other}"),
    }
}

/// What `WinDbg` printed for one column of the `pfn` row.
#[derive(Debug)]
enum Shown {
    Valid { pfn: String, flags: String },
    NotValid,
    LargePage { pfn: u64 },
}

fn shown(row: &str) -> Vec<Shown> {
    let tokens: Vec<&str> = row.split_whitespace().collect();
    let mut columns = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        match &tokens[at..] {
            ["pfn", pfn, flags, ..] => {
                columns.push(Shown::Valid {
                    pfn: (*pfn).to_owned(),
                    flags: (*flags).to_owned(),
                });
                at += 3;
            }
            ["not", "valid", ..] => {
                columns.push(Shown::NotValid);
                at += 2;
            }
            ["LARGE", "PAGE", "pfn", pfn, ..] => {
                columns.push(Shown::LargePage { pfn: hex(pfn) });
                at += 4;
            }
            // WinDbg prints the next entry's value here when a walk stops early.
            ["contains", _, ..] => at += 2,
            other => panic!("unexpected pfn row {other:?}"),
        }
    }
    columns
}

/// Checks one transcript; returns how many entries it checked.
fn check(path: &Path, mask: InvalidPteMask) -> usize {
    let name = path.file_name().unwrap().to_string_lossy();
    let text = fs::read_to_string(path).expect("transcript");
    assert!(text.starts_with("source: "), "{name}: cites its source");
    let lines = body(&text);
    let va = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("VA "))
        .map(hex);
    let names_at = lines
        .iter()
        .position(|l| l.contains(" at ") && l.split_whitespace().nth(1) == Some("at"))
        .unwrap_or_else(|| panic!("{name}: no `... at` row"));
    // 26's publisher ran the columns together (`...8018PPE at`).
    let mut levels: Vec<(usize, Level)> = ["PXE", "PPE", "PDE", "PTE"]
        .iter()
        .filter_map(|n| {
            lines[names_at]
                .find(&format!("{n} at"))
                .map(|at| (at, level(n)))
        })
        .collect();
    levels.sort_by_key(|(at, _)| *at);
    let levels: Vec<Level> = levels.into_iter().map(|(_, level)| level).collect();
    let contains_at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("contains "))
        .unwrap_or_else(|| panic!("{name}: no `contains` row"));
    let tokens: Vec<&str> = lines[contains_at].split_whitespace().collect();
    let values: Vec<u64> = tokens
        .windows(2)
        .filter(|pair| pair[0] == "contains")
        .map(|pair| hex(pair[1]))
        .collect();
    let mut columns = shown(&lines[contains_at + 1]);
    let mut details: Vec<String> = lines[contains_at + 2..]
        .iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    // A walk that stops at a zero entry prints `not valid` on a line of its own.
    if columns.len() < values.len() && details.first().is_some_and(|d| d == "not valid") {
        details.remove(0);
        columns.push(Shown::NotValid);
    }
    assert!(!columns.is_empty(), "{name}: nothing to check");
    let mut checked = 0;
    for (index, column) in columns.iter().enumerate() {
        let entry = PageTableEntry(values[index]);
        match column {
            Shown::Valid { pfn, flags } => {
                let level = levels[index];
                assert!(entry.is_present(), "{name}: {entry:x?} is valid");
                assert_eq!(&format!("{:x}", entry.pfn()), pfn, "{name}: pfn");
                assert_eq!(&Flags { entry, level }.to_string(), flags, "{name}: flags");
            }
            Shown::NotValid => {
                let decoded = SoftwarePte::decode(entry, mask)
                    .unwrap_or_else(|| panic!("{name}: {entry:x?} is not valid"));
                let mut ours = decoded.windbg_lines("\n").to_string();
                // 24 was abridged by hand by its author, who wrote the
                // frame in upper case; WinDbg's own (02) is lower case.
                if name.starts_with("24-") {
                    ours = ours.to_uppercase();
                    for detail in &mut details {
                        *detail = detail.to_uppercase();
                    }
                }
                let ours: Vec<&str> = ours.lines().collect();
                assert_eq!(ours, details, "{name}: {decoded:?}");
            }
            Shown::LargePage { pfn } => {
                // The large entry is the column before; the frame is its
                // address (bits 21 and up: bit 12 is PAT) plus the offset.
                let large = PageTableEntry(values[index - 1]);
                let va = va.unwrap_or_else(|| panic!("{name}: a large page needs the VA"));
                let pa = large.address(21, 52).0 + (va & 0x1f_ffff);
                assert_eq!(pa >> 12, *pfn, "{name}: LARGE PAGE pfn");
            }
        }
        checked += 1;
    }
    checked
}

#[test]
fn every_published_transcript_decodes_as_windbg_printed_it() {
    let mask = InvalidPteMask::for_max_phys_bits(MAXPHYADDR);
    let mut transcripts = 0;
    let mut entries = 0;
    let mut sources = std::collections::BTreeSet::new();
    for path in transcript_files() {
        let text = fs::read_to_string(&path).expect("transcript");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // 18 is an error (a table missing from the dump), not a decode; 23
        // lost its layout in a PDF and predates the mask (its own test).
        if name.starts_with("18-") || name.starts_with("23-") {
            continue;
        }
        entries += check(&path, mask);
        transcripts += 1;
        let source = text.lines().next().unwrap_or_default();
        let site = source.split('/').take(5).collect::<Vec<_>>().join("/");
        sources.insert(site);
    }
    assert!(transcripts >= 20, "{transcripts} transcripts");
    assert!(sources.len() >= 3, "{sources:?}");
    assert!(entries >= 80, "{entries} entries");
}

#[test]
fn a_page_file_entry_from_before_the_mitigation_is_not_unswizzled() {
    // FireEye's white paper, Figure 7 (layout lost in the PDF, values intact):
    // `contains 001BBEDA00002084 not valid` / `PageFile: 2 Offset: 1bbeda
    // Protect: 4 - ReadWrite`, on a build before Windows 10 1803.
    let path = transcript_files()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("23-"))
        .expect("transcript 23");
    let text = fs::read_to_string(path).expect("transcript");
    let line = text
        .lines()
        .find(|l| l.contains("contains") && l.contains("not valid"))
        .expect("the PTE line");
    let raw = line
        .split_whitespace()
        .skip_while(|t| *t != "contains")
        .nth(1);
    let entry = PageTableEntry(hex(raw.expect("its value")));
    let printed = text
        .lines()
        .find(|l| l.starts_with("PageFile:"))
        .expect("decode");
    let decoded = SoftwarePte::decode(entry, InvalidPteMask::NONE).expect("not valid");
    let ours = decoded.windbg_lines(" ").to_string();
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(squeeze(&ours), squeeze(printed));
    // With today's mask the same bits would be read as swizzled: the mask
    // is a property of the machine, not of the entry.
    let masked = SoftwarePte::decode(entry, InvalidPteMask::for_max_phys_bits(MAXPHYADDR));
    assert_ne!(masked, Some(decoded));
}

#[test]
fn the_swizzle_is_removed_only_where_windows_applied_it() {
    let mask = InvalidPteMask::for_max_phys_bits(MAXPHYADDR);
    // Bit 4 (SwizzleBit) set: Windows found bit 45 already set and left it.
    let kept = SoftwarePte::decode(PageTableEntry(0x0000_2000_0891_F870), mask);
    assert!(
        matches!(
            kept,
            Some(SoftwarePte::Transition {
                pfn: 0x2_0000_891f,
                ..
            })
        ),
        "{kept:?}"
    );
    assert_eq!(mask.unswizzle(0x0000_2000_0000_0000), 0);
}

/// The walk `!pte` showed: its `contains` values down to the first entry
/// that is not valid or is a large leaf.
fn walk_of(values: &[u64]) -> Walk {
    let mut path = Walk::new();
    let levels = [Level::Pml4, Level::Pdpt, Level::Pd, Level::Pt];
    for (value, level) in values.iter().zip(levels) {
        let entry = PageTableEntry(*value);
        path.push(Visited {
            level,
            addr: PhysAddr(0),
            entry,
        });
        let large =
            matches!(level, Level::Pdpt | Level::Pd) && entry.has(PageTableEntry::PAGE_SIZE);
        if !entry.is_present() || large {
            break;
        }
    }
    path
}

#[test]
fn every_four_level_transcript_renders_byte_for_byte() {
    let mask = InvalidPteMask::for_max_phys_bits(MAXPHYADDR);
    let mut rendered = 0;
    for path in transcript_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // 18: an error; 22: 32-bit PAE; 23: layout lost; 24: abridged;
        // 26: columns collapsed by its publisher.
        if ["18-", "22-", "23-", "24-", "26-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        // Their publishers changed the `VA` line (01: tabs, 03 and 09:
        // fewer spaces) and the lines under `not valid` (01: tabs; 02: the
        // kdmp-parser-rs comments were re-indented by hand across commits).
        // Every intact transcript puts each detail line, `Transition:`
        // included (25), one column right of `not valid`.
        let header_intact = !["01-", "03-", "09-"].iter().any(|p| name.starts_with(p));
        let details_intact = !["01-", "02-"].iter().any(|p| name.starts_with(p));
        let text = fs::read_to_string(&path).expect("transcript");
        let lines = body(&text);
        let header = lines
            .iter()
            .position(|l| l.trim_start().starts_with("VA "))
            .expect("VA line");
        let va = hex(lines[header].trim_start().trim_start_matches("VA "));
        let names = lines[header + 1].split_whitespace().collect::<Vec<_>>();
        let pte_at = hex(names[names.len() - 1]);
        // The PTE base is where the PTE of `va` lies minus its index.
        let pte_base = pte_at.wrapping_sub(((va & 0xffff_ffff_ffff) >> 12) * 8);
        let self_map = SelfMap::at(((pte_base >> 39) & 0x1ff) as usize, PagingMode::FourLevel);
        let contains = &lines[header + 2];
        let values: Vec<u64> = contains
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0] == "contains")
            .map(|pair| hex(pair[1]))
            .collect();
        let walk = walk_of(&values);
        let block = PteBlock {
            va: VirtAddr(va),
            path: &walk,
            self_map,
            invalid_pte_mask: mask,
        };
        let ours: Vec<String> = block.lines().map(|l| l.to_string()).collect();
        let theirs = &lines[header..header + ours.len()];
        for (index, (ours, theirs)) in ours.iter().zip(theirs).enumerate() {
            let checked = match index {
                0 => header_intact,
                1..=3 => true,
                _ => details_intact,
            };
            if checked {
                assert_eq!(ours.trim_end(), theirs.trim_end(), "{name}, line {index}");
            }
        }
        assert!(
            lines[header + ours.len()..]
                .iter()
                .all(|l| l.trim().is_empty() || !header_intact || l.contains("kd>")),
            "{name}: WinDbg printed more lines than we do"
        );
        rendered += 1;
    }
    assert!(rendered >= 18, "{rendered} transcripts rendered");
}

/// Every `MM_*` protection value (bits 9:5 of a software PTE), as `!pte`'s
/// `Protect:` line names it. Published: 3 `ExecuteRead` (01, 24, 25), 4
/// `ReadWrite` (02), 0x11 `Readonly G` (26): the access name, then the
/// guard bit as ` G`. The other access names follow that spelling and the
/// no-cache and write-combine bits the guard's form (` NC`, ` WC`); no
/// published output shows them (docs/windows-ptes.md).
#[test]
fn every_protection_value_prints_as_windbg_names_it() {
    use vmwalk::walker::software_pte::Protection;
    let want = [
        "Protect: 0 - NoAccess",
        "Protect: 1 - Readonly",
        "Protect: 2 - Execute",
        "Protect: 3 - ExecuteRead",
        "Protect: 4 - ReadWrite",
        "Protect: 5 - WriteCopy",
        "Protect: 6 - ExecuteReadWrite",
        "Protect: 7 - ExecuteWriteCopy",
        "Protect: 8 - NoAccess NC",
        "Protect: 9 - Readonly NC",
        "Protect: a - Execute NC",
        "Protect: b - ExecuteRead NC",
        "Protect: c - ReadWrite NC",
        "Protect: d - WriteCopy NC",
        "Protect: e - ExecuteReadWrite NC",
        "Protect: f - ExecuteWriteCopy NC",
        "Protect: 10 - NoAccess G",
        "Protect: 11 - Readonly G",
        "Protect: 12 - Execute G",
        "Protect: 13 - ExecuteRead G",
        "Protect: 14 - ReadWrite G",
        "Protect: 15 - WriteCopy G",
        "Protect: 16 - ExecuteReadWrite G",
        "Protect: 17 - ExecuteWriteCopy G",
        "Protect: 18 - NoAccess WC",
        "Protect: 19 - Readonly WC",
        "Protect: 1a - Execute WC",
        "Protect: 1b - ExecuteRead WC",
        "Protect: 1c - ReadWrite WC",
        "Protect: 1d - WriteCopy WC",
        "Protect: 1e - ExecuteReadWrite WC",
        "Protect: 1f - ExecuteWriteCopy WC",
    ];
    let ours: Vec<String> = (0..32_u8).map(|v| Protection(v).to_string()).collect();
    assert_eq!(ours, want);
    // The published ones, from the transcripts' own lines.
    assert_eq!(Protection(3).to_string(), "Protect: 3 - ExecuteRead");
    assert_eq!(Protection(4).to_string(), "Protect: 4 - ReadWrite");
    assert_eq!(Protection(0x11).to_string(), "Protect: 11 - Readonly G");
}
