//! What the options say about the CPU whose tables are walked (x86-64's CR3
//! and modes, or ARM64's `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1`), checked,
//! and the walker set up from them over the opened image.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vmwalk::walker::aarch64;
use vmwalk::walker::{Paging, PagingMode, PhysAddr, PhysicalMemory};

use crate::image::Image;

/// What the hints ask when nothing translates.
pub const CR3_QUESTION: &str = "is --cr3 right, and --la57 set if the CPU used 5-level paging?";

/// `TCR_EL1.EPD0` and `EPD1`: walks through that TTBR are disabled.
const EPD0: u64 = 1 << 7;
const EPD1: u64 = 1 << 23;

/// The image and the CPU's registers and modes, as given.
pub struct PagingArgs {
    pub image: PathBuf,
    /// `--arch aarch64`: `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1` instead of CR3.
    pub aarch64: Option<AArch64Args>,
    /// `--ttbr0`, `--ttbr1` or `--tcr` given (without `--arch aarch64`, a mistake).
    pub arm64_registers_given: bool,
    /// `None`: the crash dump header's.
    pub cr3: Option<u64>,
    pub la57: bool,
    /// `None`: not given (the walker takes 52).
    pub maxphyaddr: Option<u32>,
    pub no_nx: bool,
}

/// What `--arch aarch64` was given.
pub struct AArch64Args {
    pub ttbr0: Option<u64>,
    pub ttbr1: Option<u64>,
    pub tcr: Option<u64>,
}

/// The ARM64 registers, as given (`None`: that TTBR was not given).
pub struct Registers {
    pub ttbr0: Option<u64>,
    pub ttbr1: Option<u64>,
    pub tcr: u64,
}

impl PagingArgs {
    /// For `--arch aarch64`: the registers, after refusing x86-64's options.
    pub fn aarch64_registers(&self, given: &AArch64Args) -> Result<Registers> {
        if self.cr3.is_some() || self.la57 || self.no_nx || self.maxphyaddr.is_some() {
            bail!(
                "--cr3, --la57, --maxphyaddr and --no-nx describe an x86-64 CPU, not --arch aarch64 (which takes --ttbr0, --ttbr1 and --tcr)"
            );
        }
        let tcr = given
            .tcr
            .context("--tcr is required with --arch aarch64 (TCR_EL1, in hex)")?;
        if given.ttbr0.is_none() && given.ttbr1.is_none() {
            bail!("--arch aarch64 needs --ttbr0 or --ttbr1 (in hex)");
        }
        Ok(Registers {
            ttbr0: given.ttbr0,
            ttbr1: given.ttbr1,
            tcr,
        })
    }

    /// For x86-64: the walker from CR3 (given, or the crash dump's) over the
    /// opened image, with a hint on stderr if CR3 holds no page table.
    pub fn open(&self) -> Result<(Paging, Image)> {
        if self.arm64_registers_given {
            bail!("--ttbr0, --ttbr1 and --tcr describe an ARM64 CPU: add --arch aarch64");
        }
        let mode = if self.la57 {
            PagingMode::FiveLevel
        } else {
            PagingMode::FourLevel
        };
        let image = Image::open(&self.image)?;
        let cr3 = self
            .cr3
            .or_else(|| image.dump_cr3())
            .or_else(|| {
                let (cr3, why) = crate::spaces::low_stub_cr3(&image)?;
                eprintln!("ptwalk: CR3 {cr3:#x}: {why} (give --cr3 to walk another space)");
                Some(cr3)
            })
            .with_context(|| {
                format!(
                    "--cr3 is required: {0} records no CR3 and has no low stub that names the kernel's; ptwalk spaces --image {0} lists the address spaces it finds",
                    self.image.display()
                )
            })?;
        let paging = Paging::new(cr3, mode)
            .with_nx(!self.no_nx)
            .with_max_phys_bits(self.maxphyaddr.unwrap_or(52))?;
        image.check_table(paging.root())?;
        hint_if_not_a_table(&paging, &image);
        Ok((paging, image))
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
