//! Enumeration of every present leaf of a virtual range, in ascending order.
//!
//! The walk descends only into present tables, so its cost grows with the
//! number of present entries, not with the size of the address space.

use super::address::{Level, PageSize, PhysAddr, VirtAddr};
use super::entry::{MemoryTypeBits, PageTableEntry, address_mask};
use super::fault::{Fault, FaultKind};
use super::merge::{self, Merge};
use super::path::{Path, Visited};
use super::translate::{Access, Mapping, PresentKind, Step};
use super::{Paging, PhysicalMemory};

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

/// Iterator over the present leaves of a range; see [`Paging::leaves`].
///
/// A present entry that cannot be used (reserved bit set, unreadable table)
/// is yielded as an error and its subtree skipped. Internal iteration
/// (`fold`, `for_each`, `count`...) scans each PT in a tighter loop than `next`.
pub struct Leaves<'m, M: PhysicalMemory + ?Sized> {
    paging: Paging,
    memory: &'m M,
    /// Next linear address to look at.
    next: u64,
    /// Last linear address of the range.
    last: u64,
    /// Index into the mode's levels of the table being scanned.
    depth: usize,
    tables: [PhysAddr; 5],
    /// Access allowed by the entries above each depth.
    access: [Access; 5],
    /// The entries above the current depth.
    path: Path,
    done: bool,
}

impl Paging {
    /// Every present leaf of the whole address space.
    pub const fn leaves<'m, M: PhysicalMemory + ?Sized>(&self, memory: &'m M) -> Leaves<'m, M> {
        let last = (1u64 << self.mode().address_bits()) - 1;
        Leaves::new(*self, memory, 0, last)
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
        let (start, end) = self.linear_range(first, last)?;
        Ok(Leaves::new(*self, memory, start, end))
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

impl<'m, M: PhysicalMemory + ?Sized> Leaves<'m, M> {
    const fn new(paging: Paging, memory: &'m M, next: u64, last: u64) -> Self {
        let mut tables = [PhysAddr(0); 5];
        tables[0] = paging.root();
        Self {
            paging,
            memory,
            next,
            last,
            depth: 0,
            tables,
            access: [Access::UNRESTRICTED; 5],
            path: Path::new(),
            done: false,
        }
    }

    /// Merges the leaves into runs; see [`Runs`].
    #[must_use]
    pub const fn runs(self) -> Runs<'m, M> {
        Runs(Merge::new(self))
    }

    /// Moves past the entry at `level` that covers `next`, and up to the
    /// first table that still has entries to scan.
    fn advance_past(&mut self, level: Level) {
        let span = level.entry_span();
        let next = (self.next & !(span - 1)) + span;
        if next >> self.paging.mode().address_bits() != 0 {
            self.done = true;
            return;
        }
        self.next = next;
        let levels = self.paging.mode().levels();
        while self.depth > 0 && levels.get(self.depth).is_some_and(|l| l.index(next) == 0) {
            self.depth -= 1;
        }
        self.path.truncate(self.depth);
    }

    fn fault(
        &self,
        level: Level,
        kind: FaultKind<M::Error>,
        visited: Option<Visited>,
    ) -> Fault<M::Error> {
        let span = level.entry_span();
        let va = VirtAddr(self.paging.mode().canonicalize(self.next & !(span - 1)));
        let mut path = self.path;
        if let Some(visited) = visited {
            path.push(visited);
        }
        Fault { va, path, kind }
    }
}

impl<M: PhysicalMemory + ?Sized> Leaves<'_, M> {
    /// Folds the rest of the PT being scanned (within the range): its 4 KiB
    /// leaves, skipping entries that are not present, in a loop that keeps
    /// its state in locals. Stops before anything else (an unreadable or
    /// reserved entry), which `next` then reports.
    #[inline]
    fn fold_pt<B, F>(&mut self, table: PhysAddr, above: Access, init: B, f: &mut F) -> B
    where
        F: FnMut(B, Result<Mapping, Fault<M::Error>>) -> B,
    {
        let p_and_reserved = self.paging.reserved_in_every_entry() | PageTableEntry::PRESENT;
        let frame = address_mask(12, self.paging.max_phys_bits);
        let first = self.next & !0xfff;
        // The sign extension is the same for every page of a PT.
        let high = self.paging.mode().canonicalize(first).wrapping_sub(first);
        let end = self.last.min(first | 0x1f_ffff) & !0xfff;
        let (mut acc, mut linear) = (init, first);
        loop {
            let addr = table.0 + ((linear >> 9) & 0xff8);
            let Ok(raw) = self.memory.read_u64(PhysAddr(addr)) else {
                self.next = linear;
                return acc;
            };
            if raw & PageTableEntry::PRESENT != 0 {
                if raw & p_and_reserved != PageTableEntry::PRESENT {
                    self.next = linear;
                    return acc;
                }
                let entry = PageTableEntry(raw);
                acc = f(
                    acc,
                    Ok(Mapping {
                        va: VirtAddr(linear.wrapping_add(high)),
                        pa: PhysAddr(raw & frame),
                        size: PageSize::Size4K,
                        access: above.narrowed_by(entry, self.paging.nx_enabled),
                        entry,
                    }),
                );
            }
            if linear >= end {
                break;
            }
            linear += 0x1000;
        }
        self.next = linear;
        self.advance_past(Level::Pt);
        acc
    }
}

