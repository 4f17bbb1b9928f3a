//! The self-map: a top-level entry that points back to its own table, so
//! every paging-structure entry is visible at a virtual address. Windows
//! places it at a random top-level index since Windows 10 1607.

use super::entry::PageTableEntry;
use super::level::{Level, PagingMode};
use super::registers::Paging;
use crate::walker::{PhysAddr, PhysicalMemory, VirtAddr};

/// A top-level entry that maps its own table.
///
/// Before Windows 10 1607 the index was always 0x1ED, and the bases were the
/// well-known constants `WinDbg` users remember:
///
/// ```
/// use vmwalk::walker::{Level, PagingMode, SelfMap, VirtAddr};
///
/// let map = SelfMap::at(0x1ed, PagingMode::FourLevel);
/// assert_eq!(map.pte_base(), VirtAddr(0xffff_f680_0000_0000));
/// let va = VirtAddr(0);
/// assert_eq!(map.entry_address(va, Level::Pt), VirtAddr(0xffff_f680_0000_0000));
/// assert_eq!(map.entry_address(va, Level::Pd), VirtAddr(0xffff_f6fb_4000_0000));
/// assert_eq!(map.entry_address(va, Level::Pdpt), VirtAddr(0xffff_f6fb_7da0_0000));
/// assert_eq!(map.entry_address(va, Level::Pml4), VirtAddr(0xffff_f6fb_7dbe_d000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfMap {
    index: usize,
    mode: PagingMode,
}

impl SelfMap {
    /// The first present top-level entry whose frame is the top-level table.
    ///
    /// # Errors
    /// When a top-level entry cannot be read.
    pub fn find<M: PhysicalMemory + ?Sized>(
        paging: &Paging,
        memory: &M,
    ) -> Result<Option<Self>, M::Error> {
        let root = paging.root();
        for index in 0..512 {
            let entry = PageTableEntry(memory.read_u64(PhysAddr(root.0 + 8 * index as u64))?);
            if entry.is_present() && entry.address(12, paging.max_phys_bits()) == root {
                return Ok(Some(Self::at(index, paging.mode())));
            }
        }
        Ok(None)
    }

    /// The self-map at `index` (taken modulo 512) of the top-level table.
    #[must_use]
    pub const fn at(index: usize, mode: PagingMode) -> Self {
        Self {
            index: index % 512,
            mode,
        }
    }

    /// The paging mode.
    #[must_use]
    pub const fn mode(&self) -> PagingMode {
        self.mode
    }

    /// The top-level index.
    #[must_use]
    pub const fn index(&self) -> usize {
        self.index
    }

    /// Where the PTEs start (`nt!MmPteBase`): the address the self-map
    /// entry's index selects at the top level.
    #[must_use]
    pub const fn pte_base(&self) -> VirtAddr {
        let top_shift = self.mode.address_bits() - 9;
        VirtAddr(self.mode.canonicalize((self.index as u64) << top_shift))
    }

    /// The virtual address of the `level` entry that maps `va`, as `!pte` shows it.
    #[must_use]
    pub const fn entry_address(&self, va: VirtAddr, level: Level) -> VirtAddr {
        // Each pass through the self-map moves one level up: the PTE of `va`,
        // then the PTE of that PTE (its PDE), and so on.
        let passes = match level {
            Level::Pt => 1,
            Level::Pd => 2,
            Level::Pdpt => 3,
            Level::Pml4 => 4,
            Level::Pml5 => 5,
        };
        let mut address = va;
        let mut pass = 0;
        while pass < passes {
            let linear = self.mode.linear(address);
            address = VirtAddr(self.pte_base().0.wrapping_add((linear >> 12) << 3));
            pass += 1;
        }
        address
    }
}
