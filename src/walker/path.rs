//! The entries a walk read, top level first, without allocating.

use super::address::{Level, PhysAddr};
use super::entry::PageTableEntry;

/// One entry read during a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visited {
    /// Level of the table the entry is in.
    pub level: Level,
    /// Physical address of the entry.
    pub addr: PhysAddr,
    /// The entry's value.
    pub entry: PageTableEntry,
}

const UNUSED: Visited = Visited {
    level: Level::Pt,
    addr: PhysAddr(0),
    entry: PageTableEntry(0),
};

/// Up to five visited entries.
#[derive(Clone, Copy, Debug)]
pub struct Path {
    entries: [Visited; 5],
    len: usize,
}

impl Path {
    /// An empty path.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: [UNUSED; 5],
            len: 0,
        }
    }

    /// The first `len` of a walk's entries, read at `addrs` in the tables of
    /// `levels`. Built whole, without pushes, so that a caller that never
    /// looks at the path does not pay for it.
    #[inline]
    pub(super) fn of_walk(
        levels: &[Level],
        addrs: &[u64; 5],
        entries: &[u64; 5],
        len: usize,
    ) -> Self {
        let mut path = Self::new();
        for (i, slot) in path.entries.iter_mut().enumerate() {
            if let (true, Some(&level), Some(&addr), Some(&entry)) =
                (i < len, levels.get(i), addrs.get(i), entries.get(i))
            {
                *slot = Visited {
                    level,
                    addr: PhysAddr(addr),
                    entry: PageTableEntry(entry),
                };
            }
        }
        path.len = len.min(levels.len());
        path
    }

    /// Appends an entry; a sixth is dropped (no walk has more than five levels).
    pub fn push(&mut self, visited: Visited) {
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
    pub fn as_slice(&self) -> &[Visited] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// The last entry read.
    #[must_use]
    pub fn last(&self) -> Option<&Visited> {
        self.as_slice().last()
    }
}

// Only the entries in use count: a truncated path may keep stale ones.
impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Path {}

impl Default for Path {
    fn default() -> Self {
        Self::new()
    }
}
