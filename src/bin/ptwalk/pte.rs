//! `ptwalk pte`: the block `WinDbg`'s `!pte` prints, for each address.

use std::io::Write;

use anyhow::{Result, bail};
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::windbg::PteBlock;
use vmwalk::walker::{FaultKind, Paging, SelfMap, VirtAddr};

use crate::image::Image;

/// Which top-level entry maps its own table.
#[derive(Clone, Copy)]
pub enum SelfMapChoice {
    /// Find it, as the driver does.
    Auto,
    /// This index.
    Index(usize),
}

/// Prints the `!pte` block of each address, a blank line between them.
pub fn print(
    out: &mut impl Write,
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

/// What `WinDbg` prints when a dump lacks the table holding an entry
/// (tests/windbg/18): the block's first `header` lines (the address and the
/// entries' addresses), the page it could not read (the entry's `physical`
/// address), and the entry's `virtual_address`.
///
/// # Errors
/// When `out` fails.
pub fn write_missing_table(
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
pub struct Unshown {
    /// Outside the address space (non-canonical, or outside both TTBRs).
    pub invalid: usize,
    /// Their walk needs a table the image does not hold.
    pub missing: usize,
}

impl Unshown {
    /// An error naming them, if any.
    pub fn check(&self) -> Result<()> {
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
