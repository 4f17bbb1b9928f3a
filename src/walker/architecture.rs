//! What the engine asks of an architecture: its rules, as data and small
//! functions. The engine ([`Path`](super::Path), the step-by-step walk,
//! enumeration, runs) is generic over it and monomorphised, so each
//! architecture's walk compiles to the code a hand-written one would.
//!
//! An architecture is its paging registers' type: x86-64's
//! [`Paging`](super::x86_64::Paging) (CR3, CR4.LA57, EFER.NXE, MAXPHYADDR)
//! and ARM64's [`Paging`](super::aarch64::Paging) (TTBR0/TTBR1, TCR).
//! Adding one means writing its descriptor decoding, its access rules and
//! this trait's implementation; nothing in the engine changes.

use core::fmt;

use super::address::{PageSize, PhysAddr, VirtAddr};
use super::merge;

/// Where a usable table entry leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The next-level table at this physical address.
    Table(PhysAddr),
    /// A page (or block) of this size at this physical address.
    Leaf(PageSize, PhysAddr),
}

/// A leaf's extent: what enumeration and ranged translation need of it.
pub trait Leaf {
    /// Virtual address of its first byte.
    fn va(&self) -> VirtAddr;
    /// Physical address of its first byte.
    fn pa(&self) -> PhysAddr;
    /// Its size.
    fn size(&self) -> PageSize;
}

/// One architecture's translation rules, for one set of register values.
pub trait Architecture: Copy + fmt::Debug + Eq {
    /// A level of its tables, top first in [`Self::levels`].
    type Level: Copy + fmt::Debug + Eq + Default + 'static;
    /// A table entry (descriptor), as the architecture names its bits.
    type Entry: Copy + fmt::Debug + Eq + Default + 'static;
    /// An address space a virtual address selects: one for x86-64, TTBR0's
    /// and TTBR1's ranges for ARM64.
    type Space: Copy + fmt::Debug + Eq + 'static;
    /// What the tables above an entry take away (hierarchical permissions).
    type Restrictions: Copy;
    /// A present leaf: one page or block and how it is mapped.
    type Mapping: Copy + fmt::Debug + Eq + Leaf;
    /// Leaves merged: contiguous, with equal attributes.
    type Run: merge::Run<Leaf = Self::Mapping> + Copy + fmt::Debug + Eq;
    /// Why a walk stops, in the architecture's own words; `E` is a failed read.
    type FaultKind<E>;

    /// The entry a table holds as `raw`.
    fn entry(raw: u64) -> Self::Entry;

    /// The lowest input-address bit that indexes `level`'s tables (9 bits each).
    fn shift(level: Self::Level) -> u32;

    /// The address spaces enumeration lists, in address order.
    fn spaces(&self) -> &'static [Self::Space];

    /// Whether walks through `space` happen at all (ARM64's `EPDx`).
    fn enumerated(&self, space: Self::Space) -> bool;

    /// How many input-address bits `space` has.
    fn input_bits(&self, space: Self::Space) -> u32;

    /// The levels a walk through `space` visits, top first.
    fn levels(&self, space: Self::Space) -> &'static [Self::Level];

    /// The space `va` selects and its input address; or why it has none.
    ///
    /// # Errors
    /// The fault an address outside every space raises.
    fn select<E>(&self, va: VirtAddr) -> Result<(Self::Space, u64), Self::FaultKind<E>>;

    /// The top-level table of `space`.
    ///
    /// # Errors
    /// The fault its base register raises.
    fn root<E>(&self, space: Self::Space) -> Result<PhysAddr, Self::FaultKind<E>>;

    /// Where `entry` at `level` leads. An entry with bit 0 clear is not
    /// present (x86-64) or invalid (ARM64): enumeration skips it unread.
    ///
    /// # Errors
    /// Why the walk stops at it (not present, a reserved bit...).
    fn step<E>(&self, level: Self::Level, entry: Self::Entry) -> Result<Step, Self::FaultKind<E>>;

    /// The size and address of the page (or block) `raw` maps at `level`,
    /// when it is a usable leaf; `None` for anything else, which
    /// [`Self::step`] then decides. The enumeration's common case, kept to a
    /// mask test or two.
    fn usable_leaf(&self, level: Self::Level, raw: u64) -> Option<(PageSize, PhysAddr)>;

    /// The fault of a read of `level`'s entry at `addr` that failed.
    fn read_failed<E>(level: Self::Level, addr: PhysAddr, error: E) -> Self::FaultKind<E>;

    /// The fault of a walk that ran out of levels without a leaf (never
    /// happens: [`Self::step`] ends every walk at the last level). `entry`
    /// is the last one read, at `level`.
    fn no_leaf<E>(level: Self::Level, entry: Self::Entry) -> Self::FaultKind<E>;

    /// Nothing restricted yet: above the top-level table.
    fn unrestricted(&self) -> Self::Restrictions;

    /// `above`, plus what the table entry `table` of `space` takes away.
    fn narrowed(
        &self,
        space: Self::Space,
        above: Self::Restrictions,
        table: Self::Entry,
    ) -> Self::Restrictions;

    /// The mapping of the leaf `entry` of `size` at `pa`, covering input
    /// address `ia` of `space`, under the tables' `above`.
    fn mapping(
        &self,
        space: Self::Space,
        ia: u64,
        size: PageSize,
        pa: PhysAddr,
        entry: Self::Entry,
        above: Self::Restrictions,
    ) -> Self::Mapping;

    /// The virtual address of input address `ia` in `space`.
    fn va(&self, space: Self::Space, ia: u64) -> VirtAddr;
}