impl<M: PhysicalMemory + ?Sized> Iterator for Leaves<'_, M> {
    type Item = Result<Mapping, Fault<M::Error>>;

    #[inline]
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        let levels = self.paging.mode().levels().len();
        loop {
            let at_pt = !self.done && self.next <= self.last && self.depth + 1 == levels;
            if let (true, Some(&table), Some(&above)) = (
                at_pt,
                self.tables.get(self.depth),
                self.access.get(self.depth),
            ) {
                acc = self.fold_pt(table, above, acc, &mut f);
            }
            match self.next() {
                Some(item) => acc = f(acc, item),
                None => return acc,
            }
        }
    }

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let p_and_reserved = self.paging.reserved_in_every_entry() | PageTableEntry::PRESENT;
        while !self.done && self.next <= self.last {
            let level = *self.paging.mode().levels().get(self.depth)?;
            let table = *self.tables.get(self.depth)?;
            let above = *self.access.get(self.depth)?;
            let index = level.index(self.next);
            let addr = PhysAddr(table.0 + 8 * index as u64);
            let entry = match self.memory.read_u64(addr) {
                Ok(raw) => PageTableEntry(raw),
                Err(error) => {
                    let fault =
                        self.fault(level, FaultKind::ReadFailed { level, addr, error }, None);
                    self.advance_past(level);
                    return Some(Err(fault));
                }
            };
            // The common cases first: an entry that is not present, and a
            // usable leaf. Moving to the next entry of the same table needs
            // none of `advance_past`'s climbing.
            let next_in_table = (index < 511).then(|| {
                let span = level.entry_span();
                (self.next & !(span - 1)) + span
            });
            let usable = entry.0 & p_and_reserved == PageTableEntry::PRESENT;
            let leaf = if usable {
                match self.paging.kind_of_present(level, entry.0) {
                    PresentKind::Leaf(size) => Some(size),
                    PresentKind::Table | PresentKind::Faulting => None,
                }
            } else {
                None
            };
            if !entry.is_present() || leaf.is_some() {
                let mapping = leaf.map(|size| {
                    let access = above.narrowed_by(entry, self.paging.nx_enabled);
                    self.paging.mapping(self.next, size, entry, access)
                });
                match next_in_table {
                    Some(next) => self.next = next,
                    None => self.advance_past(level),
                }
                match mapping {
                    Some(mapping) => return Some(Ok(mapping)),
                    None => continue,
                }
            }
            let visited = Visited { level, addr, entry };
            let access = above.narrowed_by(entry, self.paging.nx_enabled);
            match self.paging.step(level, entry) {
                Err(FaultKind::NotPresent { .. }) => self.advance_past(level),
                Err(kind) => {
                    let fault = self.fault(level, kind, Some(visited));
                    self.advance_past(level);
                    return Some(Err(fault));
                }
                Ok(Step::Table(next_table)) => {
                    self.path.push(visited);
                    self.depth += 1;
                    *self.tables.get_mut(self.depth)? = next_table;
                    *self.access.get_mut(self.depth)? = access;
                }
                Ok(Step::Leaf(size)) => {
                    let mapping = self.paging.mapping(self.next, size, entry, access);
                    self.advance_past(level);
                    return Some(Ok(mapping));
                }
            }
        }
        self.done = true;
        None
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

impl merge::Run for Run {
    type Leaf = Mapping;

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

    /// Extends this run by `next` if it continues it.
    fn absorb(&mut self, next: &Self) -> bool {
        let continues = self.va.0.wrapping_add(self.bytes) == next.va.0
            && self.pa.0.wrapping_add(self.bytes) == next.pa.0
            && (self.page_size, self.access, self.global, self.memory_type)
                == (next.page_size, next.access, next.global, next.memory_type);
        if continues {
            self.bytes += next.bytes;
        }
        continues
    }
}

/// Iterator over merged runs; see [`Leaves::runs`].
pub struct Runs<'m, M: PhysicalMemory + ?Sized>(Merge<Leaves<'m, M>, Run, Fault<M::Error>>);

impl<M: PhysicalMemory + ?Sized> Iterator for Runs<'_, M> {
    type Item = Result<Run, Fault<M::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}
