//! x86-64 as the engine sees it: the [`Architecture`] implementation, and
//! what enumeration yields (every leaf, runs of leaves).

use super::entry::{MemoryTypeBits, PageTableEntry, address_mask};
use super::fault::FaultKind;
use super::level::Level;
use super::outcome::Leaves;
use super::registers::Paging;
use super::translate::{Access, Mapping, PresentKind};
use crate::walker::architecture::{Architecture, Step};
use crate::walker::merge;
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr};

/// A bad enumeration range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A bound is not canonical in the paging mode.
    #[error("range bound {0} is not canonical")]
    NonCanonical(VirtAddr),
    /// The first address is above the last.
    #[error("range start {0} is above its end {1}")]
    Reversed(VirtAddr, VirtAddr),
}

/// x86-64 has one address space: the canonical addresses of the paging mode.
const ONE_SPACE: &[()] = &[()];

// Deliberately the shape of aarch64/rules.rs: both implement the engine's trait.
impl Architecture for Paging {
    type Level = Level;
    type Entry = PageTableEntry;
    type Space = ();
    type Restrictions = Access;
    type Mapping = Mapping;
    type Run = Run;
    type FaultKind<E> = FaultKind<E>;

    #[inline]
    fn entry(raw: u64) -> PageTableEntry {
        PageTableEntry(raw)
    }

    #[inline]
    fn shift(level: Level) -> u32 {
        level.shift()
    }

    #[inline]
    fn spaces(&self) -> &'static [()] {
        ONE_SPACE
    }

    #[inline]
    fn enumerated(&self, (): ()) -> bool {
        true
    }

    #[inline]
    fn input_bits(&self, (): ()) -> u32 {
        self.mode().address_bits()
    }

    #[inline]
    fn levels(&self, (): ()) -> &'static [Level] {
        self.mode().levels()
    }

    #[inline]
    fn select<E>(&self, va: VirtAddr) -> Result<((), u64), FaultKind<E>> {
        if self.mode().is_canonical(va) {
            Ok(((), self.mode().linear(va)))
        } else {
            let address_bits = self.mode().address_bits();
            Err(FaultKind::NonCanonical { address_bits })
        }
    }

    #[inline]
    fn root<E>(&self, (): ()) -> Result<PhysAddr, FaultKind<E>> {
        Ok(Self::root(self))
    }

    #[inline]
    fn step<E>(&self, level: Level, entry: PageTableEntry) -> Result<Step, FaultKind<E>> {
        Self::step(self, level, entry)
    }

    #[inline]
    fn usable_leaf(&self, level: Level, raw: u64) -> Option<(PageSize, PhysAddr)> {
        if raw & (self.reserved_in_every_entry() | PageTableEntry::PRESENT)
            != PageTableEntry::PRESENT
        {
            return None;
        }
        match self.kind_of_present(level, raw) {
            PresentKind::Leaf(size) => {
                let address = address_mask(size.bytes().trailing_zeros(), self.max_phys_bits);
                Some((size, PhysAddr(raw & address)))
            }
            PresentKind::Table | PresentKind::Faulting => None,
        }
    }

    #[inline]
    fn read_failed<E>(level: Level, addr: PhysAddr, error: E) -> FaultKind<E> {
        FaultKind::ReadFailed { level, addr, error }
    }

    #[inline]
    fn no_leaf<E>(_: Level, entry: PageTableEntry) -> FaultKind<E> {
        FaultKind::NotPresent {
            level: Level::Pt,
            entry,
        }
    }

    #[inline]
    fn unrestricted(&self) -> Access {
        Access::UNRESTRICTED
    }

    #[inline]
    fn narrowed(&self, (): (), above: Access, table: PageTableEntry) -> Access {
        above.narrowed_by(table, self.nx_enabled)
    }

    #[inline]
    fn mapping(
        &self,
        (): (),
        ia: u64,
        size: PageSize,
        _: PhysAddr,
        entry: PageTableEntry,
        above: Access,
    ) -> Mapping {
        let access = above.narrowed_by(entry, self.nx_enabled);
        Self::mapping(self, ia, size, entry, access)
    }

    #[inline]
    fn va(&self, (): (), ia: u64) -> VirtAddr {
        VirtAddr(self.mode().canonicalize(ia))
    }
}

impl Paging {
    /// Every present leaf of the whole address space, in ascending order.
    ///
    /// A present entry that cannot be used (reserved bit set, unreadable
    /// table) is yielded as an error and its subtree skipped.
    #[must_use]
    pub fn leaves<'m, M: PhysicalMemory + ?Sized>(&self, memory: &'m M) -> Leaves<'m, M> {
        Leaves::new(*self, memory)
    }

    /// Every present leaf that maps some byte of `first..=last`.
    ///
    /// # Errors
    /// When a bound is not canonical or `first` is above `last`.
    pub fn leaves_in<'m, M: PhysicalMemory + ?Sized>(
        &self,
        memory: &'m M,
        first: VirtAddr,
        last: VirtAddr,
    ) -> Result<Leaves<'m, M>, RangeError> {
        let bounds = self.linear_range(first, last)?;
        Ok(Leaves::bounded(*self, memory, ONE_SPACE, Some(bounds)))
    }

    /// `first..=last` as linear addresses, checked.
    pub(super) fn linear_range(
        &self,
        first: VirtAddr,
        last: VirtAddr,
    ) -> Result<(u64, u64), RangeError> {
        for bound in [first, last] {
            if !self.mode().is_canonical(bound) {
                return Err(RangeError::NonCanonical(bound));
            }
        }
        let (start, end) = (self.mode().linear(first), self.mode().linear(last));
        if start > end {
            return Err(RangeError::Reversed(first, last));
        }
        Ok((start, end))
    }
}

/// Virtually and physically contiguous leaves of equal size and attributes,
/// merged as QEMU's `info mem` and Linux's ptdump do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First virtual address.
    pub va: VirtAddr,
    /// First physical address.
    pub pa: PhysAddr,
    /// Length in bytes.
    pub bytes: u64,
    /// Size of each page.
    pub page_size: PageSize,
    /// Effective permissions.
    pub access: Access,
    /// G of every leaf.
    pub global: bool,
    /// Caching bits of every leaf.
    pub memory_type: MemoryTypeBits,
}

// Deliberately the shape of aarch64/rules.rs: both implement the engine's trait.
impl merge::Run for Run {
    type Leaf = Mapping;

    #[inline]
    fn of(mapping: &Mapping) -> Self {
        Self {
            va: mapping.va,
            pa: mapping.pa,
            bytes: mapping.size.bytes(),
            page_size: mapping.size,
            access: mapping.access,
            global: mapping.global(),
            memory_type: mapping.memory_type(),
        }
    }

    #[inline]
    fn extent(&self) -> (VirtAddr, PhysAddr, u64) {
        (self.va, self.pa, self.bytes)
    }

    #[inline]
    fn same_attributes(&self, other: &Self) -> bool {
        (self.page_size, self.access, self.global, self.memory_type)
            == (
                other.page_size,
                other.access,
                other.global,
                other.memory_type,
            )
    }

    #[inline]
    fn grow(&mut self, bytes: u64) {
        self.bytes += bytes;
    }
}
