//! What a capture file is, from its first bytes: one of the formats ptwalk
//! reads (an ELF core, a 64-bit Windows kernel crash dump, anything else as
//! raw physical memory), or one it names and refuses, with what to give it
//! instead. Every signature ptwalk knows is in this file; where each comes
//! from is in docs/dumps.md ("Wrong inputs").

use object::Endianness;
use object::elf::{ET_CORE, ET_DYN, ET_EXEC, ET_REL, FileHeader64};
use object::read::elf::FileHeader as _;

/// A file ptwalk reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// Not recognised: physical memory, file offset = physical address.
    Raw,
    /// A 64-bit ELF file of type `ET_CORE` (or an ELF header too broken to
    /// say: the core reader then says what is wrong).
    ElfCore,
    /// `PAGE` and not a 32-bit or triage dump: `crash_dump.rs` reads it.
    CrashDump,
}

/// What a refusal ends with: what ptwalk reads instead.
const READS: &str =
    "ptwalk reads raw physical images, ELF cores and 64-bit Windows kernel crash dumps";

/// Files that are not memory ptwalk can walk, by their first bytes.
enum Wrong {
    Minidump,
    Dump32,
    Hibernation,
    VmwareState,
}

/// Signatures at offset 0.
const SIGNATURES: [(&[u8], Wrong); 11] = [
    // MINIDUMP_HEADER.Signature, MINIDUMP_SIGNATURE ('PMDM' as a u32).
    (b"MDMP", Wrong::Minidump),
    // DUMP_HEADER32: 'PAGE' then 'DUMP' (64-bit dumps have 'DU64').
    (b"PAGEDUMP", Wrong::Dump32),
    // hiberfil.sys: `hibr` (XP), `HIBR` (Vista and later), `wake`/`WAKE`
    // (resumed from), `RSTR` (a restore under way).
    (b"hibr", Wrong::Hibernation),
    (b"HIBR", Wrong::Hibernation),
    (b"wake", Wrong::Hibernation),
    (b"WAKE", Wrong::Hibernation),
    (b"RSTR", Wrong::Hibernation),
    // VMware .vmss/.vmsn: a little-endian u32 magic.
    (&0xbed2_bed0_u32.to_le_bytes(), Wrong::VmwareState),
    (&0xbad1_bad1_u32.to_le_bytes(), Wrong::VmwareState),
    (&0xbed2_bed2_u32.to_le_bytes(), Wrong::VmwareState),
    (&0xbed3_bed3_u32.to_le_bytes(), Wrong::VmwareState),
];

/// `DUMP_HEADER64.DumpType`, and the type of a triage (small memory) dump.
const DUMP_TYPE: usize = 0xf98;
const DUMP_TYPE_TRIAGE: u32 = 4;

/// The format of the file whose bytes are `bytes`; for a file ptwalk
/// refuses, what it is and what to give instead, as words that follow
/// `"<file> is "`.
pub fn identify(bytes: &[u8]) -> Result<Format, String> {
    if let Some((magic, wrong)) = SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return Err(refusal(wrong, magic));
    }
    if bytes.starts_with(b"\x7fELF") {
        return elf(bytes);
    }
    if bytes.starts_with(b"PAGE") {
        let dump_type = bytes
            .get(DUMP_TYPE..DUMP_TYPE + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if bytes.starts_with(b"PAGEDU64") && dump_type == Some(DUMP_TYPE_TRIAGE) {
            return Err(
                "a triage (small memory) crash dump (DumpType 4): it holds only a few pages (the crashing thread's), not the page tables; capture a complete or kernel memory dump instead (CrashDumpEnabled=1 or 2 under HKLM\\SYSTEM\\CurrentControlSet\\Control\\CrashControl)".to_owned(),
            );
        }
        return Ok(Format::CrashDump);
    }
    Ok(Format::Raw)
}

fn refusal(wrong: &Wrong, magic: &[u8]) -> String {
    match wrong {
        Wrong::Minidump => format!(
            "a user-mode minidump (MDMP): it holds a process's memory, not physical memory and its page tables; {READS}"
        ),
        Wrong::Dump32 => {
            "a 32-bit Windows crash dump (PAGEDUMP): ptwalk reads 64-bit ones (PAGEDU64), of x64 and ARM64 machines".to_owned()
        }
        Wrong::Hibernation => format!(
            "a Windows hibernation file (hiberfil.sys, signature `{}`), whose memory is compressed: convert it to a raw physical image first (e.g. with Volatility 2's imagecopy), then give that",
            String::from_utf8_lossy(magic)
        ),
        Wrong::VmwareState => format!(
            "a VMware saved state or snapshot (.vmss/.vmsn, magic {:#x}), which describes the machine: its memory is the .vmem file beside it, a raw image: give that",
            u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]])
        ),
    }
}

/// An ELF file: a 64-bit core, or what else it is.
fn elf(bytes: &[u8]) -> Result<Format, String> {
    if bytes.get(4) == Some(&1) {
        return Err(format!(
            "a 32-bit ELF file (ELFCLASS32): {READS} (ELF cores of 64 bits)"
        ));
    }
    let Some((header, endian)) = FileHeader64::<Endianness>::parse(bytes)
        .ok()
        .and_then(|header| Some((header, header.endian().ok()?)))
    else {
        return Ok(Format::ElfCore); // the core reader names what is wrong
    };
    let what = match header.e_type(endian) {
        ET_CORE => return Ok(Format::ElfCore),
        ET_EXEC => "an ELF executable (e_type ET_EXEC)".to_owned(),
        ET_DYN => {
            "an ELF shared object or position-independent executable (e_type ET_DYN)".to_owned()
        }
        ET_REL => "an ELF relocatable object (e_type ET_REL)".to_owned(),
        other => format!("an ELF file of type {other:#x}"),
    };
    Err(format!(
        "{what}, not a core: {READS} (an ELF core has e_type ET_CORE: QEMU's dump-guest-memory, VirtualBox's dumpvmcore)"
    ))
}
