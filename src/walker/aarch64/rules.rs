//! ARM64 as the engine sees it: the [`Architecture`] implementation, and
//! what enumeration yields. Enumeration lists the TTBR0 range first, then
//! the TTBR1 range, each in ascending address order.

use super::descriptor::{Descriptor, Level};
use super::fault::FaultKind;
use super::outcome::Leaves;
use super::registers::{Paging, VaRange, mask};
use super::translate::{Access, Mapping, TableRestrictions};
use crate::walker::architecture::{Architecture, Step};
use crate::walker::merge;
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr};

/// Both ranges, in address order.
const BOTH_RANGES: &[VaRange] = &[VaRange::Lower, VaRange::Upper];

// Deliberately the shape of x86_64/rules.rs: both implement the engine's trait.
impl Architecture for Paging {
    type Level = Level;
    type Entry = Descriptor;
    type Space = VaRange;
    type Restrictions = TableRestrictions;
    type Mapping = Mapping;
    type Run = Run;
    type FaultKind<E> = FaultKind<E>;

    #[inline]
    fn entry(raw: u64) -> Descriptor {
        Descriptor(raw)
    }

    #[inline]
    fn shift(level: Level) -> u32 {
        level.shift()
    }

    #[inline]
    fn spaces(&self) -> &'static [VaRange] {
        BOTH_RANGES
    }

    #[inline]
    fn enumerated(&self, range: VaRange) -> bool {
        !self.range(range).walks_disabled
    }

    #[inline]
    fn input_bits(&self, range: VaRange) -> u32 {
        self.range(range).va_bits
    }

    #[inline]
    fn levels(&self, range: VaRange) -> &'static [Level] {
        match self.range(range).start_level() {
            Level::L0 => &[Level::L0, Level::L1, Level::L2, Level::L3],
            Level::L1 => &[Level::L1, Level::L2, Level::L3],
            Level::L2 | Level::L3 => &[Level::L2, Level::L3],
        }
    }

    #[inline]
    fn select<E>(&self, va: VirtAddr) -> Result<(VaRange, u64), FaultKind<E>> {
        Self::select(self, va.0)
    }

    #[inline]
    fn root<E>(&self, range: VaRange) -> Result<PhysAddr, FaultKind<E>> {
        self.initial_table(range).map(PhysAddr)
    }

    #[inline]
    fn step<E>(&self, level: Level, descriptor: Descriptor) -> Result<Step, FaultKind<E>> {
        Self::step(self, level, descriptor)
    }

    #[inline]
    fn usable_leaf(&self, level: Level, raw: u64) -> Option<(PageSize, PhysAddr)> {
        // Valid, and no output address bit at or above the PA size.
        if raw & (1 | (mask(0, 47) & !mask(0, self.pa_bits() - 1))) != 1 {
            return None;
        }
        // Bit 1: a page at level 3, a table above; clear: a block at 1 or 2.
        let size = match (level, raw & Descriptor::TABLE_OR_PAGE != 0) {
            (Level::L3, true) => PageSize::Size4K,
            (Level::L2, false) => PageSize::Size2M,
            (Level::L1, false) => PageSize::Size1G,
            _ => return None,
        };
        Some((size, PhysAddr(raw & mask(level.shift(), 47))))
    }

    #[inline]
    fn read_failed<E>(level: Level, addr: PhysAddr, error: E) -> FaultKind<E> {
        FaultKind::ReadFailed { level, addr, error }
    }

    /// A table descriptor at level 3 is a page: `step` never returns one there.
    #[inline]
    fn no_leaf<E>(level: Level, descriptor: Descriptor) -> FaultKind<E> {
        FaultKind::Reserved { level, descriptor }
    }

    #[inline]
    fn unrestricted(&self) -> TableRestrictions {
        TableRestrictions::default()
    }

    #[inline]
    fn narrowed(
        &self,
        range: VaRange,
        above: TableRestrictions,
        table: Descriptor,
    ) -> TableRestrictions {
        above.narrowed_by(table, self.range(range).hierarchical_permissions_disabled)
    }

    #[inline]
    fn mapping(
        &self,
        range: VaRange,
        ia: u64,
        size: PageSize,
        pa: PhysAddr,
        descriptor: Descriptor,
        above: TableRestrictions,
    ) -> Mapping {
        Self::mapping(self, range, ia, size, pa.0, descriptor, above)
    }

    #[inline]
    fn va(&self, range: VaRange, ia: u64) -> VirtAddr {
        match range {
            VaRange::Lower => VirtAddr(ia),
            VaRange::Upper => VirtAddr(ia | (u64::MAX << self.range(range).va_bits)),
        }
    }
}

impl Paging {
    /// Every block and page, TTBR0's range first, in address order.
    ///
    /// An invalid descriptor is skipped; one that faults otherwise (a
    /// reserved encoding, an address beyond the PA size, an unreadable
    /// table) is yielded as an error and what it covers skipped. A range
    /// whose walks are disabled (EPDx) yields nothing.
    #[must_use]
    pub fn leaves<'m, M: PhysicalMemory + ?Sized>(&self, memory: &'m M) -> Leaves<'m, M> {
        Leaves::new(*self, memory)
    }
}

/// Virtually and physically contiguous leaves of one range with equal size,
/// permissions and attributes (AttrIndx, SH, nG, AF, Contiguous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First virtual address.
    pub va: VirtAddr,
    /// First physical address.
    pub pa: PhysAddr,
    /// Length in bytes.
    pub bytes: u64,
    /// Size of each leaf.
    pub page_size: PageSize,
    /// The range.
    pub range: VaRange,
    /// Effective permissions.
    pub access: Access,
    /// The attributes every leaf shares: AttrIndx, SH, nG, AF, Contiguous.
    pub attributes: Descriptor,
}

impl Run {
    /// The descriptor bits a run's leaves must share.
    const ATTRIBUTES: u64 = 0b111 << Descriptor::ATTR_INDEX_SHIFT
        | 0b11 << Descriptor::SH_SHIFT
        | Descriptor::NOT_GLOBAL
        | Descriptor::ACCESSED
        | Descriptor::CONTIGUOUS;
}

// Deliberately the shape of x86_64/rules.rs: both implement the engine's trait.
impl merge::Run for Run {
    type Leaf = Mapping;

    #[inline]
    fn of(mapping: &Mapping) -> Self {
        Self {
            va: mapping.va,
            pa: mapping.pa,
            bytes: mapping.size.bytes(),
            page_size: mapping.size,
            range: mapping.range,
            access: mapping.access,
            attributes: Descriptor(mapping.descriptor.0 & Self::ATTRIBUTES),
        }
    }

    #[inline]
    fn extent(&self) -> (VirtAddr, PhysAddr, u64) {
        (self.va, self.pa, self.bytes)
    }

    #[inline]
    fn same_attributes(&self, other: &Self) -> bool {
        (self.page_size, self.range, self.access, self.attributes)
            == (other.page_size, other.range, other.access, other.attributes)
    }

    #[inline]
    fn grow(&mut self, bytes: u64) {
        self.bytes += bytes;
    }
}
