//! Files that are not memory ptwalk can walk, each named in one line with
//! what to give instead, and a non-zero exit: by `translate`, `dump` and
//! `pte` alike, with or without registers given. Each file is built from its
//! format's published signature:
//!
//! - user-mode minidump: `MINIDUMP_HEADER` (Microsoft, minidumpapiset.h):
//!   `Signature` `MDMP` (`MINIDUMP_SIGNATURE`), `Version` whose low word is
//!   `MINIDUMP_VERSION` 0xA793, `NumberOfStreams`, `StreamDirectoryRva`.
//! - 32-bit kernel dump: `DUMP_HEADER32`, `PAGE` then `DUMP`, `DumpType`
//!   at 0xf88; triage dump: a `DUMP_HEADER64` whose `DumpType` (0xf98) is
//!   4, `DUMP_TYPE_TRIAGE` (Microsoft's `KBUGCHECK_SECONDARY_DUMP_DATA_EX`
//!   documentation lists the `DUMP_TYPE` values).
//! - ELF: the System V gABI's `e_ident` (`ELFCLASS32` 1, `ELFCLASS64` 2) and
//!   `e_type` (`ET_REL` 1, `ET_EXEC` 2, `ET_DYN` 3, `ET_CORE` 4).
//! - hibernation file: libyal's "Windows Hibernation File (hiberfil.sys)
//!   format": `hibr`, `HIBR`, `wake`, `WAKE`, `RSTR` at offset 0.
//! - `VMware` saved state / snapshot: Volatility 3's `vmware.py` layer: a
//!   little-endian u32 magic 0xbed2bed0, 0xbad1bad1, 0xbed2bed2 or
//!   0xbed3bed3, then an unknown u32 and the group count, then 80-byte groups
//!   (`name[64]`, offset, size).

mod crash_dump;
mod ptwalk_run;

use std::process::Output;

use ptwalk_run::{ptwalk, stderr, stdout, write_temp};

/// The three subcommands on `path`: without registers, with `--cr3`, and
/// with ARM64's registers.
fn every_way(path: &str) -> [Output; 3] {
    [
        ptwalk(&["translate", "--image", path, "fffff80000000000"]),
        ptwalk(&["dump", "--image", path, "--cr3", "1000"]),
        ptwalk(&[
            "pte",
            "--arch",
            "aarch64",
            "--image",
            path,
            "--ttbr1",
            "1800",
            "--tcr",
            "615b5513511",
            "fffff80000000000",
        ]),
    ]
}

/// `bytes`, written to a file, is refused each way with the one line
/// `ptwalk: <file> is <what>` and exit 1.
fn refused(name: &str, bytes: &[u8], what: &str) {
    let path = write_temp(name, bytes);
    let path = path.to_str().unwrap();
    for output in every_way(path) {
        assert_eq!(output.status.code(), Some(1), "{name}: {output:?}");
        assert!(output.stdout.is_empty(), "{name}: {output:?}");
        assert_eq!(
            stderr(&output),
            format!("ptwalk: {path} is {what}\n"),
            "{name}"
        );
    }
}

/// `head` at the start of a page of zeros.
fn page_starting(head: &[u8]) -> Vec<u8> {
    let mut page = vec![0_u8; 4096];
    page[..head.len()].copy_from_slice(head);
    page
}

const READS: &str =
    "ptwalk reads raw physical images, ELF cores and 64-bit Windows kernel crash dumps";

#[test]
fn a_user_mode_minidump_is_named() {
    let mut header = Vec::new();
    header.extend_from_slice(b"MDMP");
    header.extend_from_slice(&0x0000_a793_u32.to_le_bytes()); // Version
    header.extend_from_slice(&3_u32.to_le_bytes()); // NumberOfStreams
    header.extend_from_slice(&0x20_u32.to_le_bytes()); // StreamDirectoryRva
    refused(
        "user.dmp",
        &page_starting(&header),
        &format!(
            "a user-mode minidump (MDMP): it holds a process's memory, not physical memory and its page tables; {READS}"
        ),
    );
}

#[test]
fn a_triage_dump_and_a_32_bit_dump_are_named() {
    let mut triage = crash_dump::header(0x001a_d000, 4);
    triage.resize(0x10000, 0);
    refused(
        "triage.dmp",
        &triage,
        "a triage (small memory) crash dump (DumpType 4): it holds only a few pages (the crashing thread's), not the page tables; capture a complete or kernel memory dump instead (CrashDumpEnabled=1 or 2 under HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl)",
    );
    // DUMP_HEADER32: DirectoryTableBase (u32) at 0x10, MachineImageType at
    // 0x20 (IMAGE_FILE_MACHINE_I386), DumpType at 0xf88 (full).
    let mut dump32 = b"PAGE".repeat(0x1000 / 4);
    dump32[4..8].copy_from_slice(b"DUMP");
    dump32[0x10..0x14].copy_from_slice(&0x0018_5000_u32.to_le_bytes());
    dump32[0x20..0x24].copy_from_slice(&0x14c_u32.to_le_bytes());
    dump32[0xf88..0xf8c].copy_from_slice(&1_u32.to_le_bytes());
    refused(
        "32bit.dmp",
        &dump32,
        "a 32-bit Windows crash dump (PAGEDUMP): ptwalk reads 64-bit ones (PAGEDU64), of x64 and ARM64 machines",
    );
}

