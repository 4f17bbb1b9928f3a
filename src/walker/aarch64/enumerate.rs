//! Every block and page of both ranges, in ascending address order: the
//! TTBR0 range first, then the TTBR1 range. The walk descends only into valid
//! tables, so its cost grows with the number of valid descriptors.

use super::descriptor::{Descriptor, Level};
use super::fault::{Fault, FaultKind, Path, Visited};
use super::registers::{Paging, VaRange};
use super::translate::{Access, Mapping, Step, TableRestrictions};
use crate::walker::merge::{self, Merge};
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr};

/// Where the iterator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// About to start this range.
    Start(VaRange),
    /// Scanning this range.
    In(VaRange),
    /// Past the TTBR1 range.
    Done,
}

/// Iterator over the blocks and pages of both ranges; see [`Paging::leaves`].
///
/// An invalid descriptor is skipped; one that faults otherwise (a reserved
/// encoding, an address beyond the PA size, an unreadable table) is yielded
/// as an error and what it covers skipped. A range whose walks are disabled
/// (EPDx) yields nothing.
pub struct Leaves<'m, M: PhysicalMemory + ?Sized> {
    paging: Paging,
    memory: &'m M,
    position: Position,
    /// Next input address to look at in the current range.
    next: u64,
    level: Level,
    /// The table being scanned at each level.
    tables: [u64; 4],
    /// What the tables above each level take away.
    restrictions: [TableRestrictions; 4],
    /// The table descriptors above the current level.
    path: Path,
}

impl Paging {
    /// Every block and page, TTBR0's range first, in address order.
    #[must_use]
    pub const fn leaves<'m, M: PhysicalMemory + ?Sized>(&self, memory: &'m M) -> Leaves<'m, M> {
        Leaves {
            paging: *self,
            memory,
            position: Position::Start(VaRange::Lower),
            next: 0,
            level: Level::L0,
            tables: [0; 4],
            restrictions: [TableRestrictions {
                no_el0: false,
                read_only: false,
                uxn: false,
                pxn: false,
            }; 4],
            path: Path::new(),
        }
    }
}

const fn depth(level: Level) -> usize {
    level.number() as usize
}

impl<'m, M: PhysicalMemory + ?Sized> Leaves<'m, M> {
    /// Merges the leaves into runs; see [`Runs`].
    #[must_use]
    pub const fn runs(self) -> Runs<'m, M> {
        Runs(Merge::new(self))
    }

    const fn finish(&mut self, range: VaRange) {
        self.position = match range {
            VaRange::Lower => Position::Start(VaRange::Upper),
            VaRange::Upper => Position::Done,
        };
    }

    /// The virtual address of input address `ia` in `range`.
    const fn va(&self, range: VaRange, ia: u64) -> VirtAddr {
        match range {
            VaRange::Lower => VirtAddr(ia),
            VaRange::Upper => VirtAddr(ia | (u64::MAX << self.paging.range(range).va_bits)),
        }
    }

    /// Moves past the descriptor at the current level that covers `next`,
    /// and up to the first table that still has descriptors to scan.
    fn advance(&mut self, range: VaRange) {
        let config = self.paging.range(range);
        let span = self.level.entry_span();
        let next = (self.next & !(span - 1)) + span;
        if next >> config.va_bits != 0 {
            self.finish(range);
            return;
        }
        self.next = next;
        let start = config.start_level();
        while self.level > start && self.level.index(next) == 0 {
            self.level = match self.level {
                Level::L3 => Level::L2,
                Level::L2 => Level::L1,
                Level::L1 | Level::L0 => Level::L0,
            };
        }
        self.path.truncate(depth(self.level) - depth(start));
    }

    const fn fault(&self, range: VaRange, kind: FaultKind<M::Error>) -> Fault<M::Error> {
        let span = self.level.entry_span();
        Fault {
            va: self.va(range, self.next & !(span - 1)),
            path: self.path,
            kind,
        }
    }
}

impl<M: PhysicalMemory + ?Sized> Iterator for Leaves<'_, M> {
    type Item = Result<Mapping, Fault<M::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let range = match self.position {
                Position::Done => return None,
                Position::Start(range) => {
                    self.finish(range);
                    let config = self.paging.range(range);
                    if config.walks_disabled {
                        continue;
                    }
                    self.next = 0;
                    self.level = config.start_level();
                    self.path = Path::new();
                    match self.paging.initial_table(range) {
                        Ok(table) => *self.tables.get_mut(depth(self.level))? = table,
                        Err(kind) => return Some(Err(self.fault(range, kind))),
                    }
                    *self.restrictions.get_mut(depth(self.level))? = TableRestrictions::default();
                    self.position = Position::In(range);
                    range
                }
                Position::In(range) => range,
            };
            let level = self.level;
            let table = *self.tables.get(depth(level))?;
            let above = *self.restrictions.get(depth(level))?;
            let addr = PhysAddr(table + 8 * level.index(self.next));
            let descriptor = match self.memory.read_u64(addr) {
                Ok(raw) => Descriptor(raw),
                Err(error) => {
                    let fault = self.fault(range, FaultKind::ReadFailed { level, addr, error });
                    self.advance(range);
                    return Some(Err(fault));
                }
            };
            let visited = Visited {
                level,
                addr,
                descriptor,
            };
            match self.paging.step(level, descriptor) {
                Err(FaultKind::Invalid { .. }) => self.advance(range),
                Err(kind) => {
                    let mut fault = self.fault(range, kind);
                    fault.path.push(visited);
                    self.advance(range);
                    return Some(Err(fault));
                }
                Ok(Step::Leaf(size, pa)) => {
                    let mapping = self
                        .paging
                        .mapping(range, self.next, size, pa, descriptor, above);
                    self.advance(range);
                    return Some(Ok(mapping));
                }
                Ok(Step::Table(next_table)) => {
                    let disabled = self.paging.range(range).hierarchical_permissions_disabled;
                    let below = level.next()?;
                    self.path.push(visited);
                    self.level = below;
                    *self.tables.get_mut(depth(below))? = next_table;
                    *self.restrictions.get_mut(depth(below))? =
                        above.narrowed_by(descriptor, disabled);
                }
            }
        }
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

impl merge::Run for Run {
    type Leaf = Mapping;

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

    /// Extends this run by `next` if it continues it.
    fn absorb(&mut self, next: &Self) -> bool {
        let continues = self.va.0.wrapping_add(self.bytes) == next.va.0
            && self.pa.0.wrapping_add(self.bytes) == next.pa.0
            && (self.page_size, self.range, self.access, self.attributes)
                == (next.page_size, next.range, next.access, next.attributes);
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
