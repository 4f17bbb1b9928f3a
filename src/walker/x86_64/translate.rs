//! x86-64 access rules, leaves and decoding, and the fast translation path
//! (a walk that only succeeds; the engine's `walk` says why one fails).

use super::entry::{MemoryTypeBits, PageTableEntry, address_mask};
use super::fault::{FaultKind, ReservedBit};
use super::level::{Level, PagingMode};
use super::outcome::{Fault, Path, Translation};
use super::registers::Paging;
use crate::walker::architecture::{Leaf, Step};
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr, walk};

/// Effective permissions of a mapping: the most restrictive of all levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// R/W set at every level.
    pub writable: bool,
    /// U/S set at every level.
    pub user: bool,
    /// No level has XD set (with EFER.NXE).
    pub executable: bool,
}

impl Access {
    /// Before the first level: nothing restricted yet.
    pub(super) const UNRESTRICTED: Self = Self {
        writable: true,
        user: true,
        executable: true,
    };

    /// Restricts by one more entry.
    pub(super) const fn narrowed_by(self, entry: PageTableEntry, nx_enabled: bool) -> Self {
        Self {
            writable: self.writable && entry.has(PageTableEntry::WRITABLE),
            user: self.user && entry.has(PageTableEntry::USER),
            executable: self.executable && !(nx_enabled && entry.has(PageTableEntry::NO_EXECUTE)),
        }
    }
}

/// A present leaf: one page and how it is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Canonical virtual address of the page's first byte.
    pub va: VirtAddr,
    /// Physical address of the page's first byte.
    pub pa: PhysAddr,
    /// Page size.
    pub size: PageSize,
    /// Effective permissions.
    pub access: Access,
    /// The leaf entry.
    pub entry: PageTableEntry,
}

impl Mapping {
    /// G: the TLB entry survives CR3 loads (with CR4.PGE).
    #[must_use]
    pub const fn global(&self) -> bool {
        self.entry.has(PageTableEntry::GLOBAL)
    }

    /// D: the page was written.
    #[must_use]
    pub const fn dirty(&self) -> bool {
        self.entry.has(PageTableEntry::DIRTY)
    }

    /// A: the page was accessed.
    #[must_use]
    pub const fn accessed(&self) -> bool {
        self.entry.has(PageTableEntry::ACCESSED)
    }

    /// The caching bits; the PAT bit is bit 7 in a PTE, bit 12 in a large leaf.
    #[must_use]
    pub const fn memory_type(&self) -> MemoryTypeBits {
        let pat_bit = match self.size {
            PageSize::Size4K => PageTableEntry::PAGE_SIZE,
            PageSize::Size2M | PageSize::Size1G => PageTableEntry::LARGE_PAT,
        };
        MemoryTypeBits {
            pat: self.entry.has(pat_bit),
            cache_disable: self.entry.has(PageTableEntry::CACHE_DISABLE),
            write_through: self.entry.has(PageTableEntry::WRITE_THROUGH),
        }
    }

    /// The level of the leaf entry.
    #[must_use]
    pub const fn level(&self) -> Level {
        match self.size {
            PageSize::Size4K => Level::Pt,
            PageSize::Size2M => Level::Pd,
            PageSize::Size1G => Level::Pdpt,
        }
    }
}

/// `4K page at 0x5000, writable, kernel, no-execute, global, PAT index 0`.
impl core::fmt::Display for Mapping {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let pick = |set: bool, yes: &'static str, no: &'static str| if set { yes } else { no };
        write!(
            f,
            "{} page at {:#x}, {}, {}, {}{}, PAT index {}",
            self.size,
            self.pa.0,
            pick(self.access.writable, "writable", "read-only"),
            pick(self.access.user, "user", "kernel"),
            pick(self.access.executable, "executable", "no-execute"),
            pick(self.global(), ", global", ""),
            self.memory_type().pat_index()
        )
    }
}

/// A present entry without a reserved bit set in every level's entries.
pub(super) enum PresentKind {
    /// It points to a table.
    Table,
    /// It maps a page of this size.
    Leaf(PageSize),
    /// It breaks a level's own rule (PS in a PML4E, a misaligned large page).
    Faulting,
}

// Deliberately as in aarch64/translate.rs: both implement the engine's trait.
impl Leaf for Mapping {
    #[inline]
    fn va(&self) -> VirtAddr {
        self.va
    }

    #[inline]
    fn pa(&self) -> PhysAddr {
        self.pa
    }

    #[inline]
    fn size(&self) -> PageSize {
        self.size
    }
}