/// An ELF header of `class` (1: 32-bit, 2: 64-bit) and `e_type`, x86-64,
/// little-endian, no program headers, in a page.
fn elf_header(class: u8, e_type: u16) -> Vec<u8> {
    let mut elf = vec![0_u8; 4096];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = class;
    elf[5] = 1; // ELFDATA2LSB
    elf[6] = 1; // EV_CURRENT
    elf[16..18].copy_from_slice(&e_type.to_le_bytes());
    elf[18..20].copy_from_slice(&62_u16.to_le_bytes()); // EM_X86_64
    elf[20..24].copy_from_slice(&1_u32.to_le_bytes());
    elf[52..54].copy_from_slice(&64_u16.to_le_bytes()); // e_ehsize
    elf[54..56].copy_from_slice(&56_u16.to_le_bytes()); // e_phentsize
    elf
}

#[test]
fn elf_files_that_are_not_cores_are_named() {
    let not_a_core = format!(
        ", not a core: {READS} (an ELF core has e_type ET_CORE: QEMU's dump-guest-memory, VirtualBox's dumpvmcore)"
    );
    for (e_type, what) in [
        (1, "an ELF relocatable object (e_type ET_REL)"),
        (2, "an ELF executable (e_type ET_EXEC)"),
        (
            3,
            "an ELF shared object or position-independent executable (e_type ET_DYN)",
        ),
        (0xfe00, "an ELF file of type 0xfe00"),
    ] {
        refused(
            &format!("elf-{e_type}"),
            &elf_header(2, e_type),
            &format!("{what}{not_a_core}"),
        );
    }
    refused(
        "elf32-core",
        &elf_header(1, 4),
        &format!("a 32-bit ELF file (ELFCLASS32): {READS} (ELF cores of 64 bits)"),
    );
    // A real executable: this test itself.
    let me = std::env::current_exe().unwrap();
    let output = ptwalk(&["translate", "--image", me.to_str().unwrap(), "0"]);
    assert_eq!(output.status.code(), Some(1));
    let line = stderr(&output);
    assert!(
        line.lines().count() == 1
            && (line.contains("(e_type ET_DYN), not a core")
                || line.contains("(e_type ET_EXEC), not a core")),
        "{line}"
    );
}

#[test]
fn hibernation_files_are_named() {
    for signature in ["hibr", "HIBR", "wake", "WAKE", "RSTR"] {
        refused(
            &format!("hiberfil-{signature}.sys"),
            &page_starting(signature.as_bytes()),
            &format!(
                "a Windows hibernation file (hiberfil.sys, signature `{signature}`), whose memory is compressed: convert it to a raw physical image first (e.g. with Volatility 2's imagecopy), then give that"
            ),
        );
    }
}

#[test]
fn vmware_saved_states_are_named() {
    for magic in [0xbed2_bed0_u32, 0xbad1_bad1, 0xbed2_bed2, 0xbed3_bed3] {
        let mut head = Vec::new();
        head.extend_from_slice(&magic.to_le_bytes());
        head.extend_from_slice(&0_u32.to_le_bytes());
        head.extend_from_slice(&2_u32.to_le_bytes()); // groupCount
        let mut group = [0_u8; 80];
        group[..6].copy_from_slice(b"memory");
        head.extend_from_slice(&group);
        refused(
            &format!("state-{magic:x}.vmss"),
            &page_starting(&head),
            &format!(
                "a VMware saved state or snapshot (.vmss/.vmsn, magic {magic:#x}), which describes the machine: its memory is the .vmem file beside it, a raw image: give that"
            ),
        );
    }
}

#[test]
fn raw_images_are_anything_not_recognised() {
    // One table page at 0x1000 whose entry 0 is 0x1003: PML4, PDPT, PD and
    // PT at once, mapping 0 to 0x1000. The first bytes look like
    // signatures but are none.
    for head in [
        &b"MDM"[..],
        b"HIBX",
        b"PAGF",
        b"\x7fELG",
        &0xbed2_bed1_u32.to_le_bytes(),
        b"wak",
    ] {
        let mut memory = page_starting(head);
        let mut table = vec![0_u8; 4096];
        table[..8].copy_from_slice(&0x1003_u64.to_le_bytes());
        memory.extend(table);
        let path = write_temp("raw-look-alike", &memory);
        let output = ptwalk(&[
            "translate",
            "--image",
            path.to_str().unwrap(),
            "--cr3",
            "1000",
            "0",
            "8",
        ]);
        assert!(output.status.success(), "{head:?}: {output:?}");
        assert_eq!(stdout(&output), "0x0 0x1000\n0x8 0x1008\n", "{head:?}");
    }
}
