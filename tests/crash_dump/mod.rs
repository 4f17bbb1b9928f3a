//! Writes 64-bit Windows kernel crash dumps (`PAGEDU64`) for the tests:
//! full dumps (`DumpType` 1: the header's physical memory runs, then the pages)
//! and bitmap dumps (`DumpType` 5: an `SDMP` header and a bitmap of the pages
//! present). Written from the published layout, not from kdmp-parser, which
//! reads them in ptwalk and so is what this checks.
//!
//! Layout sources:
//! - `DUMP_HEADER64`, Microsoft's Win32 metadata as windows-docs-rs prints it
//!   (`windows::Win32::System::Diagnostics::Debug::DUMP_HEADER64`): the
//!   signature `PAGE` and `DU64`, `DirectoryTableBase` at 0x10,
//!   `PsLoadedModuleList` at 0x20, `MachineImageType` at 0x30
//!   (`IMAGE_FILE_MACHINE_AMD64` 0x8664, `IMAGE_FILE_MACHINE_ARM64` 0xAA64, as
//!   in winnt.h) and `NumberProcessors` at 0x34, `KdDebuggerDataBlock` at 0x80,
//!   `PhysicalMemoryBlock` (`PHYSICAL_MEMORY_DESCRIPTOR64`: `NumberOfRuns`
//!   u32, `NumberOfPages` u64 at +8, runs of `BasePage`/`PageCount` u64 from
//!   +0x10) at 0x88, 700 bytes, `ContextRecord` at 0x348 (3000 bytes),
//!   `DumpType` at 0xf98; the header is 0x2000 bytes, and Windows fills what
//!   it does not use with `PAGE`.
//! - An ARM64 dump's `ContextRecord` is an `ARM64_NT_CONTEXT` (Microsoft's
//!   winnt.h documentation): `ContextFlags` u32 (`CONTEXT_ARM64` 0x400000 |
//!   control, integer, floating point: 0x400007), `Cpsr` u32 at +4, `X0`..`X28`
//!   from +8, `Fp` +0xf0, `Lr` +0xf8, `Sp` +0x100, `Pc` +0x108. Its
//!   `DirectoryTableBase` is the top-level table both TTBRs point into:
//!   `TTBR0_EL1` without the ASID, `TTBR1_EL1` 0x800 above it (C. McGarr,
//!   "ARM64 Windows internals: the basics"; M. Suiche's SMBaloo README shows
//!   `Ttbr0_El1` 0x400000800a9000 and `Ttbr1_El1` 0x400000800a9800).
//! - The bitmap header at 0x2000: rizin's `librz/bin/format/dmp/dmp_specs.h`
//!   (`dmp_bmp_header`) and Rekall's `plugins/overlays/windows/crashdump.py`:
//!   `SDMP` (or `FDMP`) and `DUMP`, `FirstPage` (file offset of the first
//!   page) at +0x20, `TotalPresentPages` at +0x28, `Pages` (bits in the
//!   bitmap) at +0x30, the bitmap from +0x38; present pages follow in
//!   physical order.
#![allow(dead_code, reason = "each crate that includes this uses a part")]
#![allow(
    clippy::doc_markdown,
    reason = "authors' and projects' names (McGarr, SMBaloo)"
)]

use std::collections::BTreeMap;

pub const PAGE: usize = 4096;
pub const HEADER_SIZE: usize = 0x2000;
pub const DIRECTORY_TABLE_BASE: usize = 0x10;
pub const PS_LOADED_MODULE_LIST: usize = 0x20;
pub const MACHINE_IMAGE_TYPE: usize = 0x30;
pub const KD_DEBUGGER_DATA_BLOCK: usize = 0x80;
pub const PHYSICAL_MEMORY_BLOCK: usize = 0x88;
pub const PHYSICAL_MEMORY_BLOCK_SIZE: usize = 700;
pub const CONTEXT_RECORD: usize = 0x348;
pub const DUMP_TYPE: usize = 0xf98;
pub const DUMP_TYPE_FULL: u32 = 1;
pub const DUMP_TYPE_BITMAP: u32 = 5;
pub const BITMAP_FIRST_PAGE: usize = HEADER_SIZE + 0x20;
pub const BITMAP_PAGES: usize = HEADER_SIZE + 0x30;
pub const BITMAP_START: usize = HEADER_SIZE + 0x38;

/// Physical memory: page address -> its 4096 bytes.
pub type Pages = BTreeMap<u64, Vec<u8>>;

pub fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The machine a dump was written on.
#[derive(Clone, Copy)]
pub enum Machine {
    /// x64: `IMAGE_FILE_MACHINE_AMD64`.
    Amd64,
    /// ARM64: `IMAGE_FILE_MACHINE_ARM64`.
    Arm64,
}

/// A `DUMP_HEADER64` of an x64 machine, of `dump_type`, CR3 `cr3`, and
/// every other field as Windows leaves an unused one: `PAGE`.
pub fn header(cr3: u64, dump_type: u32) -> Vec<u8> {
    header_on(Machine::Amd64, cr3, dump_type)
}

