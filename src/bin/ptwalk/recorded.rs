//! The paging registers a capture records, wherever it records them: a
//! crash dump's header (`DirectoryTableBase`, and `MachineImageType` for
//! whose registers it is), or the `QEMU` notes of an ELF core that QEMU's
//! `dump-guest-memory` wrote for an x86 guest (one `QEMUCPUState` per vCPU).
//! Raw images record none. How each is read, and its sources:
//! docs/dumps.md ("Registers from the capture").

use anyhow::{Context, Result, anyhow, bail};
use object::Endianness;
use object::elf::{EM_386, EM_X86_64};
use object::read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _};
use vmwalk::walker::aarch64::discovery::{UPPER_HALF, WINDOWS_TCR};

use crate::crash_dump::Machine;
use crate::image::{Container, Image};

/// The top-level table's address in an ARM64 `DirectoryTableBase` (bits
/// 47:12: no ASID, no low bits).
const ARM64_TABLE: u64 = 0x0000_ffff_ffff_f000;

/// Registers a capture records, and where they came from.
pub enum Recorded {
    X86_64 {
        cr3: u64,
        /// CR4.LA57, if the capture records CR4 (a crash dump does not).
        la57: Option<bool>,
        /// Where, for the stderr line: "the crash dump header (...)".
        source: String,
        /// The vCPU was in user mode (CPL 3): under KPTI its CR3 is the
        /// user-only table.
        user_mode: bool,
    },
    Aarch64 {
        ttbr0: u64,
        ttbr1: u64,
        /// Windows on ARM64's ([`WINDOWS_TCR`]): not recorded.
        tcr: u64,
        /// Where the TTBRs come from, for the stderr line.
        source: String,
    },
}

/// The registers `image` records: of vCPU `cpu` (default 0) for an ELF core
/// with QEMU notes; `None` if it records none. `cpu` given for a capture
/// that has no vCPUs to pick from, or out of range, is an error, as is a
/// QEMU note ptwalk cannot read or a vCPU without 4- or 5-level paging.
pub fn recorded_registers(image: &Image, cpu: Option<usize>) -> Result<Option<Recorded>> {
    let name = image.name();
    match *image.container() {
        Container::Raw => {
            if let Some(cpu) = cpu {
                bail!(
                    "--cpu {cpu} picks a vCPU of a QEMU ELF core: {name} is a raw image, which records no registers"
                );
            }
            Ok(None)
        }
        Container::CrashDump {
            directory_table_base,
            machine,
        } => {
            if let Some(cpu) = cpu {
                bail!(
                    "--cpu {cpu} picks a vCPU of a QEMU ELF core: {name} is a crash dump, whose header records one DirectoryTableBase"
                );
            }
            Ok(Some(match machine {
                Machine::X64 => Recorded::X86_64 {
                    cr3: directory_table_base,
                    la57: None,
                    source: "the crash dump header (DirectoryTableBase)".to_owned(),
                    user_mode: false,
                },
                Machine::Arm64 => {
                    let ttbr0 = directory_table_base & ARM64_TABLE;
                    Recorded::Aarch64 {
                        ttbr0,
                        ttbr1: ttbr0 + UPPER_HALF,
                        tcr: WINDOWS_TCR,
                        source: format!(
                            "the crash dump header (DirectoryTableBase {directory_table_base:#x})"
                        ),
                    }
                }
            }))
        }
        Container::ElfCore => qemu_x86(image, cpu),
    }
}

/// `QEMUCPUState` (QEMU's `target/i386/arch_dump.c`): the version ptwalk
/// reads, and the offsets in it of what it reads.
const QEMU_CPU_STATE_VERSION: u32 = 1;
const CS_SELECTOR: usize = 0x98;
const CR0: usize = 0x188;
const CR3: usize = 0x1a0;
const CR4: usize = 0x1a8;
/// The least `size` that holds `cr[0..5]` (QEMU before `kernel_gs_base`
/// was added; 0x1b8 since).
const MIN_SIZE: usize = 0x1b0;

const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;

