//! The bits of a paging-structure entry (Intel SDM vol. 3A, 4.5, tables 4-15 to 4-20).

use super::level::Level;
use crate::walker::PhysAddr;

/// A raw 64-bit paging-structure entry, at any level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PageTableEntry(pub u64);

impl PageTableEntry {
    /// P: the entry maps a table or a page.
    pub const PRESENT: u64 = 1 << 0;
    /// R/W: writes allowed.
    pub const WRITABLE: u64 = 1 << 1;
    /// U/S: user-mode accesses allowed.
    pub const USER: u64 = 1 << 2;
    /// PWT: page-level write-through.
    pub const WRITE_THROUGH: u64 = 1 << 3;
    /// PCD: page-level cache disable.
    pub const CACHE_DISABLE: u64 = 1 << 4;
    /// A: accessed.
    pub const ACCESSED: u64 = 1 << 5;
    /// D: dirty (leaves only).
    pub const DIRTY: u64 = 1 << 6;
    /// PS in a PDPTE or PDE (a 1 GiB or 2 MiB leaf); PAT in a PTE.
    pub const PAGE_SIZE: u64 = 1 << 7;
    /// G: global (leaves only).
    pub const GLOBAL: u64 = 1 << 8;
    /// PAT bit of a 1 GiB or 2 MiB leaf.
    pub const LARGE_PAT: u64 = 1 << 12;
    /// XD: execute disable, when EFER.NXE is set.
    pub const NO_EXECUTE: u64 = 1 << 63;

    /// Whether P is set.
    #[must_use]
    pub const fn is_present(self) -> bool {
        self.0 & Self::PRESENT != 0
    }

    /// Whether the given flag bits are all set.
    #[must_use]
    pub const fn has(self, flags: u64) -> bool {
        self.0 & flags == flags
    }

    /// The physical address in bits `max_phys_bits-1..=low_bit`.
    #[must_use]
    pub const fn address(self, low_bit: u32, max_phys_bits: u32) -> PhysAddr {
        PhysAddr(self.0 & address_mask(low_bit, max_phys_bits))
    }

    /// Whether PS is set where it means a large page: in a PDPTE (1 GiB) or a
    /// PDE (2 MiB). Elsewhere bit 7 is PAT (a PTE) or reserved.
    ///
    /// ```
    /// use vmwalk::walker::{Level, PageTableEntry};
    /// let ps = PageTableEntry(0x2000_0000 | 0xe3);
    /// assert!(ps.is_large_at(Level::Pd) && !ps.is_large_at(Level::Pt));
    /// ```
    #[must_use]
    pub const fn is_large_at(self, level: Level) -> bool {
        matches!(level, Level::Pdpt | Level::Pd) && self.has(Self::PAGE_SIZE)
    }

    /// The page frame number (bits 51:12, as `WinDbg` prints it).
    #[must_use]
    pub const fn pfn(self) -> u64 {
        (self.0 & address_mask(12, 52)) >> 12
    }
}

/// Mask of bits `high_bits-1..=low_bit`.
#[must_use]
pub const fn address_mask(low_bit: u32, high_bits: u32) -> u64 {
    ((1u64 << high_bits) - 1) & !((1u64 << low_bit) - 1)
}

/// Caching bits of a leaf: together they select a PAT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MemoryTypeBits {
    /// PAT bit (bit 7 of a PTE, bit 12 of a large leaf).
    pub pat: bool,
    /// PCD.
    pub cache_disable: bool,
    /// PWT.
    pub write_through: bool,
}

impl MemoryTypeBits {
    /// The PAT entry index these bits select: PAT*4 + PCD*2 + PWT.
    #[must_use]
    pub const fn pat_index(self) -> u8 {
        (self.pat as u8) << 2 | (self.cache_disable as u8) << 1 | self.write_through as u8
    }
}

impl core::fmt::Display for PageTableEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}