impl Paging {
    /// Translates `va` as the MMU would.
    ///
    /// # Errors
    /// A [`Fault`] saying why `va` does not translate, with the entries read.
    // No heap in the kernel: a fault carries its walk by value.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn translate<M: PhysicalMemory + ?Sized>(
        &self,
        memory: &M,
        va: VirtAddr,
    ) -> Result<Translation, Fault<M::Error>> {
        self.translate_mapped(memory, va)
            .map_or_else(|| self.translate_or_fault(memory, va), Ok)
    }

    /// The common case, kept small: a walk that ends on a usable leaf. Any
    /// other outcome is `None`, and [`Self::translate_or_fault`] walks again
    /// to say why.
    #[inline]
    fn translate_mapped<M: PhysicalMemory + ?Sized>(
        &self,
        memory: &M,
        va: VirtAddr,
    ) -> Option<Translation> {
        // One copy per mode: the shifts and masks become constants.
        match self.mode() {
            PagingMode::FourLevel => self.walk_mapped::<M, 4>(memory, va),
            PagingMode::FiveLevel => self.walk_mapped::<M, 5>(memory, va),
        }
    }

    // Measured (callgrind): 73 instructions a translation inlined, 105 not.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn walk_mapped<M: PhysicalMemory + ?Sized, const LEVELS: u32>(
        &self,
        memory: &M,
        va: VirtAddr,
    ) -> Option<Translation> {
        let unused_bits = 64 - (12 + 9 * LEVELS);
        let linear = (va.0 << unused_bits) >> unused_bits;
        if ((va.0 << unused_bits).cast_signed() >> unused_bits).cast_unsigned() != va.0 {
            return None; // not canonical
        }
        // A present entry has P set and no reserved bit: one test.
        let p_and_reserved = self.reserved_in_every_entry() | PageTableEntry::PRESENT;
        let frame = address_mask(12, self.max_phys_bits);
        let mut table = self.root().0;
        let (mut addrs, mut entries) = ([0u64; 5], [0u64; 5]);
        for depth in 0..LEVELS {
            let shift = 12 + 9 * (LEVELS - 1 - depth);
            let addr = table + ((linear >> shift) & 0x1ff) * 8;
            let entry = memory.read_u64(PhysAddr(addr)).ok()?;
            let at = depth as usize;
            *addrs.get_mut(at)? = addr;
            *entries.get_mut(at)? = entry;
            if entry & p_and_reserved != PageTableEntry::PRESENT {
                return None;
            }
            match self.kind_of_present(Level::indexed_by(shift), entry) {
                PresentKind::Leaf(size) => {
                    return Some(self.translation(va, linear, size, at, &addrs, &entries));
                }
                PresentKind::Table => table = entry & frame,
                PresentKind::Faulting => return None,
            }
        }
        None // unreachable: a PT entry is a leaf or faults
    }

    /// The translation of a walk that read `entries[..=depth]` at `addrs`
    /// and ended on a leaf of `size`.
    // Measured (callgrind): 73 instructions a translation inlined, 105 not.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(super) fn translation(
        &self,
        va: VirtAddr,
        linear: u64,
        size: PageSize,
        depth: usize,
        addrs: &[u64; 5],
        entries: &[u64; 5],
    ) -> Translation {
        let path = Path::of_walk(self.mode().levels(), addrs, entries, depth + 1);
        let mapping = self.mapping_of_walk(linear, size, depth, entries);
        let pa = PhysAddr(mapping.pa.0 | (linear & (size.bytes() - 1)));
        Translation {
            va,
            pa,
            mapping,
            path,
        }
    }

    /// The mapping of a walk that read `entries[..=depth]` and ended on a
    /// leaf of `size`.
    // Measured (callgrind): 73 instructions a translation inlined, 105 not.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(super) fn mapping_of_walk(
        &self,
        linear: u64,
        size: PageSize,
        depth: usize,
        entries: &[u64; 5],
    ) -> Mapping {
        // R/W and U/S must be set at every level; one XD anywhere forbids execution.
        let (mut all, mut any) = (u64::MAX, 0);
        for (i, &entry) in entries.iter().enumerate() {
            if i <= depth {
                all &= entry;
                any |= entry;
            }
        }
        let access = Access {
            writable: all & PageTableEntry::WRITABLE != 0,
            user: all & PageTableEntry::USER != 0,
            executable: !(self.nx_enabled && any & PageTableEntry::NO_EXECUTE != 0),
        };
        let leaf = PageTableEntry(entries.get(depth).copied().unwrap_or(0));
        self.mapping(linear, size, leaf, access)
    }

    /// Bits no present entry may set: 51:MAXPHYADDR, and XD without EFER.NXE.
    pub(super) const fn reserved_in_every_entry(&self) -> u64 {
        let xd = if self.nx_enabled {
            0
        } else {
            PageTableEntry::NO_EXECUTE
        };
        address_mask(self.max_phys_bits, 52) | xd
    }

    /// What an entry with P set and no reserved bit of
    /// [`Self::reserved_in_every_entry`] is at `level` (see [`Self::step`]).
    #[inline]
    pub(super) const fn kind_of_present(&self, level: Level, entry: u64) -> PresentKind {
        if entry & PageTableEntry::PAGE_SIZE == 0 {
            return match level {
                Level::Pt => PresentKind::Leaf(PageSize::Size4K),
                Level::Pml5 | Level::Pml4 | Level::Pdpt | Level::Pd => PresentKind::Table,
            };
        }
        match level {
            Level::Pt => PresentKind::Leaf(PageSize::Size4K),
            Level::Pd if entry & address_mask(13, 21) == 0 => PresentKind::Leaf(PageSize::Size2M),
            Level::Pdpt if self.gigabyte_pages && entry & address_mask(13, 30) == 0 => {
                PresentKind::Leaf(PageSize::Size1G)
            }
            Level::Pml5 | Level::Pml4 | Level::Pdpt | Level::Pd => PresentKind::Faulting,
        }
    }

    /// The walk of [`Self::translate`], step by step, saying why it stops.
    #[allow(clippy::result_large_err)]
    pub(super) fn translate_or_fault<M: PhysicalMemory + ?Sized>(
        &self,
        memory: &M,
        va: VirtAddr,
    ) -> Result<Translation, Fault<M::Error>> {
        walk(self, memory, va)
    }

    /// Where an entry at `level` leads, or why the walk stops there.
    /// [`Self::kind_of_present`] decides, as on the fast path; this only adds why.
    pub(super) fn step<E>(
        &self,
        level: Level,
        entry: PageTableEntry,
    ) -> Result<Step, FaultKind<E>> {
        if !entry.is_present() {
            return Err(FaultKind::NotPresent { level, entry });
        }
        let reserved = |reason| FaultKind::ReservedBit {
            level,
            entry,
            reason,
        };
        if let Some(reason) = self.reserved_in_any_entry(entry) {
            return Err(reserved(reason));
        }
        match self.kind_of_present(level, entry.0) {
            PresentKind::Table => Ok(Step::Table(entry.address(12, self.max_phys_bits))),
            PresentKind::Leaf(size) => Ok(Step::Leaf(
                size,
                entry.address(size.bytes().trailing_zeros(), self.max_phys_bits),
            )),
            PresentKind::Faulting => Err(reserved(self.page_size_rule(level))),
        }
    }

    /// Which of [`Self::reserved_in_every_entry`]'s bits `entry` sets, if any.
    const fn reserved_in_any_entry(&self, entry: PageTableEntry) -> Option<ReservedBit> {
        if entry.0 & address_mask(self.max_phys_bits, 52) != 0 {
            Some(ReservedBit::AboveMaxPhysAddr {
                max_phys_bits: self.max_phys_bits,
            })
        } else if !self.nx_enabled && entry.has(PageTableEntry::NO_EXECUTE) {
            Some(ReservedBit::NoExecuteWithoutNxe)
        } else {
            None
        }
    }

    /// The rule a PS entry at `level` breaks when [`Self::kind_of_present`]
    /// calls it faulting.
    const fn page_size_rule(&self, level: Level) -> ReservedBit {
        match level {
            Level::Pml5 | Level::Pml4 => ReservedBit::PageSizeAtTopLevel,
            Level::Pdpt if !self.gigabyte_pages => ReservedBit::NoGigabytePages,
            Level::Pdpt => ReservedBit::LargePageAlignment { high: 29 },
            // A PT entry never faults on PS (bit 7 is PAT there).
            Level::Pd | Level::Pt => ReservedBit::LargePageAlignment { high: 20 },
        }
    }

    /// The page a leaf maps, `linear` being any address inside it.
    pub(super) const fn mapping(
        &self,
        linear: u64,
        size: PageSize,
        entry: PageTableEntry,
        access: Access,
    ) -> Mapping {
        let offset_bits = size.bytes().trailing_zeros();
        Mapping {
            va: VirtAddr(self.mode().canonicalize(linear & !(size.bytes() - 1))),
            pa: entry.address(offset_bits, self.max_phys_bits),
            size,
            access,
            entry,
        }
    }
}
