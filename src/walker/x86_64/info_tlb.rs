//! Leaves printed exactly as QEMU's `info tlb` prints them
//! (`target/i386/monitor.c`: `print_pte`), so the two outputs can be diffed.

use core::fmt;

use super::entry::{PageTableEntry, address_mask};
use super::translate::Mapping;
use crate::walker::address::PageSize;

/// `<va>: <pa> XGPDACTUW`: canonical page address, the leaf's address bits
/// 49:page-shift (QEMU's mask), and the leaf's own flags.
#[derive(Clone, Copy, Debug)]
pub struct InfoTlbLine<'a>(pub &'a Mapping);

impl fmt::Display for InfoTlbLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Mapping {
            va, size, entry, ..
        } = *self.0;
        let pa = entry.0 & address_mask(size.bytes().trailing_zeros(), 50);
        let flag = |bit: u64, c: char| if entry.has(bit) { c } else { '-' };
        // QEMU clears bit 7 of a PTE (PAT there) before printing, so P marks large pages.
        let large = if size == PageSize::Size4K { '-' } else { 'P' };
        write!(
            f,
            "{:016x}: {:016x} {}{}{}{}{}{}{}{}{}",
            va.0,
            pa,
            flag(PageTableEntry::NO_EXECUTE, 'X'),
            flag(PageTableEntry::GLOBAL, 'G'),
            large,
            flag(PageTableEntry::DIRTY, 'D'),
            flag(PageTableEntry::ACCESSED, 'A'),
            flag(PageTableEntry::CACHE_DISABLE, 'C'),
            flag(PageTableEntry::WRITE_THROUGH, 'T'),
            flag(PageTableEntry::USER, 'U'),
            flag(PageTableEntry::WRITABLE, 'W'),
        )
    }
}
