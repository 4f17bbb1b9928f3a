//! `WinDbg`'s `!pte` on Windows for ARM64, line for line: seven transcripts
//! from real ARM64 machines (`tests/windbg/arm64/`, each naming its source:
//! three screenshots of Windows 11, measured in pixels, and four text blocks
//! of Windows 10 18362, whose trailing blanks are kept and compared). For each, the tables the transcript shows are laid out in a
//! sparse physical memory as Windows lays them out (one 512-entry top-level
//! page, `TTBR1_EL1` at its upper half, `TCR_EL1` as read on that machine,
//! the self-map at the index the transcript's addresses imply); the walker
//! walks the address, and its `PteBlock` must print the transcript's lines.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use vmwalk::walker::aarch64::windbg::PteBlock;
use vmwalk::walker::aarch64::{Paging, SelfMap};
use vmwalk::walker::{PhysAddr, PhysicalMemory, VirtAddr};

/// `TCR_EL1` on the transcripts' machine (its `rdmsr 0x30202`, the same post).
const TCR_EL1: u64 = 0x0000_0615_b551_3511;
/// Where the test puts the top-level page; any page-aligned address works.
const DIRECTORY_TABLE_BASE: u64 = 0x7654_3000;

/// Physical memory holding only the words the test wrote; any other word
/// reads as a pattern no transcript shows, so a read the block should not
/// make shows up in its lines.
struct Sparse(HashMap<u64, u64>);

impl PhysicalMemory for Sparse {
    type Error = std::convert::Infallible;

    fn read_u64(&self, addr: PhysAddr) -> Result<u64, Self::Error> {
        Ok(self
            .0
            .get(&addr.0)
            .copied()
            .unwrap_or(0x5a5a_5a5a_5a5a_5a5a))
    }
}

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/windbg/arm64");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("tests/windbg/arm64")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(text, 16).unwrap_or_else(|_| panic!("hex {text:?}"))
}

/// The four lines after the `!pte` command, with their trailing blanks.
fn block_lines(text: &str) -> Vec<String> {
    let (_, body) = text
        .split_once("\n\n")
        .expect("header, blank line, transcript");
    let command = body
        .lines()
        .position(|l| l.contains("> !pte "))
        .expect("a !pte command");
    body.lines()
        .skip(command + 1)
        .take(4)
        .map(str::to_owned)
        .collect()
}

#[test]
fn pte_blocks_match_windbg_on_arm64() {
    let files = transcripts();
    assert_eq!(files.len(), 7, "the seven published transcripts");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).expect("transcript");
        assert!(text.starts_with("source: "), "{name}: cites its source");
        let lines = block_lines(&text);
        let va = hex(lines[0].trim().strip_prefix("VA ").expect("VA line"));
        let at: Vec<u64> = lines[1]
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0] == "at")
            .map(|pair| hex(pair[1]))
            .collect();
        let contains: Vec<u64> = lines[2]
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0] == "contains")
            .map(|pair| hex(pair[1]))
            .collect();
        // The PTE's address is the PTE base plus 8 per page below `va`.
        let pte_base = at[3] - (((va & 0xffff_ffff_ffff) >> 12) << 3);
        let self_map_index = (pte_base >> 39) & 0x1ff;

        // The walk the transcript shows: each descriptor at its index of the
        // table the one above names, from the top-level page.
        let mut memory = HashMap::new();
        memory.insert(
            DIRECTORY_TABLE_BASE + 8 * self_map_index,
            DIRECTORY_TABLE_BASE | 0b11,
        );
        let mut table = DIRECTORY_TABLE_BASE;
        for (depth, &value) in contains.iter().enumerate() {
            let shift = 39 - 9 * depth;
            memory.insert(table + 8 * ((va >> shift) & 0x1ff), value);
            if value & 0b11 != 0b11 {
                break; // a block, or the zero below it
            }
            table = value & 0x0000_ffff_ffff_f000;
        }
        let memory = Sparse(memory);
        let asid = 0x2a_u64 << 48;
        let paging = Paging::from_registers(
            DIRECTORY_TABLE_BASE | asid,
            (DIRECTORY_TABLE_BASE + 0x800) | asid,
            TCR_EL1,
        )
        .expect("Windows's TCR_EL1 is modelled");
        let self_map = SelfMap::find(&paging, &memory)
            .expect("infallible")
            .expect("the self-map");
        assert_eq!(self_map.index(), self_map_index, "{name}");
        let path = match paging.translate(&memory, VirtAddr(va)) {
            Ok(t) => t.path,
            Err(fault) => panic!("{name}: {fault}"),
        };
        let block = PteBlock {
            va: VirtAddr(va),
            path: &path,
            self_map,
        };
        let ours: Vec<String> = block.lines().map(|l| l.to_string()).collect();
        // The VA line's indentation is not measurable in a screenshot, nor
        // are trailing blanks: compare those only where the text has them.
        assert_eq!(ours[0].trim(), lines[0].trim(), "{name}: VA line");
        for (ours, theirs) in ours[1..].iter().zip(&lines[1..]) {
            if theirs.ends_with(' ') {
                assert_eq!(ours, theirs, "{name}: trailing blanks");
            } else {
                assert_eq!(ours.trim_end(), theirs, "{name}");
            }
        }
    }
}

/// The self-map names a user address's descriptors only when `TTBR0_EL1`'s
/// table is the self-map's page (Windows' layout), as `!pte` needs.
#[test]
fn the_self_map_names_user_descriptors_only_in_windows_layout() {
    let map = SelfMap::at(0x151);
    let (user, kernel) = (VirtAddr(0x7ff6_c000_1000), VirtAddr(0xffff_f800_0000_0000));
    let windows = Paging::from_registers(0x1000, 0x1800, TCR_EL1).expect("modelled");
    assert!(map.names(&windows, user) && map.names(&windows, kernel));
    // TTBR0 in another page, or in the upper half of the same page.
    for ttbr0 in [0x5000, 0x1800] {
        let elsewhere = Paging::from_registers(ttbr0, 0x1800, TCR_EL1).expect("modelled");
        assert!(!map.names(&elsewhere, user), "TTBR0 {ttbr0:#x}");
        assert!(map.names(&elsewhere, kernel));
    }
}

/// The X column reads the execute-never bit of the address's own exception
/// level: PXN (bit 53) for a kernel (TTBR1) address, UXN (bit 54) for a user
/// one (the published user page, arm64/02, has both set, so this is the
/// inferred half of the rule, as `MemProcFS` reads it). One descriptor with
/// only one of them set shows both answers.
#[test]
fn the_x_column_reads_pxn_for_kernel_and_uxn_for_user_addresses() {
    use vmwalk::walker::aarch64::windbg::Flags;
    use vmwalk::walker::aarch64::{Descriptor, Level};
    let page = 0x9000 | 1 << 10 | 0b11;
    let column = |raw: u64, kernel: bool| {
        let flags = Flags {
            descriptor: Descriptor(raw),
            level: Level::L3,
            kernel,
        }
        .to_string();
        flags.chars().nth(2).unwrap()
    };
    let privileged_never = page | Descriptor::PXN;
    let unprivileged_never = page | Descriptor::UXN;
    assert_eq!(column(privileged_never, true), '-');
    assert_eq!(column(privileged_never, false), 'X');
    assert_eq!(column(unprivileged_never, true), 'X');
    assert_eq!(column(unprivileged_never, false), '-');
}
