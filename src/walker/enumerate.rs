//! Enumeration of every present leaf, in ascending address order, for every
//! architecture: the spaces one after another, each table's entries in
//! order. The walk descends only into present tables, so its cost grows
//! with the number of present entries, not with the size of the address space.

use super::address::PhysAddr;
use super::architecture::{Architecture, Step};
use super::fault::Fault;
use super::memory::{PAGE, PhysicalMemory};
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
/// Internal iteration (`fold`, `for_each`, `count`...) scans a table the
/// memory holds whole ([`PhysicalMemory::page`]) in a tighter loop than
/// `next`: its present bits first, then its present entries. It keeps the
/// last table's bits at each depth, so a table reached again and again
/// (Linux's espfix area points 2 048 entries at one) is scanned once. On
/// live tables that is a snapshot: an entry that became present after the
/// table's first scan is missed at its later visits (one that is no longer
/// present is still skipped: each entry is read again when taken).
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
    /// The last table folded at each depth, and its present bits.
    gathered: [Gathered; 5],
}

/// The present bits of a table held whole: bit `k` of word `g` for entry
/// `64 g + k` (see [`Leaves`] on why they are kept).
#[derive(Clone, Copy)]
struct Gathered {
    table: PhysAddr,
    present: [u64; PAGE / 512],
}

impl Gathered {
    /// No table: none sits at the top of the physical address space.
    const NONE: Self = Self {
        table: PhysAddr(u64::MAX),
        present: [0; PAGE / 512],
    };
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
            gathered: [Gathered::NONE; 5],
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

    /// Folds the rest of the table being scanned (within the bounds): its
    /// usable leaves, skipping entries that are not present, with its state
    /// in locals. Stops before anything else (a table to descend into, an
    /// unreadable or faulting entry); returns that entry when it read it
    /// (present, not a usable leaf), for [`Self::take_stopped`], else
    /// [`Self::step`] takes what comes next.
    #[inline]
    fn fold_table<B, F>(
        &mut self,
        space: A::Space,
        levels: &[A::Level],
        init: B,
        f: &mut F,
    ) -> (B, Option<u64>)
    where
        F: FnMut(B, LeafOrFault<A, M>) -> B,
    {
        let (Some(&table), Some(&above), Some(&level)) = (
            self.tables.get(self.depth),
            self.above.get(self.depth),
            levels.get(self.depth),
        ) else {
            return (init, None);
        };
        let arch = self.arch;
        let shift = A::shift(level);
        let span = 1_u64 << shift;
        let first = self.next & !(span - 1);
        // The last entry of this table (or of the bounds).
        let end = self.last.min(first | (span << 9).wrapping_sub(1)) & !(span - 1);
        let leaf = |ia: u64, raw: u64| {
            let (size, pa) = arch.usable_leaf(level, raw)?;
            Some(arch.mapping(space, ia, size, pa, A::entry(raw), above))
        };
        let table_entries = TableEntries { shift, first, end };
        let folded = match (self.memory.page(table), self.gathered.get_mut(self.depth)) {
            (Some(page), Some(gathered)) => {
                if gathered.table != table {
                    *gathered = Gathered {
                        table,
                        present: gather_present(page),
                    };
                }
                table_entries.fold_page(page, &gathered.present, init, leaf, f)
            }
            _ => table_entries.fold_reads(self.memory, table, init, leaf, f),
        };
        match folded {
            Ok(acc) => {
                self.next = end;
                self.advance_past(space, levels, level);
                (acc, None)
            }
            Err(Stopped { acc, at, raw }) => {
                // `at` is where the entry's span starts: below `next` when
                // the bounds start inside the entry it stopped at.
                self.next = self.next.max(at);
                (acc, raw)
            }
        }
    }