/// CR3 and CR4 from the `QEMU` note (`n_type` 0) of vCPU `cpu` in an x86-64
/// ELF core: QEMU writes one per vCPU, in CPU order.
fn qemu_x86(image: &Image, cpu: Option<usize>) -> Result<Option<Recorded>> {
    let name = image.name();
    let (machine, states) = qemu_notes(image.bytes()).with_context(|| format!("{name}'s notes"))?;
    if machine == EM_386 && !states.is_empty() {
        // QEMU writes EM_386 when vCPU 0 is not in long mode (x86_get_dump_info).
        bail!(
            "{name} is QEMU's core of an x86 guest whose vCPU 0 was not in long mode (e_machine EM_386): ptwalk walks 4- and 5-level paging; give --cr3 if the guest used it"
        );
    }
    if states.is_empty() {
        if let Some(cpu) = cpu {
            bail!(
                "--cpu {cpu} picks a vCPU of a QEMU ELF core: {name} has no QEMU notes (QEMU writes them for x86 guests)"
            );
        }
        return Ok(None);
    }
    let index = cpu.unwrap_or(0);
    let Some(desc) = states.get(index) else {
        bail!(
            "--cpu {index}: {name} records {} vCPU(s), numbered 0 to {}",
            states.len(),
            states.len() - 1
        );
    };
    let state = CpuState::read(desc)
        .map_err(|why| anyhow!("{name}'s QEMU note for vCPU {index} {why}: give --cr3"))?;
    if state.cr0 & CR0_PG == 0 {
        bail!(
            "vCPU {index} of {name} had paging off (CR0 {:#x}): no page tables to walk; give --cpu N for another vCPU, or --cr3",
            state.cr0
        );
    }
    if state.cr4 & CR4_PAE == 0 {
        bail!(
            "vCPU {index} of {name} used 32-bit paging (CR4 {:#x}, PAE clear): ptwalk walks 4- and 5-level paging",
            state.cr4
        );
    }
    let of = if states.len() > 1 {
        format!(" of {}", states.len())
    } else {
        String::new()
    };
    Ok(Some(Recorded::X86_64 {
        cr3: state.cr3,
        la57: Some(state.cr4 & CR4_LA57 != 0),
        source: format!(
            "the core's QEMU note for vCPU {index}{of} (CR4 {:#x})",
            state.cr4
        ),
        user_mode: state.cs_selector & 3 == 3,
    }))
}

/// The core's `e_machine`, and the descriptors of its `QEMU` notes in file
/// order (none unless it is an x86 core: QEMU writes them for x86 guests).
fn qemu_notes(bytes: &[u8]) -> Result<(u16, Vec<&[u8]>)> {
    let elf = ElfFile64::<Endianness>::parse(bytes)?;
    let endian = elf.endian();
    let mut descriptors = Vec::new();
    let machine = elf.elf_header().e_machine(endian);
    if machine != EM_X86_64 && machine != EM_386 {
        return Ok((machine, descriptors));
    }
    for header in elf.elf_program_headers() {
        let Some(notes) = header.notes(endian, bytes)? else {
            continue;
        };
        for note in notes {
            let note = note?;
            if note.name() == b"QEMU" && note.n_type(endian) == 0 {
                descriptors.push(note.desc());
            }
        }
    }
    Ok((machine, descriptors))
}

/// What ptwalk reads of a `QEMUCPUState`.
struct CpuState {
    cs_selector: u32,
    cr0: u64,
    cr3: u64,
    cr4: u64,
}

impl CpuState {
    /// Reads `desc` after checking its version and size; the error says
    /// what is wrong, as words that follow "vCPU N's note".
    fn read(desc: &[u8]) -> Result<Self, String> {
        let u32_at = |at: usize| {
            desc.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let u64_at = |at: usize| {
            desc.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let (Some(version), Some(size)) = (u32_at(0), u32_at(4)) else {
            return Err(format!(
                "is {} bytes, too short for a QEMUCPUState",
                desc.len()
            ));
        };
        if version != QEMU_CPU_STATE_VERSION {
            return Err(format!(
                "is QEMUCPUState version {version}; ptwalk reads version {QEMU_CPU_STATE_VERSION}"
            ));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size < MIN_SIZE || size > desc.len() {
            return Err(format!(
                "gives its size as {size:#x} in a {:#x}-byte note; ptwalk reads from {MIN_SIZE:#x} bytes on, within the note",
                desc.len()
            ));
        }
        let field = |at: usize| u64_at(at).ok_or_else(|| format!("lacks offset {at:#x}"));
        Ok(Self {
            cs_selector: u32_at(CS_SELECTOR).ok_or("lacks the CS selector")?,
            cr0: field(CR0)?,
            cr3: field(CR3)?,
            cr4: field(CR4)?,
        })
    }
}
