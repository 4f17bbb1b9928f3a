//! The self-map on ARM64: a level 0 table descriptor of the upper range's
//! table whose next table is the 4 KiB page that holds that table, so every
//! descriptor has a virtual address.
//!
//! Windows on ARM64 keeps one 512-entry page per process, indexed by VA bits
//! 47:39 as an x64 PML4 is: with T0SZ = T1SZ = 17, `TTBR0_EL1` points at
//! its lower half and `TTBR1_EL1` at its upper half (page + 0x800), and one
//! entry of the upper half points back at the page (C. McGarr, "ARM64
//! Windows internals: the basics", 2025: `TCR_EL1` `0x615b5513511`, a
//! random self-map index per boot; a Windows 11 ARM64 crash dump shows
//! `MmPteBase` `0xFFFFA88000000000`, index 0x151).

use super::descriptor::{Descriptor, DescriptorKind, Level};
use super::registers::{Paging, VaRange};
use crate::walker::{PhysAddr, PhysicalMemory, VirtAddr};

/// A level 0 descriptor of `TTBR1_EL1`'s table that maps the page it is in.
///
/// ```
/// use vmwalk::walker::VirtAddr;
/// use vmwalk::walker::aarch64::{Level, SelfMap};
///
/// let map = SelfMap::at(0x151);
/// assert_eq!(map.pte_base(), VirtAddr(0xffff_a880_0000_0000));
/// // The entries for VA 0, one level up per pass through the self-map.
/// let va = VirtAddr(0);
/// assert_eq!(map.entry_address(va, Level::L3), VirtAddr(0xffff_a880_0000_0000));
/// assert_eq!(map.entry_address(va, Level::L2), VirtAddr(0xffff_a8d4_4000_0000));
/// assert_eq!(map.entry_address(va, Level::L1), VirtAddr(0xffff_a8d4_6a20_0000));
/// assert_eq!(map.entry_address(va, Level::L0), VirtAddr(0xffff_a8d4_6a35_1000));
/// // A kernel address: its level 0 descriptor is entry 0x1f0 of the table.
/// let va = VirtAddr(0xffff_f800_1234_5000);
/// assert_eq!(map.entry_address(va, Level::L0), VirtAddr(0xffff_a8d4_6a35_1000 + 8 * 0x1f0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfMap {
    index: u64,
}

impl SelfMap {
    /// The first valid level 0 descriptor of the upper range's table whose
    /// next table is the page holding that table, and whose PTE base is an
    /// upper-range address (a level 0 walk of 47 or 48 bits).
    ///
    /// # Errors
    /// When a descriptor cannot be read.
    pub fn find<M: PhysicalMemory + ?Sized>(
        paging: &Paging,
        memory: &M,
    ) -> Result<Option<Self>, M::Error> {
        let upper = paging.range(VaRange::Upper);
        if !matches!(upper.va_bits, 47 | 48) || upper.walks_disabled {
            return Ok(None);
        }
        let table = upper.table_base();
        let page = table & !0xfff;
        for entry in 0..1 << (upper.va_bits - Level::L0.shift()) {
            let at = table + 8 * entry;
            let descriptor = Descriptor(memory.read_u64(PhysAddr(at))?);
            let map = Self::at((at - page) / 8);
            if descriptor.kind(Level::L0) == DescriptorKind::Table
                && descriptor.output_address(12) == page
                && paging.select::<()>(map.pte_base().0).is_ok()
            {
                return Ok(Some(map));
            }
        }
        Ok(None)
    }

    /// The self-map at level 0 index `index` (taken modulo 512).
    #[must_use]
    pub const fn at(index: u64) -> Self {
        Self { index: index % 512 }
    }

    /// The index in the 512-entry page (VA bits 47:39 of the PTE base).
    #[must_use]
    pub const fn index(&self) -> u64 {
        self.index
    }

    /// Where the level 3 descriptors start (`nt!MmPteBase`): the upper-range
    /// address whose level 0 index is the self-map's.
    #[must_use]
    pub const fn pte_base(&self) -> VirtAddr {
        VirtAddr(0xffff_0000_0000_0000 | self.index << Level::L0.shift())
    }

    /// Whether [`Self::entry_address`] names the descriptors of `va`'s walk:
    /// always for an upper-range address; for a lower-range one only when
    /// `TTBR0_EL1`'s table is the page itself (its lower half, or all of
    /// it), walked from level 0 (47 or 48 bits), as Windows sets it.
    #[must_use]
    pub const fn names(&self, paging: &Paging, va: VirtAddr) -> bool {
        let (lower, upper) = (paging.range(VaRange::Lower), paging.range(VaRange::Upper));
        match VaRange::of(va.0) {
            VaRange::Upper => true,
            VaRange::Lower => {
                lower.table_base() == upper.table_base() & !0xfff && lower.va_bits >= 47
            }
        }
    }

    /// The virtual address of the `level` descriptor that maps `va`.
    ///
    /// Through the upper range's table: right for lower-range addresses only
    /// where [`Self::names`] says so, as on Windows.
    #[must_use]
    pub const fn entry_address(&self, va: VirtAddr, level: Level) -> VirtAddr {
        // Each pass through the self-map moves one level up.
        let passes = 4 - level.number();
        let mut address = va.0;
        let mut pass = 0;
        while pass < passes {
            let bits_47_12 = (address & 0x0000_ffff_ffff_ffff) >> 12;
            address = self.pte_base().0 + (bits_47_12 << 3);
            pass += 1;
        }
        VirtAddr(address)
    }
}
