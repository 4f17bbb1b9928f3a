//! What the options say about the CPU whose tables are walked (x86-64's CR3
//! and modes, or ARM64's `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1`), completed
//! from what the capture records (`recorded.rs`), checked, and the walker set
//! up from them over the opened image.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vmwalk::walker::aarch64;
use vmwalk::walker::{Paging, PagingMode, PhysAddr, PhysicalMemory};

use crate::crash_dump::Machine;
use crate::image::Image;
use crate::recorded::{Recorded, recorded_registers};

/// What the hints ask when nothing translates.
pub const CR3_QUESTION: &str = "is --cr3 right, and --la57 set if the CPU used 5-level paging?";

/// `TCR_EL1.EPD0` and `EPD1`: walks through that TTBR are disabled.
const EPD0: u64 = 1 << 7;
const EPD1: u64 = 1 << 23;

/// The architecture `--arch` names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// The image and the CPU's registers and modes, as given.
pub struct PagingArgs {
    pub image: PathBuf,
    /// `--arch`; `None`: the capture's (an ARM64 crash dump is walked as
    /// ARM64), else x86-64.
    pub arch: Option<Arch>,
    /// `--ttbr0`, `--ttbr1` and `--tcr` (not with x86-64).
    pub arm64: AArch64Args,
    /// `None`: the capture's.
    pub cr3: Option<u64>,
    pub la57: bool,
    /// `None`: not given (the walker takes 52).
    pub maxphyaddr: Option<u32>,
    pub no_nx: bool,
    /// `--cpu`: the vCPU whose registers an ELF core's QEMU notes give
    /// (`None`: vCPU 0).
    pub cpu: Option<usize>,
}

/// The ARM64 registers given on the command line.
pub struct AArch64Args {
    pub ttbr0: Option<u64>,
    pub ttbr1: Option<u64>,
    pub tcr: Option<u64>,
}

/// The ARM64 registers to walk with (`None`: that TTBR was not given).
pub struct Registers {
    pub ttbr0: Option<u64>,
    pub ttbr1: Option<u64>,
    pub tcr: u64,
}

/// The opened image and the registers to walk it with, on the architecture
/// `--arch` names, or else the capture's.
pub enum Opened {
    X86_64 { paging: Paging, image: Image },
    Aarch64 { registers: Registers, image: Image },
}

impl PagingArgs {
    /// Opens the image and sets up the walker: from the options, and for
    /// what they leave out, from the registers the capture records. `check`
    /// refuses the subcommand's options that do not go with the architecture
    /// (`--arch`'s, else the capture's). Once all is checked, says on stderr,
    /// in one line, what came from the capture.
    pub fn open(&self, check: impl FnOnce(Arch) -> Result<()>) -> Result<Opened> {
        let image = Image::open(&self.image)?;
        let arm64_dump = image.dump_machine() == Some(Machine::Arm64);
        let arch = match self.arch {
            Some(arch) => arch,
            None if arm64_dump => Arch::Aarch64,
            None => Arch::X86_64,
        };
        check(arch)?;
        match arch {
            Arch::Aarch64 => self.open_aarch64(image, self.arch.is_none()),
            Arch::X86_64 => self.open_x86_64(image),
        }
    }

    /// x86-64: the walker from CR3 (given, or the capture's), with a hint on
    /// stderr if CR3 holds no page table.
    fn open_x86_64(&self, image: Image) -> Result<Opened> {
        let given = &self.arm64;
        if given.ttbr0.is_some() || given.ttbr1.is_some() || given.tcr.is_some() {
            bail!("--ttbr0, --ttbr1 and --tcr describe an ARM64 CPU: add --arch aarch64");
        }
        let (cr3, la57, said) = match self.cr3 {
            Some(cr3) => {
                if let Some(cpu) = self.cpu {
                    bail!(
                        "--cpu {cpu} picks whose registers to read from the capture, and --cr3 gives them: give one or the other"
                    );
                }
                (cr3, self.la57, None)
            }
            None => self.recorded_x86_64(&image)?,
        };
        let mode = if la57 {
            PagingMode::FiveLevel
        } else {
            PagingMode::FourLevel
        };
        let paging = Paging::new(cr3, mode)
            .with_nx(!self.no_nx)
            .with_max_phys_bits(self.maxphyaddr.unwrap_or(52))?;
        image.check_table(paging.root())?;
        if let Some(said) = said {
            eprintln!("ptwalk: {said}");
        }
        hint_if_not_a_table(&paging, &image);
        Ok(Opened::X86_64 { paging, image })
    }

    /// CR3 and whether to walk 5 levels, from the capture (`--la57` still
    /// asks for 5), and the line that says so.
    fn recorded_x86_64(&self, image: &Image) -> Result<(u64, bool, Option<String>)> {
        let name = image.name();
        match recorded_registers(image, self.cpu)? {
            Some(Recorded::X86_64 {
                cr3,
                la57,
                source,
                user_mode,
            }) => {
                let mode = match la57 {
                    Some(la57) if !self.la57 => {
                        format!(" and {}-level paging", if la57 { 5 } else { 4 })
                    }
                    _ => String::new(),
                };
                let user = if user_mode {
                    "; that vCPU was in user mode (CPL 3): under KPTI its CR3 is the user-only table, which maps little of the kernel (--cpu N for another vCPU, or --cr3)"
                } else {
                    ""
                };
                Ok((
                    cr3,
                    self.la57 || la57 == Some(true),
                    Some(format!("CR3 {cr3:#x}{mode} from {source}{user}")),
                ))
            }
            Some(Recorded::Aarch64 { .. }) => bail!(
                "--cr3 is required with --arch x86_64: {name} is an ARM64 crash dump (MachineImageType 0xAA64), which records no CR3"
            ),
            // Nothing recorded: the kernel's CR3 as the low stub names it.
            None => match crate::spaces::low_stub_cr3(image) {
                Some((cr3, why)) => Ok((
                    cr3,
                    self.la57,
                    Some(format!(
                        "CR3 {cr3:#x}: {why} (give --cr3 to walk another space)"
                    )),
                )),
                None => bail!(
                    "--cr3 is required: {name} records no registers and has no low stub that names the kernel's CR3; find its address spaces with ptwalk spaces --image {name}, or give --cr3"
                ),
            },
        }
    }

