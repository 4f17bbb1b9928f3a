//! Why an address does not translate, in the Arm ARM's fault names, and the
//! descriptors a walk read.

use core::fmt;

use super::descriptor::{Descriptor, Level};
use super::registers::VaRange;
use crate::walker::{PhysAddr, VirtAddr};

/// One descriptor read during a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visited {
    /// Level of the table the descriptor is in.
    pub level: Level,
    /// Physical address of the descriptor.
    pub addr: PhysAddr,
    /// The descriptor.
    pub descriptor: Descriptor,
}

/// Up to four visited descriptors, top level first, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Path {
    /// `entries[..len]` are in use.
    entries: [Visited; 4],
    len: usize,
}

/// What unused slots hold.
const UNUSED: Visited = Visited {
    level: Level::L0,
    addr: PhysAddr(0),
    descriptor: Descriptor(0),
};

impl Default for Path {
    fn default() -> Self {
        Self::new()
    }
}

impl Path {
    /// An empty path.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: [UNUSED; 4],
            len: 0,
        }
    }

    /// The descriptors of a walk that read `descriptors[start..end]` at
    /// `addrs`, index 0 being level 0. Built whole, without pushes.
    #[inline]
    pub(super) fn of_walk(
        start: usize,
        end: usize,
        addrs: &[u64; 4],
        descriptors: &[u64; 4],
    ) -> Self {
        let mut path = Self::new();
        // Every slot is written (the unused ones past `len` harmlessly):
        // straight-line stores, no branch per level.
        for (slot, depth) in path.entries.iter_mut().zip(start..) {
            if let (Some(&level), Some(&addr), Some(&raw)) = (
                Level::ALL.get(depth),
                addrs.get(depth),
                descriptors.get(depth),
            ) {
                *slot = Visited {
                    level,
                    addr: PhysAddr(addr),
                    descriptor: Descriptor(raw),
                };
            }
        }
        path.len = end.saturating_sub(start).min(path.entries.len());
        path
    }

    /// Appends a descriptor; a fifth is dropped (no walk reads more than four).
    pub const fn push(&mut self, visited: Visited) {
        if self.len < self.entries.len() {
            self.entries[self.len] = visited;
            self.len += 1;
        }
    }

    /// Keeps the first `len` descriptors.
    pub const fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    /// The descriptors, top level first.
    pub fn iter(&self) -> impl Iterator<Item = &Visited> {
        self.entries.iter().take(self.len)
    }

    /// How many descriptors were read.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no descriptor was read.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// Only the descriptors in use count: a truncated path may keep stale ones.
impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Path {}

/// A failed translation: where the walk stopped, why, and what it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault<E> {
    /// The address that was translated.
    pub va: VirtAddr,
    /// The descriptors read, the one that stopped the walk included.
    pub path: Path,
    /// Why the walk stopped.
    pub kind: FaultKind<E>,
}

impl<E: fmt::Display> fmt::Display for Fault<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not translate: {}", self.va, self.kind)
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Fault<E> {}

/// Why a walk stopped, as the CPU reports it (ESR_EL1's fault status code),
/// or a failed read of this walker's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind<E> {
    /// The bits above the range's size (up to bit 63, or 55 with TBI) do not
    /// all copy bit 55: Translation fault, level 0 (pseudocode
    /// `AArch64.VAIsOutOfRange`).
    #[error(
        "Translation fault, level 0: the address is outside both ranges (bits {top}:{va_bits} must all equal bit 55)"
    )]
    OutsideRanges {
        /// The range bit 55 selects.
        range: VaRange,
        /// 64 - TxSZ of that range.
        va_bits: u32,
        /// 63, or 55 with TBI.
        top: u32,
    },
    /// TCR_EL1.EPDx is set for the range: Translation fault, level 0.
    #[error("Translation fault, level 0: walks through {range} are disabled (TCR_EL1.EPD)")]
    WalksDisabled {
        /// The range.
        range: VaRange,
    },
    /// The TTBR's table address has bits at or above the output address
    /// size: Address size fault, level 0.
    #[error(
        "Address size fault, level 0: {range} table address {table:#x} is beyond the {pa_bits}-bit PA size"
    )]
    TableBaseBeyondPaSize {
        /// The range.
        range: VaRange,
        /// The table address.
        table: u64,
        /// The output address size.
        pa_bits: u32,
    },
    /// Bit 0 of the descriptor is clear: Translation fault at its level.
    #[error("Translation fault, {level}: descriptor {descriptor} is invalid (bit 0 clear)")]
    Invalid {
        /// Level of the descriptor.
        level: Level,
        /// The descriptor (software may keep information in it).
        descriptor: Descriptor,
    },
    /// A block descriptor at level 0, or bits 1:0 = 0b01 at level 3:
    /// reserved encodings, a Translation fault at that level.
    #[error(
        "Translation fault, {level}: descriptor {descriptor} is a reserved encoding (bits 1:0 = 0b01)"
    )]
    Reserved {
        /// Level of the descriptor.
        level: Level,
        /// The descriptor.
        descriptor: Descriptor,
    },
    /// The next table's or the block's or page's address has bits at or
    /// above the output address size: Address size fault at that level.
    #[error(
        "Address size fault, {level}: descriptor {descriptor} gives address {addr:#x}, beyond the {pa_bits}-bit PA size"
    )]
    AddressSize {
        /// Level of the descriptor.
        level: Level,
        /// The descriptor.
        descriptor: Descriptor,
        /// The address it gives.
        addr: u64,
        /// The output address size.
        pa_bits: u32,
    },
    /// The descriptor could not be read (on a CPU: a synchronous external
    /// abort on translation table walk).
    #[error("reading the {level} descriptor at physical {addr} failed: {error}")]
    ReadFailed {
        /// Level of the descriptor.
        level: Level,
        /// Its physical address.
        addr: PhysAddr,
        /// The reader's error.
        error: E,
    },
}
