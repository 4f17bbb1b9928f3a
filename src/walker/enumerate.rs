//! Enumeration of every present leaf, in ascending address order, for every
//! architecture: the spaces one after another, each table's entries in
//! order. The walk descends only into present tables, so its cost grows
//! with the number of present entries, not with the size of the address space.

use super::address::{PageSize, PhysAddr};
use super::architecture::{Architecture, Step};
use super::fault::Fault;
use super::memory::PhysicalMemory;
use super::merge::Merge;
use super::path::{Path, Visited};

/// The space being scanned and its levels, top first; or its base register's fault.
type Scanning<A, M> = Result<
    (
        <A as Architecture>::Space,
        &'static [<A as Architecture>::Level],
    ),
    Fault<A, <M as PhysicalMemory>::Error>,
>;

/// Iterator over present leaves; see the architectures' `Paging::leaves`.
///
/// An entry that is not present (invalid) is skipped. One that faults
/// otherwise (a reserved bit or encoding, an address beyond the physical
/// address size, an unreadable table) is yielded as an error and what it
/// covers skipped. A space whose walks are disabled yields nothing.
/// Internal iteration (`fold`, `for_each`, `count`...) scans each last-level
/// table in a tighter loop than `next`.
pub struct Leaves<'m, A: Architecture, M: PhysicalMemory + ?Sized> {
    arch: A,
    memory: &'m M,
    /// `spaces[space..]` are still to scan.
    spaces: &'static [A::Space],
    space: usize,
    /// The input addresses to scan in each space, if not all of them.
    bounds: Option<(u64, u64)>,
    /// Next input address to look at, and the last one, in the current space.
    next: u64,
    last: u64,
    /// Index into the space's levels of the table being scanned.
    depth: usize,
    /// Whether the current space is being scanned (else: start the next).
    started: bool,
    tables: [PhysAddr; 5],
    /// What the tables above each depth take away.
    above: [A::Restrictions; 5],
    /// The entries above the current depth.
    path: Path<A>,
}

impl<'m, A: Architecture, M: PhysicalMemory + ?Sized> Leaves<'m, A, M> {
    /// Every leaf of every space of `arch`.
    pub fn new(arch: A, memory: &'m M) -> Self {
        Self::bounded(arch, memory, arch.spaces(), None)
    }

    /// The leaves of `spaces` that map some byte of input addresses
    /// `bounds` (inclusive), or of all of them.
    pub(crate) fn bounded(
        arch: A,
        memory: &'m M,
        spaces: &'static [A::Space],
        bounds: Option<(u64, u64)>,
    ) -> Self {
        let unrestricted = arch.unrestricted();
        Self {
            arch,
            memory,
            spaces,
            space: 0,
            bounds,
            next: 0,
            last: 0,
            depth: 0,
            started: false,
            tables: [PhysAddr(0); 5],
            above: [unrestricted; 5],
            path: Path::new(),
        }
    }

