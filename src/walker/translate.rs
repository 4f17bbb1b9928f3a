//! Translation of one virtual address.

use super::address::{Level, PageSize, PhysAddr, VirtAddr};
use super::entry::{MemoryTypeBits, PageTableEntry, address_mask};
use super::fault::{Fault, FaultKind, ReservedBit};
use super::path::{Path, Visited};
use super::{Paging, PhysicalMemory};

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

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The translated address.
    pub va: VirtAddr,
    /// Its physical address.
    pub pa: PhysAddr,
    /// The page that maps it.
    pub mapping: Mapping,
    /// Every entry read, top level first.
    pub path: Path,
}

/// Where an entry leads.
pub(super) enum Step {
    /// A lower-level table at this physical address.
    Table(PhysAddr),
    /// A page of this size.
    Leaf(PageSize),
}

impl Paging {
    /// Translates `va` as the MMU would.
    ///
    /// # Errors
    /// A [`Fault`] saying why `va` does not translate, with the entries read.
    // No heap in the kernel: a fault carries its walk by value.
    #[allow(clippy::result_large_err)]
    pub fn translate<M: PhysicalMemory + ?Sized>(
        &self,
        memory: &M,
        va: VirtAddr,
    ) -> Result<Translation, Fault<M::Error>> {
        let mut path = Path::new();
        let fault = |path, kind| Fault { va, path, kind };
        if !self.mode().is_canonical(va) {
            let address_bits = self.mode().address_bits();
            return Err(fault(path, FaultKind::NonCanonical { address_bits }));
        }
        let linear = self.mode().linear(va);
        let mut table = self.root();
        let mut access = Access::UNRESTRICTED;
        for &level in self.mode().levels() {
            let addr = PhysAddr(table.0 + 8 * level.index(linear) as u64);
            let entry = match memory.read_u64(addr) {
                Ok(raw) => PageTableEntry(raw),
                Err(error) => {
                    return Err(fault(path, FaultKind::ReadFailed { level, addr, error }));
                }
            };
            path.push(Visited { level, addr, entry });
            access = access.narrowed_by(entry, self.nx_enabled);
            match self.step(level, entry) {
                Err(kind) => return Err(fault(path, kind)),
                Ok(Step::Table(next)) => table = next,
                Ok(Step::Leaf(size)) => {
                    let mapping = self.mapping(linear, size, entry, access);
                    let pa = PhysAddr(mapping.pa.0 | (linear & (size.bytes() - 1)));
                    return Ok(Translation {
                        va,
                        pa,
                        mapping,
                        path,
                    });
                }
            }
        }
        // Unreachable: a PT entry is always a leaf or a fault. Report it as a
        // not-present PT rather than panic.
        let entry = path.last().map_or(PageTableEntry(0), |v| v.entry);
        let level = Level::Pt;
        Err(fault(path, FaultKind::NotPresent { level, entry }))
    }

    /// Where an entry at `level` leads, or why the walk stops there.
    pub(super) fn step<E>(
        &self,
        level: Level,
        entry: PageTableEntry,
    ) -> Result<Step, FaultKind<E>> {
        if !entry.is_present() {
            return Err(FaultKind::NotPresent { level, entry });
        }
        if let Some(reason) = self.reserved_bit(level, entry) {
            return Err(FaultKind::ReservedBit {
                level,
                entry,
                reason,
            });
        }
        let leaf = if level == Level::Pt || entry.has(PageTableEntry::PAGE_SIZE) {
            level.leaf_size()
        } else {
            None
        };
        Ok(leaf.map_or_else(
            || Step::Table(entry.address(12, self.max_phys_bits)),
            Step::Leaf,
        ))
    }

    /// The reserved-bit rule a present entry breaks, if any.
    const fn reserved_bit(&self, level: Level, entry: PageTableEntry) -> Option<ReservedBit> {
        let large = entry.has(PageTableEntry::PAGE_SIZE);
        if entry.0 & address_mask(self.max_phys_bits, 52) != 0 {
            Some(ReservedBit::AboveMaxPhysAddr {
                max_phys_bits: self.max_phys_bits,
            })
        } else if !self.nx_enabled && entry.has(PageTableEntry::NO_EXECUTE) {
            Some(ReservedBit::NoExecuteWithoutNxe)
        } else if !large {
            None
        } else {
            match level {
                Level::Pml5 | Level::Pml4 => Some(ReservedBit::PageSizeAtTopLevel),
                Level::Pdpt if !self.gigabyte_pages => Some(ReservedBit::NoGigabytePages),
                Level::Pdpt if entry.0 & address_mask(13, 30) != 0 => {
                    Some(ReservedBit::LargePageAlignment { high: 29 })
                }
                Level::Pd if entry.0 & address_mask(13, 21) != 0 => {
                    Some(ReservedBit::LargePageAlignment { high: 20 })
                }
                Level::Pdpt | Level::Pd | Level::Pt => None,
            }
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
