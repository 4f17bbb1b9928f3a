//! `ptwalk pte`: the block `WinDbg`'s `!pte` prints, for each address.

use std::io::Write;

use anyhow::{Result, bail};
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::windbg::PteBlock;
use vmwalk::walker::{Paging, SelfMap, VirtAddr};

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
    for (n, &va) in addresses.iter().enumerate() {
        let path = match paging.translate(image, VirtAddr(va)) {
            Ok(translation) => translation.path,
            Err(fault) => fault.path,
        };
        let block = PteBlock {
            va: VirtAddr(va),
            path: &path,
            self_map,
            invalid_pte_mask,
        };
        if n > 0 {
            writeln!(out)?;
        }
        for line in block.lines() {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
