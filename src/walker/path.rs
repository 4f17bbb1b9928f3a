//! The entries a walk read, top level first, without allocating: the same
//! record for every architecture.

use super::address::PhysAddr;
use super::architecture::Architecture;

/// One entry read during a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visited<A: Architecture> {
    /// Level of the table the entry is in.
    pub level: A::Level,
    /// Physical address of the entry.
    pub addr: PhysAddr,
    /// The entry's value.
    pub entry: A::Entry,
}

/// No architecture walks more levels (x86-64 with LA57).
const MAX_LEVELS: usize = 5;

/// Up to five visited entries.
#[derive(Clone, Copy, Debug)]
pub struct Path<A: Architecture> {
    entries: [Visited<A>; MAX_LEVELS],
    len: usize,
}

impl<A: Architecture> Path<A> {
    /// An empty path.
    #[must_use]
    pub fn new() -> Self {
        let unused = Visited {
            level: A::Level::default(),
            addr: PhysAddr(0),
            entry: A::Entry::default(),
        };
        Self {
            entries: [unused; MAX_LEVELS],
            len: 0,
        }
    }

    /// The first `len` of a walk's entries, `raw[i]` read at `addrs[i]` in
    /// a table of `levels[i]`. Built whole, without pushes, so that a caller
    /// that never looks at the path does not pay for it.
    #[inline]
    #[must_use]
    pub fn of_walk(levels: &[A::Level], addrs: &[u64], raw: &[u64], len: usize) -> Self {
        let mut path = Self::new();
        // Every slot with a level is written (those past `len` harmlessly):
        // straight-line stores, no branch per level.
        for (i, slot) in path.entries.iter_mut().enumerate() {
            if let (Some(&level), Some(&addr), Some(&raw)) =
                (levels.get(i), addrs.get(i), raw.get(i))
            {
                *slot = Visited {
                    level,
                    addr: PhysAddr(addr),
                    entry: A::entry(raw),
                };
            }
        }
        path.len = len.min(levels.len()).min(MAX_LEVELS);
        path
    }

    /// Appends an entry; a sixth is dropped (no walk has more than five levels).
    pub fn push(&mut self, visited: Visited<A>) {
        if let Some(slot) = self.entries.get_mut(self.len) {
            *slot = visited;
            self.len += 1;
        }
    }

    /// Keeps the first `len` entries.
    pub const fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    /// The entries, top level first.
    #[must_use]
    pub fn as_slice(&self) -> &[Visited<A>] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// The entries, top level first.
    pub fn iter(&self) -> impl Iterator<Item = &Visited<A>> {
        self.as_slice().iter()
    }

    /// The last entry read.
    #[must_use]
    pub fn last(&self) -> Option<&Visited<A>> {
        self.as_slice().last()
    }

    /// How many entries were read.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry was read.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// Only the entries in use count: a truncated path may keep stale ones.
impl<A: Architecture> PartialEq for Path<A> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<A: Architecture> Eq for Path<A> {}

impl<A: Architecture> Default for Path<A> {
    fn default() -> Self {
        Self::new()
    }
}
