//! `ptwalk pte`: the block `WinDbg`'s `!pte` prints, for each address, on
//! x86-64 (a Windows CR3) and ARM64 (Windows on ARM64's TTBRs), with what
//! `WinDbg` prints where a dump lacks a table.

use std::io::Write;

use anyhow::{Context, Result, bail};
use vmwalk::walker::aarch64;
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::windbg::PteBlock;
use vmwalk::walker::{FaultKind, Paging, SelfMap, VirtAddr};

use crate::addresses;
use crate::cli::{PteArgs, SelfMapChoice};
use crate::image::Image;
use crate::mask;
use crate::paging_args::{Arch, Opened, Registers};

/// Runs `pte`.
pub fn run(out: &mut dyn Write, args: &PteArgs) -> Result<()> {
    let addresses = &addresses::all(&args.addresses, &args.addresses_from)?;
    let check = |arch| {
        if arch == Arch::Aarch64 && args.invalid_pte_mask.is_some() {
            bail!("--invalid-pte-mask is x64 Windows' L1TF mask, not ARM64's (--arch aarch64)");
        }
        Ok(())
    };
    match args.paging.open(check)? {
        Opened::X86_64 { paging, image } => {
            let maxphyaddr = args.paging.maxphyaddr;
            let mask = || mask::choose(&image, &paging, args.invalid_pte_mask, maxphyaddr);
            print(out, &paging, &image, mask, args.self_map, addresses)?;
            out.flush()?;
            Ok(())
        }
        Opened::Aarch64 { registers, image } => {
            print_aarch64(out, &registers, &image, args.self_map, addresses)
        }
    }
}

/// Prints the `!pte` block of each address, a blank line between them.
fn print(
    out: &mut dyn Write,
    paging: &Paging,
    image: &Image,
    invalid_pte_mask: impl FnOnce() -> InvalidPteMask,
    self_map: SelfMapChoice,
    addresses: &[u64],
) -> Result<()> {
    let self_map = match self_map {
        SelfMapChoice::Index(index) => SelfMap::at(index, paging.mode()),
        SelfMapChoice::Auto => match SelfMap::find(paging, image)
            .map_err(|e| anyhow::anyhow!("reading the top-level table: {e}"))?
        {
            Some(found) => found,
            None => bail!(
                "no top-level entry points to its own table (not a Windows CR3?): give --self-map INDEX"
            ),
        },
    };
    let invalid_pte_mask = invalid_pte_mask();
    let mut unshown = Unshown::default();
    for (n, &va) in addresses.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        let (path, fault) = match paging.translate(image, VirtAddr(va)) {
            Ok(translation) => (translation.path, None),
            Err(fault) => (fault.path, Some(fault.kind)),
        };
        let block = PteBlock {
            va: VirtAddr(va),
            path: &path,
            self_map,
            invalid_pte_mask,
        };
        match fault {
            Some(kind @ FaultKind::NonCanonical { .. }) => {
                writeln!(out, "{va:#x}: {kind}")?;
                unshown.invalid += 1;
            }
            // As WinDbg says it when a dump lacks a table (tests/windbg/18):
            // the addresses, then the page it could not read.
            Some(FaultKind::ReadFailed { level, addr, .. }) => {
                let at = self_map.entry_address(VirtAddr(va), level).0;
                write_missing_table(out, block.lines().take(2), addr.0, at)?;
                unshown.missing += 1;
            }
            _ => {
                for line in block.lines() {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    unshown.check()
}

/// The block `WinDbg`'s `!pte` prints on Windows for ARM64, for each
/// address, a blank line between them (an address outside both ranges: one
/// line saying so).
fn print_aarch64(
    out: &mut dyn Write,
    registers: &Registers,
    image: &Image,
    self_map: SelfMapChoice,
    addresses: &[u64],
) -> Result<()> {
    let paging = registers.paging()?;
    let self_map = match self_map {
        SelfMapChoice::Index(index) => aarch64::SelfMap::at(index as u64),
        SelfMapChoice::Auto => aarch64::SelfMap::find(&paging, image)
            .map_err(|e| anyhow::anyhow!("reading TTBR1_EL1's level 0 table: {e}"))?
            .context(
                "no level 0 descriptor of TTBR1_EL1's table maps the page it is in (not Windows on ARM64?): give --self-map INDEX",
            )?,
    };
    let mut unshown = Unshown::default();
    for (n, &va) in addresses.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        if !self_map.names(&paging, VirtAddr(va)) {
            writeln!(
                out,
                "{va:#x}: TTBR0_EL1's table is not the self-map's page: !pte names no descriptor of it"
            )?;
            continue;
        }
        let (path, fault) = match paging.translate(image, VirtAddr(va)) {
            Ok(translation) => (translation.path, None),
            Err(fault) => (fault.path, Some(fault)),
        };
        let block = aarch64::windbg::PteBlock {
            va: VirtAddr(va),
            path: &path,
            self_map,
        };
        match fault {
            // As WinDbg says it when a dump lacks a table (tests/windbg/18).
            Some(aarch64::Fault {
                kind: aarch64::FaultKind::ReadFailed { level, addr, .. },
                ..
            }) => {
                let at = self_map.entry_address(VirtAddr(va), level).0;
                write_missing_table(out, block.lines().take(2), addr.0, at)?;
                unshown.missing += 1;
            }
            // Outside both ranges, or no walk at all: no descriptor to show.
            Some(fault) if fault.path.is_empty() => {
                writeln!(out, "{fault}")?;
                unshown.invalid += 1;
            }
            _ => {
                for line in block.lines() {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    unshown.check()
}

/// What `WinDbg` prints when a dump lacks the table holding an entry
/// (tests/windbg/18): the block's first `header` lines (the address and the
/// entries' addresses), the page it could not read (the entry's `physical`
/// address), and the entry's `virtual_address`.
fn write_missing_table(
    out: &mut (impl Write + ?Sized),
    header: impl Iterator<Item = impl std::fmt::Display>,
    physical: u64,
    virtual_address: u64,
) -> std::io::Result<()> {
    for line in header {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "Page {:x} not present in the dump file. Type \".hh dbgerr004\" for details",
        physical >> 12
    )?;
    writeln!(out, "Unable to get PXE {virtual_address:016X}")
}

/// Addresses `pte` could not show a block for: the exit status says so.
#[derive(Default)]
struct Unshown {
    /// Outside the address space (non-canonical, or outside both TTBRs).
    invalid: usize,
    /// Their walk needs a table the image does not hold.
    missing: usize,
}

impl Unshown {
    /// An error naming them, if any.
    fn check(&self) -> Result<()> {
        match (self.missing, self.invalid) {
            (0, 0) => Ok(()),
            (missing, 0) => {
                bail!("{missing} address(es) need page tables that are not in the image")
            }
            (0, invalid) => bail!("{invalid} address(es) are outside the address space"),
            (missing, invalid) => bail!(
                "{missing} address(es) need page tables that are not in the image, {invalid} are outside the address space"
            ),
        }
    }
}
