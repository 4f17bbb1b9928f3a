//! VMSAv8-64 translation table descriptors with the 4 KiB granule and 48-bit
//! output addresses (Arm ARM, "VMSAv8-64 translation table format
//! descriptors"; attribute names as in the Arm ARM and `aarch64-paging`).

use core::fmt;

/// A lookup level: level 0 resolves VA bits 47:39, level 3 bits 20:12.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Resolves bits 47:39; holds only table descriptors.
    #[default]
    L0,
    /// Resolves bits 38:30; a block maps 1 GiB.
    L1,
    /// Resolves bits 29:21; a block maps 2 MiB.
    L2,
    /// Resolves bits 20:12; a page maps 4 KiB.
    L3,
}

impl Level {
    /// Every level, top first.
    pub const ALL: [Self; 4] = [Self::L0, Self::L1, Self::L2, Self::L3];

    /// The lowest VA bit this level resolves.
    #[must_use]
    pub const fn shift(self) -> u32 {
        match self {
            Self::L0 => 39,
            Self::L1 => 30,
            Self::L2 => 21,
            Self::L3 => 12,
        }
    }

    /// 0 to 3.
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::L0 => 0,
            Self::L1 => 1,
            Self::L2 => 2,
            Self::L3 => 3,
        }
    }

    /// The level below, if any.
    #[must_use]
    pub const fn next(self) -> Option<Self> {
        match self {
            Self::L0 => Some(Self::L1),
            Self::L1 => Some(Self::L2),
            Self::L2 => Some(Self::L3),
            Self::L3 => None,
        }
    }

    /// Bytes of VA space one descriptor at this level covers.
    #[must_use]
    pub const fn entry_span(self) -> u64 {
        1 << self.shift()
    }

    /// Index of `ia`'s descriptor in this level's table.
    #[must_use]
    pub const fn index(self, ia: u64) -> u64 {
        (ia >> self.shift()) & 0x1ff
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.number())
    }
}

/// What a descriptor is at the level it is read at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DescriptorKind {
    /// Bit 0 clear: a Translation fault (the other bits are the software's).
    Invalid,
    /// Bits 1:0 = 0b01 at level 0 (no level 0 blocks with the 4 KiB granule
    /// without FEAT_LPA2) or at level 3: reserved, a Translation fault.
    Reserved,
    /// Bits 1:0 = 0b11 at levels 0 to 2: the next-level table.
    Table,
    /// Bits 1:0 = 0b01 at level 1 or 2: a 1 GiB or 2 MiB block.
    Block,
    /// Bits 1:0 = 0b11 at level 3: a 4 KiB page.
    Page,
}

/// `invalid`, `reserved encoding`, `table`, `block` or `page`.
impl fmt::Display for DescriptorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid",
            Self::Reserved => "reserved encoding",
            Self::Table => "table",
            Self::Block => "block",
            Self::Page => "page",
        })
    }
}

/// Shareability, the SH\[1:0\] field of a block or page descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shareability {
    /// 0b00.
    NonShareable,
    /// 0b01, reserved: CONSTRAINED UNPREDICTABLE.
    Reserved,
    /// 0b10.
    OuterShareable,
    /// 0b11.
    InnerShareable,
}

impl fmt::Display for Shareability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NonShareable => "NSH",
            Self::Reserved => "SH=01",
            Self::OuterShareable => "OSH",
            Self::InnerShareable => "ISH",
        })
    }
}

/// A raw 64-bit descriptor, at any level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Descriptor(pub u64);