/// A `DUMP_HEADER64` of `machine`, of `dump_type`, `DirectoryTableBase`
/// `directory_table_base`, a context record of that machine, and every other
/// field as Windows leaves an unused one: `PAGE`.
pub fn header_on(machine: Machine, directory_table_base: u64, dump_type: u32) -> Vec<u8> {
    let mut header = b"PAGE".repeat(HEADER_SIZE / 4);
    header[4..8].copy_from_slice(b"DU64");
    put_u32(&mut header, 8, 0xf); // MajorVersion: a free build
    put_u64(&mut header, DIRECTORY_TABLE_BASE, directory_table_base);
    put_u64(&mut header, PS_LOADED_MODULE_LIST, 0);
    put_u64(&mut header, KD_DEBUGGER_DATA_BLOCK, 0);
    put_u32(&mut header, 0x34, 1); // NumberProcessors
    put_u32(&mut header, DUMP_TYPE, dump_type);
    let context = CONTEXT_RECORD;
    match machine {
        Machine::Amd64 => {
            put_u32(&mut header, 0xc, 19041); // MinorVersion: the build number
            put_u32(&mut header, MACHINE_IMAGE_TYPE, 0x8664);
        }
        Machine::Arm64 => {
            put_u32(&mut header, 0xc, 22631); // Windows 11 23H2
            put_u32(&mut header, MACHINE_IMAGE_TYPE, 0xaa64);
            // ARM64_NT_CONTEXT: control, integer and floating-point registers
            // of a processor in EL1 (Cpsr: EL1h, interrupts masked) in the kernel.
            header[context..context + 0x390].fill(0);
            put_u32(&mut header, context, 0x0040_0007);
            put_u32(&mut header, context + 4, 0x3c5);
            put_u64(&mut header, context + 0x100, 0xffff_f780_1234_5f00); // Sp
            put_u64(&mut header, context + 0x108, 0xffff_f800_0020_3450); // Pc
        }
    }
    header
}

/// A full dump of `pages` with the given runs (`BasePage`, `PageCount`):
/// run pages absent from `pages` are written as zeros; pages outside every
/// run are left out (holes).
pub fn full(cr3: u64, pages: &Pages, runs: &[(u64, u64)]) -> Vec<u8> {
    full_on(Machine::Amd64, cr3, pages, runs)
}

/// [`full`], of `machine`.
pub fn full_on(
    machine: Machine,
    directory_table_base: u64,
    pages: &Pages,
    runs: &[(u64, u64)],
) -> Vec<u8> {
    let mut dump = header_on(machine, directory_table_base, DUMP_TYPE_FULL);
    let block = PHYSICAL_MEMORY_BLOCK;
    assert!(
        16 + runs.len() * 16 <= PHYSICAL_MEMORY_BLOCK_SIZE,
        "too many runs"
    );
    dump[block..block + PHYSICAL_MEMORY_BLOCK_SIZE].fill(0);
    put_u32(&mut dump, block, u32::try_from(runs.len()).unwrap());
    put_u64(&mut dump, block + 8, runs.iter().map(|r| r.1).sum());
    for (i, &(base_page, page_count)) in runs.iter().enumerate() {
        put_u64(&mut dump, block + 16 + i * 16, base_page);
        put_u64(&mut dump, block + 24 + i * 16, page_count);
        for page in base_page..base_page + page_count {
            match pages.get(&(page * PAGE as u64)) {
                Some(bytes) => dump.extend_from_slice(bytes),
                None => dump.resize(dump.len() + PAGE, 0),
            }
        }
    }
    dump
}

/// Runs that cover every page in `pages`: pages at most `gap` pages apart
/// share a run (the pages between are zeros), farther ones start a new run.
pub fn runs_covering(pages: &Pages, gap: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &addr in pages.keys() {
        let page = addr / PAGE as u64;
        match runs.last_mut() {
            Some((base, count)) if page - (*base + *count) <= gap => *count = page - *base + 1,
            _ => runs.push((page, 1)),
        }
    }
    runs
}

/// A bitmap dump holding exactly `pages`.
pub fn bitmap(cr3: u64, pages: &Pages) -> Vec<u8> {
    bitmap_on(Machine::Amd64, cr3, pages)
}

/// [`bitmap`], of `machine`.
pub fn bitmap_on(machine: Machine, directory_table_base: u64, pages: &Pages) -> Vec<u8> {
    let mut dump = header_on(machine, directory_table_base, DUMP_TYPE_BITMAP);
    let bits = pages.keys().last().map_or(0, |last| last / PAGE as u64 + 1);
    let bitmap_len = usize::try_from(bits.div_ceil(8)).unwrap();
    let first_page = (BITMAP_START + bitmap_len).next_multiple_of(PAGE);
    dump.resize(first_page, 0);
    dump[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(b"SDMP");
    dump[HEADER_SIZE + 4..HEADER_SIZE + 8].copy_from_slice(b"DUMP");
    put_u64(&mut dump, BITMAP_FIRST_PAGE, first_page as u64);
    put_u64(&mut dump, HEADER_SIZE + 0x28, pages.len() as u64); // TotalPresentPages
    put_u64(&mut dump, BITMAP_PAGES, bits);
    for (&addr, bytes) in pages {
        let page = usize::try_from(addr).unwrap() / PAGE;
        dump[BITMAP_START + page / 8] |= 1 << (page % 8);
        dump.extend_from_slice(bytes);
    }
    dump
}