    /// Takes the entry `raw` at `next` that a fold stopped at, as
    /// [`Self::step`] would (into its table, or its fault), without reading
    /// it again.
    #[inline]
    fn take_stopped(
        &mut self,
        space: A::Space,
        levels: &[A::Level],
        raw: u64,
    ) -> Progress<LeafOrFault<A, M>> {
        let (Some(&level), Some(&table), Some(&above)) = (
            levels.get(self.depth),
            self.tables.get(self.depth),
            self.above.get(self.depth),
        ) else {
            return Progress::Moved;
        };
        let index = (self.next >> A::shift(level)) & 0x1ff;
        let addr = PhysAddr(table.0 + 8 * index);
        self.descend_or_fault(space, levels, (level, addr, A::entry(raw)), above)
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
                    let stopped_at;
                    (acc, stopped_at) = self.fold_table(space, levels, acc, &mut f);
                    if let Some(raw) = stopped_at {
                        if let Progress::Yield(item) = self.take_stopped(space, levels, raw) {
                            acc = f(acc, item);
                        }
                        continue;
                    }
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

/// The entries of one table a fold takes: those whose input addresses run
/// from `first` to `end` (both in the table), `1 << shift` bytes apart.
struct TableEntries {
    shift: u32,
    first: u64,
    end: u64,
}

/// Where a fold of a table stopped early.
struct Stopped<B> {
    acc: B,
    /// The input address of the entry it did not take.
    at: u64,
    /// That entry, when it could be read.
    raw: Option<u64>,
}

impl TableEntries {
    /// The index of the entry of input address `ia`, and back.
    fn index(&self, ia: u64) -> usize {
        usize::try_from((ia >> self.shift) & 0x1ff).unwrap_or(0)
    }

    const fn input_address(&self, index: usize) -> u64 {
        let base = self.first & !((1_u64 << self.shift << 9).wrapping_sub(1));
        base + ((index as u64) << self.shift)
    }

    /// Folds the present entries of the table held whole in `page`, whose
    /// present bits are `present`: each one `leaf` maps, in order, until
    /// one it does not. A stretch of 64 entries with none present costs one
    /// test, a present entry one step (few branches to mispredict on tables
    /// whose entries come and go).
    #[inline]
    fn fold_page<B, T, E>(
        &self,
        page: &[u8; PAGE],
        present: &[u64; PAGE / 512],
        init: B,
        mut leaf: impl FnMut(u64, u64) -> Option<T>,
        f: &mut impl FnMut(B, Result<T, E>) -> B,
    ) -> Result<B, Stopped<B>> {
        let (first_index, last_index) = (self.index(self.first), self.index(self.end));
        let (first_group, last_group) = (first_index / 64, last_index / 64);
        // Which entries of each group to take: from `first_index` to `last_index`.
        let mut taken = [u64::MAX; PAGE / 512];
        for (group, mask) in taken.iter_mut().enumerate() {
            if group < first_group || group > last_group {
                *mask = 0;
            }
        }
        if let Some(mask) = taken.get_mut(first_group) {
            *mask &= u64::MAX << (first_index % 64);
        }
        if let Some(mask) = taken.get_mut(last_group) {
            *mask &= u64::MAX >> (63 - last_index % 64);
        }
        let groups = page.as_chunks::<512>().0;
        let mut acc = init;
        for (group, (&mask, bytes)) in taken.iter().zip(groups).enumerate() {
            let mut present_entries = present.get(group).map_or(0, |&bits| bits & mask);
            while present_entries != 0 {
                let k = present_entries.trailing_zeros() as usize;
                present_entries &= present_entries - 1;
                let raw = bytes
                    .get(k * 8..k * 8 + 8)
                    .and_then(|entry| entry.try_into().ok())
                    .map_or(0, u64::from_le_bytes);
                let ia = self.input_address(group * 64 + k);
                let Some(mapping) = leaf(ia, raw) else {
                    let raw = Some(raw);
                    return Err(Stopped { acc, at: ia, raw });
                };
                acc = f(acc, Ok(mapping));
            }
        }
        Ok(acc)
    }

    /// [`Self::fold_page`] for memory that reads entry by entry; it also
    /// stops at an entry it cannot read.
    #[inline]
    fn fold_reads<B, T, E, M: PhysicalMemory + ?Sized>(
        &self,
        memory: &M,
        table: PhysAddr,
        init: B,
        mut leaf: impl FnMut(u64, u64) -> Option<T>,
        f: &mut impl FnMut(B, Result<T, E>) -> B,
    ) -> Result<B, Stopped<B>> {
        let mut acc = init;
        let mut ia = self.first;
        loop {
            let addr = PhysAddr(table.0 + 8 * ((ia >> self.shift) & 0x1ff));
            let Ok(raw) = memory.read_u64(addr) else {
                return Err(Stopped {
                    acc,
                    at: ia,
                    raw: None,
                });
            };
            if raw & PRESENT != 0 {
                let Some(mapping) = leaf(ia, raw) else {
                    let raw = Some(raw);
                    return Err(Stopped { acc, at: ia, raw });
                };
                acc = f(acc, Ok(mapping));
            }
            if ia >= self.end {
                return Ok(acc);
            }
            ia += 1 << self.shift;
        }
    }
}

/// The present bits of the table held whole in `page` (see [`Gathered`]),
/// gathered in one straight run.
#[inline]
fn gather_present(page: &[u8; PAGE]) -> [u64; PAGE / 512] {
    let mut present = [0; PAGE / 512];
    for (mask, bytes) in present.iter_mut().zip(page.as_chunks::<512>().0) {
        *mask = bit_0_of_each(bytes);
    }
    present
}

/// The present (valid) bit of every architecture's entries: bit 0.
const PRESENT: u64 = 1;

/// Bit 0 of each of the 64 little-endian words in `bytes`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn bit_0_of_each(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(8)
        .enumerate()
        .fold(0_u64, |mask, (k, entry)| {
            let raw = entry.try_into().map_or(0, u64::from_le_bytes);
            mask | (raw & PRESENT) << k
        })
}

/// Bit 0 of each of the 64 little-endian words in `bytes` (512 bytes), 16
/// words at a time. Scalar, this loop cost 38% of an enumeration of a Linux
/// guest's sparse tables; two words per `movmskpd` still cost half of its
/// instructions.
#[cfg(target_arch = "x86_64")]
#[inline]
fn bit_0_of_each(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(128)
        .enumerate()
        .fold(0, |mask, (sixteenth, words)| {
            // SAFETY: SSE2 is part of every x86-64 CPU.
            mask | u64::from(unsafe { bit_0_of_16(words) }) << (16 * sixteenth)
        })
}

/// Bit 0 of each of the 16 little-endian words in `words` (128 bytes): the
/// low halves of the words gathered four to a register (`shufps`), bit 0
/// shifted to each half's sign, signs kept through two saturating packs
/// (32 to 16 to 8 bits), and gathered by `pmovmskb`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn bit_0_of_16(words: &[u8]) -> u16 {
    use core::arch::x86_64::{
        __m128i, _mm_castps_si128, _mm_castsi128_ps, _mm_movemask_epi8, _mm_packs_epi16,
        _mm_packs_epi32, _mm_set_epi64x, _mm_shuffle_ps, _mm_slli_epi32,
    };
    let word = |k: usize| {
        words
            .get(8 * k..8 * k + 8)
            .and_then(|word| word.try_into().ok())
            .map_or(0, u64::from_le_bytes)
            .cast_signed()
    };
    let two = |k: usize| _mm_castsi128_ps(_mm_set_epi64x(word(k + 1), word(k)));
    // Words k..k+4 as four 32-bit lanes, bit 0 in each lane's sign.
    let four = |k: usize| -> __m128i {
        let low_halves = _mm_shuffle_ps::<0b10_00_10_00>(two(k), two(k + 2));
        _mm_slli_epi32::<31>(_mm_castps_si128(low_halves))
    };
    let first_eight = _mm_packs_epi32(four(0), four(4));
    let last_eight = _mm_packs_epi32(four(8), four(12));
    let signs = _mm_movemask_epi8(_mm_packs_epi16(first_eight, last_eight));
    u16::try_from(signs).unwrap_or(0)
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
        let leaf = if raw & PRESENT == 0 {
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
    #[inline]
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

    fn fold<B, F>(self, init: B, f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        self.0.fold(init, f)
    }
}