    /// Merges the leaves into runs; see [`Runs`].
    #[must_use]
    pub const fn runs(self) -> Runs<'m, A, M> {
        Runs(Merge::new(self))
    }

    /// Ends the current space.
    const fn finish(&mut self) {
        self.space += 1;
        self.started = false;
    }

    /// The space being scanned and its levels; starts the next space when
    /// none is. `None` when every space is done; `Some(Err)` when a space's
    /// base register faults.
    fn current(&mut self) -> Option<Scanning<A, M>> {
        loop {
            let &space = self.spaces.get(self.space)?;
            let levels = self.arch.levels(space);
            if self.started {
                return Some(Ok((space, levels)));
            }
            if !self.arch.enumerated(space) {
                self.finish();
                continue;
            }
            let size = 1_u64.checked_shl(self.arch.input_bits(space)).unwrap_or(0);
            (self.next, self.last) = self.bounds.unwrap_or_else(|| (0, size.wrapping_sub(1)));
            (self.depth, self.path, self.started) = (0, Path::new(), true);
            *self.above.first_mut()? = self.arch.unrestricted();
            match self.arch.root(space) {
                Ok(root) => *self.tables.first_mut()? = root,
                Err(kind) => {
                    let va = self.arch.va(space, self.next);
                    self.finish();
                    let path = Path::new();
                    return Some(Err(Fault { va, path, kind }));
                }
            }
        }
    }

    /// Moves past the entry at `level` that covers `next`, and up to the
    /// first table that still has entries to scan.
    fn advance_past(&mut self, space: A::Space, levels: &[A::Level], level: A::Level) {
        let span = 1_u64 << A::shift(level);
        let next = (self.next & !(span - 1)) + span;
        if next >> self.arch.input_bits(space) != 0 || next > self.last {
            self.finish();
            return;
        }
        self.next = next;
        while self.depth > 0
            && levels
                .get(self.depth)
                .is_some_and(|&l| (next >> A::shift(l)).trailing_zeros() >= 9)
        {
            self.depth -= 1;
        }
        self.path.truncate(self.depth);
    }

    /// A fault at the entry of `level` that covers `next`.
    fn fault(
        &self,
        space: A::Space,
        level: A::Level,
        kind: A::FaultKind<M::Error>,
        visited: Option<Visited<A>>,
    ) -> Fault<A, M::Error> {
        let span = 1_u64 << A::shift(level);
        let va = self.arch.va(space, self.next & !(span - 1));
        let mut path = self.path;
        if let Some(visited) = visited {
            path.push(visited);
        }
        Fault { va, path, kind }
    }

    /// Folds the rest of the last-level table being scanned (within the
    /// bounds): its pages, skipping entries that are not present, in a loop
    /// that keeps its state in locals. Stops before anything else (an
    /// unreadable or faulting entry), which `next` then reports.
    #[inline]
    fn fold_last_level<B, F>(
        &mut self,
        space: A::Space,
        levels: &[A::Level],
        init: B,
        f: &mut F,
    ) -> B
    where
        F: FnMut(B, Result<A::Mapping, Fault<A, M::Error>>) -> B,
    {
        let (Some(&table), Some(&above), Some(&level)) = (
            self.tables.get(self.depth),
            self.above.get(self.depth),
            levels.get(self.depth),
        ) else {
            return init;
        };
        let arch = self.arch;
        let test = arch.page_test();
        let first = self.next & !0xfff;
        let end = self.last.min(first | 0x1f_ffff) & !0xfff;
        if let Some(page) = self.memory.page(table) {
            let acc = fold_page(
                page,
                (first, end),
                init,
                |ia, raw| {
                    if raw & test.usable_mask != test.usable_value {
                        return None;
                    }
                    let pa = PhysAddr(raw & test.frame);
                    Some(arch.mapping(space, ia, PageSize::Size4K, pa, A::entry(raw), above))
                },
                test.present,
                f,
            );
            match acc {
                Ok(acc) => {
                    self.next = end;
                    self.advance_past(space, levels, level);
                    return acc;
                }
                Err((acc, stopped_at)) => {
                    self.next = stopped_at;
                    return acc;
                }
            }
        }
        let (mut acc, mut ia) = (init, first);
        loop {
            let addr = table.0 + ((ia >> 9) & 0xff8);
            let Ok(raw) = self.memory.read_u64(PhysAddr(addr)) else {
                self.next = ia;
                return acc;
            };
            if raw & test.present != 0 {
                if raw & test.usable_mask != test.usable_value {
                    self.next = ia;
                    return acc;
                }
                let pa = PhysAddr(raw & test.frame);
                let mapping = arch.mapping(space, ia, PageSize::Size4K, pa, A::entry(raw), above);
                acc = f(acc, Ok(mapping));
            }
            if ia >= end {
                break;
            }
            ia += 0x1000;
        }
        self.next = ia;
        self.advance_past(space, levels, level);
        acc
    }

    /// Folds the rest of the table above the last level being scanned
    /// (within the bounds): its usable leaves (large pages, blocks),
    /// skipping entries that are not present, in a loop that keeps its
    /// state in locals. Stops before anything else (a table to descend into,
    /// an unreadable or faulting entry), which [`Self::step`] then takes.
    #[inline]
    fn fold_upper_level<B, F>(
        &mut self,
        space: A::Space,
        levels: &[A::Level],
        init: B,
        f: &mut F,
    ) -> B
    where
        F: FnMut(B, Result<A::Mapping, Fault<A, M::Error>>) -> B,
    {
        let (Some(&table), Some(&above), Some(&level)) = (
            self.tables.get(self.depth),
            self.above.get(self.depth),
            levels.get(self.depth),
        ) else {
            return init;
        };
        let arch = self.arch;
        let present = arch.page_test().present;
        let shift = A::shift(level);
        let span = 1_u64 << shift;
        let first = self.next & !(span - 1);
        // The last entry of this table (or of the bounds).
        let table_last = first | ((span << 9).wrapping_sub(1));
        let end = self.last.min(table_last) & !(span - 1);
        let (mut acc, mut ia) = (init, first);
        loop {
            let addr = table.0 + 8 * ((ia >> shift) & 0x1ff);
            let Ok(raw) = self.memory.read_u64(PhysAddr(addr)) else {
                self.next = ia;
                return acc;
            };
            if raw & present != 0 {
                let Some((size, pa)) = arch.usable_leaf(level, raw) else {
                    self.next = ia;
                    return acc;
                };
                acc = f(
                    acc,
                    Ok(arch.mapping(space, ia, size, pa, A::entry(raw), above)),
                );
            }
            if ia >= end {
                break;
            }
            ia += span;
        }
        self.next = ia;
        self.advance_past(space, levels, level);
        acc
    }
}

