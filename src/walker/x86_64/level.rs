//! x86-64's paging modes (4- and 5-level) and its paging-structure levels.

use core::fmt;

use crate::walker::VirtAddr;

/// Paging mode, from CR4.LA57.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingMode {
    /// 4-level paging: 48-bit linear addresses.
    FourLevel,
    /// 5-level paging: 57-bit linear addresses.
    FiveLevel,
}

impl PagingMode {
    /// Number of significant linear-address bits.
    #[must_use]
    pub const fn address_bits(self) -> u32 {
        match self {
            Self::FourLevel => 48,
            Self::FiveLevel => 57,
        }
    }

    /// The levels a walk visits, top first.
    #[must_use]
    pub const fn levels(self) -> &'static [Level] {
        match self {
            Self::FourLevel => &[Level::Pml4, Level::Pdpt, Level::Pd, Level::Pt],
            Self::FiveLevel => &[Level::Pml5, Level::Pml4, Level::Pdpt, Level::Pd, Level::Pt],
        }
    }

    /// Whether `va` is canonical: every bit above the top one significant bit
    /// copies it.
    #[must_use]
    pub const fn is_canonical(self, va: VirtAddr) -> bool {
        self.canonicalize(self.linear(va)) == va.0
    }

    /// The significant bits of `va`, zero-extended.
    #[must_use]
    pub const fn linear(self, va: VirtAddr) -> u64 {
        va.0 & ((1 << self.address_bits()) - 1)
    }

    /// Sign-extends a linear address to its canonical form.
    #[must_use]
    pub const fn canonicalize(self, linear: u64) -> u64 {
        let unused = 64 - self.address_bits();
        ((linear << unused).cast_signed() >> unused).cast_unsigned()
    }
}

/// A paging-structure level, named as in the Intel SDM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Page map level 5 (only with LA57).
    Pml5,
    /// Page map level 4.
    Pml4,
    /// Page-directory-pointer table.
    Pdpt,
    /// Page directory.
    Pd,
    /// Page table.
    #[default]
    Pt,
}

impl Level {
    /// The lowest linear-address bit that indexes this level's table.
    #[must_use]
    pub const fn shift(self) -> u32 {
        match self {
            Self::Pml5 => 48,
            Self::Pml4 => 39,
            Self::Pdpt => 30,
            Self::Pd => 21,
            Self::Pt => 12,
        }
    }

    /// The level whose index starts at linear-address bit `shift` (12 or more).
    #[must_use]
    pub(super) const fn indexed_by(shift: u32) -> Self {
        match shift {
            48.. => Self::Pml5,
            39..48 => Self::Pml4,
            30..39 => Self::Pdpt,
            21..30 => Self::Pd,
            _ => Self::Pt,
        }
    }

    /// The bytes of linear address space one entry of this level maps.
    #[must_use]
    pub const fn entry_span(self) -> u64 {
        1 << self.shift()
    }

    /// Index of `linear`'s entry in this level's table.
    #[must_use]
    pub const fn index(self, linear: u64) -> usize {
        ((linear >> self.shift()) & 0x1ff) as usize
    }

    /// The name `WinDbg`'s `!pte` gives to an entry of this level.
    #[must_use]
    pub const fn windbg_name(self) -> &'static str {
        match self {
            Self::Pml5 => "PML5E",
            Self::Pml4 => "PXE",
            Self::Pdpt => "PPE",
            Self::Pd => "PDE",
            Self::Pt => "PTE",
        }
    }

    /// The Intel SDM name of an entry of this level.
    #[must_use]
    pub const fn entry_name(self) -> &'static str {
        match self {
            Self::Pml5 => "PML5E",
            Self::Pml4 => "PML4E",
            Self::Pdpt => "PDPTE",
            Self::Pd => "PDE",
            Self::Pt => "PTE",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.entry_name())
    }
}