impl Descriptor {
    /// Bit 0: valid.
    pub const VALID: u64 = 1 << 0;
    /// Bit 1: a table (levels 0-2) or page (level 3), rather than a block.
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    /// AttrIndx\[2:0\], bits 4:2: the MAIR_EL1 attribute field.
    pub const ATTR_INDEX_SHIFT: u32 = 2;
    /// NS, bit 5: non-secure output address (Secure state only).
    pub const NS: u64 = 1 << 5;
    /// AP\[1\], bit 6: EL0 may access.
    pub const AP_EL0: u64 = 1 << 6;
    /// AP\[2\], bit 7: read-only.
    pub const AP_READ_ONLY: u64 = 1 << 7;
    /// SH\[1:0\], bits 9:8.
    pub const SH_SHIFT: u32 = 8;
    /// AF, bit 10: the access flag.
    pub const ACCESSED: u64 = 1 << 10;
    /// nG, bit 11: not global (the TLB entry belongs to the current ASID).
    pub const NOT_GLOBAL: u64 = 1 << 11;
    /// DBM, bit 51: dirty bit modifier (with TCR_EL1.HD).
    pub const DBM: u64 = 1 << 51;
    /// Contiguous, bit 52: one of 16 adjacent entries with the same attributes.
    pub const CONTIGUOUS: u64 = 1 << 52;
    /// PXN, bit 53: not executable at EL1.
    pub const PXN: u64 = 1 << 53;
    /// UXN (XN), bit 54: not executable at EL0.
    pub const UXN: u64 = 1 << 54;
    /// PXNTable, bit 59 of a table descriptor.
    pub const PXN_TABLE: u64 = 1 << 59;
    /// UXNTable (XNTable), bit 60 of a table descriptor.
    pub const UXN_TABLE: u64 = 1 << 60;
    /// APTable\[0\], bit 61: no EL0 access below this table.
    pub const AP_TABLE_NO_EL0: u64 = 1 << 61;
    /// APTable\[1\], bit 62: no writes below this table.
    pub const AP_TABLE_READ_ONLY: u64 = 1 << 62;
    /// NSTable, bit 63.
    pub const NS_TABLE: u64 = 1 << 63;

    /// What this descriptor is at `level`.
    #[must_use]
    pub const fn kind(self, level: Level) -> DescriptorKind {
        if self.0 & Self::VALID == 0 {
            return DescriptorKind::Invalid;
        }
        let table_or_page = self.0 & Self::TABLE_OR_PAGE != 0;
        match (level, table_or_page) {
            (Level::L0 | Level::L3, false) => DescriptorKind::Reserved,
            (Level::L1 | Level::L2, false) => DescriptorKind::Block,
            (Level::L3, true) => DescriptorKind::Page,
            (Level::L0 | Level::L1 | Level::L2, true) => DescriptorKind::Table,
        }
    }

    /// The output address of a block or page at `level`, or the next table's
    /// address: bits 47:`level.shift()` (47:12 for a table). Bits 51:48 are
    /// RES0 without 52-bit addresses and are not read, as QEMU does; the
    /// RES0 bits below a block's address are not read either.
    #[must_use]
    pub const fn output_address(self, low_bit: u32) -> u64 {
        self.0 & super::registers::mask(low_bit, 47)
    }

    /// Whether all of `flags` are set.
    #[must_use]
    pub const fn has(self, flags: u64) -> bool {
        self.0 & flags == flags
    }

    /// AttrIndx: which MAIR_EL1 byte gives the memory type.
    #[must_use]
    pub const fn attr_index(self) -> u8 {
        ((self.0 >> Self::ATTR_INDEX_SHIFT) & 0b111) as u8
    }

    /// SH\[1:0\].
    #[must_use]
    pub const fn shareability(self) -> Shareability {
        match (self.0 >> Self::SH_SHIFT) & 0b11 {
            0b00 => Shareability::NonShareable,
            0b01 => Shareability::Reserved,
            0b10 => Shareability::OuterShareable,
            _ => Shareability::InnerShareable,
        }
    }

    /// AP\[2:1\], bits 7:6.
    #[must_use]
    pub const fn access_permissions(self) -> u8 {
        ((self.0 >> 6) & 0b11) as u8
    }

    /// APTable\[1:0\], bits 62:61.
    #[must_use]
    pub const fn table_access_permissions(self) -> u8 {
        ((self.0 >> 61) & 0b11) as u8
    }
}

impl fmt::Display for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}