impl<A: Architecture, M: PhysicalMemory + ?Sized> Iterator for Leaves<'_, A, M> {
    type Item = Result<A::Mapping, Fault<A, M::Error>>;

    #[inline]
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        loop {
            if let (true, Some(&space)) = (self.started, self.spaces.get(self.space)) {
                let levels = self.arch.levels(space);
                if self.next <= self.last {
                    acc = if self.depth + 1 == levels.len() {
                        self.fold_last_level(space, levels, acc, &mut f)
                    } else {
                        self.fold_upper_level(space, levels, acc, &mut f)
                    };
                }
            }
            match self.step() {
                Progress::Yield(item) => acc = f(acc, item),
                Progress::Moved => {}
                Progress::Done => return acc,
            }
        }
    }

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Progress::Yield(item) => return Some(item),
                Progress::Moved => {}
                Progress::Done => return None,
            }
        }
    }
}

/// Folds the present entries of a last-level table held whole in `page`,
/// from input address `first` to `end` (both in the table's 2 MiB): each
/// one `page_of` maps, in order, until one it does not (`Err`, with the
/// input address where it stopped). Groups of eight entries with none
/// present (`present` clear in all) cost one test.
#[inline]
fn fold_page<B, T, E>(
    page: &[u8; crate::walker::memory::PAGE],
    (first, end): (u64, u64),
    init: B,
    mut page_of: impl FnMut(u64, u64) -> Option<T>,
    present: u64,
    f: &mut impl FnMut(B, Result<T, E>) -> B,
) -> Result<B, (B, u64)> {
    let base = first & !0x1f_ffff;
    let index_of = |ia: u64| usize::try_from((ia >> 12) & 0x1ff).unwrap_or(0);
    let (first_index, last_index) = (index_of(first), index_of(end));
    let mut acc = init;
    for (group, bytes) in page.chunks_exact(64).enumerate().skip(first_index / 8) {
        if group * 8 > last_index {
            break;
        }
        let mut words = [0_u64; 8];
        for (word, entry) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = entry.try_into().map_or(0, u64::from_le_bytes);
        }
        if words.iter().fold(0, |any, word| any | word) & present == 0 {
            continue;
        }
        for (index, &raw) in (group * 8..).zip(&words) {
            if index < first_index || index > last_index || raw & present == 0 {
                continue;
            }
            let ia = base + ((index as u64) << 12);
            match page_of(ia, raw) {
                Some(mapping) => acc = f(acc, Ok(mapping)),
                None => return Err((acc, ia)),
            }
        }
    }
    Ok(acc)
}

/// What enumeration yields: a leaf, or why a part of the tables is skipped.
type LeafOrFault<A, M> =
    Result<<A as Architecture>::Mapping, Fault<A, <M as PhysicalMemory>::Error>>;