    /// ARM64: the registers given, the rest from the capture. `switched`:
    /// `--arch` was not given and the capture is an ARM64 crash dump.
    fn open_aarch64(&self, image: Image, switched: bool) -> Result<Opened> {
        let name = image.name();
        if self.cr3.is_some() || self.la57 || self.no_nx || self.maxphyaddr.is_some() {
            if switched {
                bail!(
                    "{name} is an ARM64 crash dump (MachineImageType 0xAA64): --cr3, --la57, --maxphyaddr and --no-nx describe an x86-64 CPU (--arch x86_64 walks it as one anyway)"
                );
            }
            bail!(
                "--cr3, --la57, --maxphyaddr and --no-nx describe an x86-64 CPU, not --arch aarch64 (which takes --ttbr0, --ttbr1 and --tcr)"
            );
        }
        if let Some(cpu) = self.cpu {
            bail!(
                "--cpu {cpu} picks a vCPU of an x86 guest's QEMU ELF core; ARM64 captures record no registers per processor"
            );
        }
        let given = &self.arm64;
        let ttbrs_given = given.ttbr0.is_some() || given.ttbr1.is_some();
        let recorded = if ttbrs_given && given.tcr.is_some() {
            None
        } else {
            match recorded_registers(&image, None)? {
                Some(Recorded::Aarch64 {
                    ttbr0,
                    ttbr1,
                    tcr,
                    source,
                }) => Some((ttbr0, ttbr1, tcr, source)),
                _ => None,
            }
        };
        let tcr = given
            .tcr
            .or_else(|| recorded.as_ref().map(|r| r.2))
            .context("--tcr is required with --arch aarch64 (TCR_EL1, in hex)")?;
        let mut said = Vec::new();
        let (ttbr0, ttbr1) = match &recorded {
            _ if ttbrs_given => (given.ttbr0, given.ttbr1),
            Some((ttbr0, ttbr1, _, source)) => {
                said.push(format!(
                    "TTBR0_EL1 {ttbr0:#x} and TTBR1_EL1 {ttbr1:#x} from {source}"
                ));
                (Some(*ttbr0), Some(*ttbr1))
            }
            None => bail!("--arch aarch64 needs --ttbr0 or --ttbr1 (in hex)"),
        };
        if given.tcr.is_none() {
            said.push(format!(
                "TCR_EL1 {tcr:#x}, Windows on ARM64's (a dump does not record it; --tcr to give another)"
            ));
        }
        let registers = Registers { ttbr0, ttbr1, tcr };
        registers.paging()?;
        let said = said.join(", ");
        match (switched, said.is_empty()) {
            (true, true) => {
                eprintln!(
                    "ptwalk: ARM64 crash dump (MachineImageType 0xAA64): walked as --arch aarch64"
                );
            }
            (true, false) => eprintln!(
                "ptwalk: ARM64 crash dump (MachineImageType 0xAA64): walked as --arch aarch64, with {said}"
            ),
            (false, false) => eprintln!("ptwalk: {said}"),
            (false, true) => {}
        }
        Ok(Opened::Aarch64 { registers, image })
    }
}

impl Registers {
    /// The walker's view of the registers. A TTBR that was not given is
    /// walked as if `TCR_EL1.EPDx` disabled it: its addresses fault at level 0.
    pub fn paging(&self) -> Result<aarch64::Paging> {
        let tcr = self.tcr
            | if self.ttbr0.is_none() { EPD0 } else { 0 }
            | if self.ttbr1.is_none() { EPD1 } else { 0 };
        aarch64::Paging::from_registers(self.ttbr0.unwrap_or(0), self.ttbr1.unwrap_or(0), tcr)
            .with_context(|| {
                format!(
                    "TCR_EL1 {:#x} describes no translation ptwalk walks",
                    self.tcr
                )
            })
    }
}

/// Says on stderr when the table at CR3 does not look like a page table: no
/// present entry, or most present entries pointing beyond MAXPHYADDR.
fn hint_if_not_a_table(paging: &Paging, image: &Image) {
    let root = paging.root();
    let entries = (0..512).filter_map(|i| image.read_u64(PhysAddr(root.0 + 8 * i)).ok());
    let (mut present, mut beyond) = (0_u32, 0_u32);
    for entry in entries.filter(|entry| entry & 1 != 0) {
        present += 1;
        beyond += u32::from((entry & 0x000f_ffff_ffff_f000) >> paging.max_phys_bits() != 0);
    }
    if present == 0 {
        eprintln!(
            "ptwalk: hint: the table at CR3 ({root}) has no present entry: is --cr3 the address of a top-level page table?"
        );
    } else if beyond * 2 > present {
        eprintln!(
            "ptwalk: hint: {beyond} of the {present} present entries at CR3 ({root}) point beyond MAXPHYADDR {}: is --cr3 a page table's address, and --maxphyaddr right?",
            paging.max_phys_bits()
        );
    }
}