/// What one [`Leaves::step`] did.
enum Progress<T> {
    /// It read an entry that yields this.
    Yield(T),
    /// It moved on (past an entry that is not present, into a table, to the
    /// next space) without anything to yield.
    Moved,
    /// Every space is done.
    Done,
}

impl<A: Architecture, M: PhysicalMemory + ?Sized> Leaves<'_, A, M> {
    /// Takes the entry at `next`: one step of the enumeration.
    #[inline]
    fn step(&mut self) -> Progress<LeafOrFault<A, M>> {
        let present = self.arch.page_test().present;
        let (space, levels) = match self.current() {
            None => return Progress::Done,
            Some(Ok(current)) => current,
            Some(Err(fault)) => return Progress::Yield(Err(fault)),
        };
        if self.next > self.last {
            self.finish();
            return Progress::Moved;
        }
        let (Some(&level), Some(&table), Some(&above)) = (
            levels.get(self.depth),
            self.tables.get(self.depth),
            self.above.get(self.depth),
        ) else {
            self.finish();
            return Progress::Moved;
        };
        let shift = A::shift(level);
        let index = (self.next >> shift) & 0x1ff;
        let addr = PhysAddr(table.0 + 8 * index);
        let raw = match self.memory.read_u64(addr) {
            Ok(raw) => raw,
            Err(error) => {
                let kind = A::read_failed(level, addr, error);
                let fault = self.fault(space, level, kind, None);
                self.advance_past(space, levels, level);
                return Progress::Yield(Err(fault));
            }
        };
        // The common cases first: an entry that is not present, and a
        // usable leaf. Moving to the next entry of the same table needs
        // none of `advance_past`'s climbing.
        let entry = A::entry(raw);
        let leaf = if raw & present == 0 {
            None
        } else if let Some((size, pa)) = self.arch.usable_leaf(level, raw) {
            Some(self.arch.mapping(space, self.next, size, pa, entry, above))
        } else {
            return self.descend_or_fault(space, levels, (level, addr, entry), above);
        };
        let span = 1_u64 << shift;
        let next = (self.next & !(span - 1)) + span;
        if index < 511 && next <= self.last {
            self.next = next;
        } else {
            self.advance_past(space, levels, level);
        }
        leaf.map_or(Progress::Moved, |mapping| Progress::Yield(Ok(mapping)))
    }

    /// Takes a present entry that is not a usable leaf: into its table, or
    /// the fault it raises.
    fn descend_or_fault(
        &mut self,
        space: A::Space,
        levels: &[A::Level],
        (level, addr, entry): (A::Level, PhysAddr, A::Entry),
        above: A::Restrictions,
    ) -> Progress<LeafOrFault<A, M>> {
        let visited = Visited { level, addr, entry };
        match self.arch.step(level, entry) {
            Err(kind) => {
                let fault = self.fault(space, level, kind, Some(visited));
                self.advance_past(space, levels, level);
                Progress::Yield(Err(fault))
            }
            Ok(Step::Table(next_table)) => {
                let below = self.depth + 1;
                if let (Some(table), Some(restrictions)) =
                    (self.tables.get_mut(below), self.above.get_mut(below))
                {
                    *table = next_table;
                    *restrictions = self.arch.narrowed(space, above, entry);
                    self.path.push(visited);
                    self.depth = below;
                } else {
                    // A table below the last level: `step` never gives one.
                    self.advance_past(space, levels, level);
                }
                Progress::Moved
            }
            Ok(Step::Leaf(size, pa)) => {
                let mapping = self.arch.mapping(space, self.next, size, pa, entry, above);
                self.advance_past(space, levels, level);
                Progress::Yield(Ok(mapping))
            }
        }
    }
}

/// Iterator over merged runs; see [`Leaves::runs`].
pub struct Runs<'m, A: Architecture, M: PhysicalMemory + ?Sized>(MergedLeaves<'m, A, M>);

/// The merge behind [`Runs`].
type MergedLeaves<'m, A, M> =
    Merge<Leaves<'m, A, M>, <A as Architecture>::Run, Fault<A, <M as PhysicalMemory>::Error>>;

impl<A: Architecture, M: PhysicalMemory + ?Sized> Iterator for Runs<'_, A, M> {
    type Item = Result<A::Run, Fault<A, M::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}
