//! ARM64 access rules, leaves and decoding, and the fast translation path (Arm
//! ARM, "Translation table walks"
//! and "Memory access control" for stage 1 of the EL1&0 regime).

use core::fmt;

use super::descriptor::{Descriptor, DescriptorKind, Level, Shareability};
use super::fault::FaultKind;
use super::outcome::{Fault, Path, Translation};
use super::registers::{Paging, VaRange, mask};
use crate::walker::architecture::{Leaf, Step};
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr, walk};

/// What the table descriptors above a leaf take away (their hierarchical
/// attributes, ORed along the walk; all clear with TCR_EL1.HPDx).
// Independent permission bits, as the Arm ARM lists them.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TableRestrictions {
    /// Some APTable\[0\] (bit 61) set: no EL0 access.
    pub no_el0: bool,
    /// Some APTable\[1\] (bit 62) set: no writes.
    pub read_only: bool,
    /// Some UXNTable (bit 60) set: not executable at EL0.
    pub uxn: bool,
    /// Some PXNTable (bit 59) set: not executable at EL1.
    pub pxn: bool,
}

impl TableRestrictions {
    /// Adds a table descriptor's restrictions, unless `disabled` (HPDx).
    #[must_use]
    pub(super) const fn narrowed_by(self, table: Descriptor, disabled: bool) -> Self {
        if disabled {
            return self;
        }
        Self {
            no_el0: self.no_el0 || table.has(Descriptor::AP_TABLE_NO_EL0),
            read_only: self.read_only || table.has(Descriptor::AP_TABLE_READ_ONLY),
            uxn: self.uxn || table.has(Descriptor::UXN_TABLE),
            pxn: self.pxn || table.has(Descriptor::PXN_TABLE),
        }
    }
}

/// Effective permissions of a block or page. EL1 may always read (PAN and
/// SCTLR_EL1.WXN are not modelled).
// Independent permission bits, as the Arm ARM lists them.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// EL1 may write: AP\[2\] clear and no APTable\[1\] above.
    pub privileged_write: bool,
    /// EL0 may read: AP\[1\] set and no APTable\[0\] above.
    pub unprivileged_read: bool,
    /// EL0 may write: AP\[2:1\] = 0b01 and no APTable bit above.
    pub unprivileged_write: bool,
    /// EL1 may execute: no PXN, no PXNTable, and EL0 may not write
    /// (locations writable at EL0 are never executable at EL1).
    pub privileged_execute: bool,
    /// EL0 may execute: no UXN and no UXNTable.
    pub unprivileged_execute: bool,
}

impl Access {
    /// The permissions of `leaf` under `table`'s restrictions (pseudocode
    /// `AArch64.S1DirectBasePermissions`).
    #[must_use]
    #[inline]
    pub const fn of(leaf: Descriptor, table: TableRestrictions) -> Self {
        let read_only = leaf.has(Descriptor::AP_READ_ONLY) || table.read_only;
        let el0 = leaf.has(Descriptor::AP_EL0) && !table.no_el0;
        let unprivileged_write = el0 && !read_only;
        Self {
            privileged_write: !read_only,
            unprivileged_read: el0,
            unprivileged_write,
            privileged_execute: !(leaf.has(Descriptor::PXN) || table.pxn || unprivileged_write),
            unprivileged_execute: !(leaf.has(Descriptor::UXN) || table.uxn),
        }
    }
}

/// A block or page: what it maps and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Virtual address of its first byte, with bits above the range's size
    /// all clear (TTBR0) or all set (TTBR1), the top byte included.
    pub va: VirtAddr,
    /// Physical address of its first byte.
    pub pa: PhysAddr,
    /// 4 KiB (page), 2 MiB or 1 GiB (blocks).
    pub size: PageSize,
    /// The range it belongs to.
    pub range: VaRange,
    /// Effective permissions.
    pub access: Access,
    /// The block or page descriptor.
    pub descriptor: Descriptor,
    /// What the tables above it take away.
    pub table: TableRestrictions,
    /// AF is clear and TCR_EL1.HA is not set: an access would take an Access
    /// flag fault (the translation itself is valid).
    pub access_flag_fault: bool,
}

impl Mapping {
    /// The level of the block or page descriptor.
    #[must_use]
    pub const fn level(&self) -> Level {
        match self.size {
            PageSize::Size4K => Level::L3,
            PageSize::Size2M => Level::L2,
            PageSize::Size1G => Level::L1,
        }
    }

    /// AF: the block or page was accessed.
    #[must_use]
    pub const fn accessed(&self) -> bool {
        self.descriptor.has(Descriptor::ACCESSED)
    }

    /// nG clear: the TLB entry applies to every ASID.
    #[must_use]
    pub const fn global(&self) -> bool {
        !self.descriptor.has(Descriptor::NOT_GLOBAL)
    }

    /// The Contiguous hint (a TLB may cache 16 entries as one).
    #[must_use]
    pub const fn contiguous(&self) -> bool {
        self.descriptor.has(Descriptor::CONTIGUOUS)
    }

    /// AttrIndx: the MAIR_EL1 byte that gives the memory type.
    #[must_use]
    pub const fn attr_index(&self) -> u8 {
        self.descriptor.attr_index()
    }

    /// SH\[1:0\].
    #[must_use]
    pub const fn shareability(&self) -> Shareability {
        self.descriptor.shareability()
    }
}

/// `4K page at 0x5000, EL1 rw, EL0 r, EL1 nx, EL0 x, ISH, AttrIndx 4, nG`.
impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.access;
        let el1 = if a.privileged_write { "rw" } else { "r" };
        let el0 = match (a.unprivileged_read, a.unprivileged_write) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, _) => "-",
        };
        let x = |yes: bool| if yes { "x" } else { "nx" };
        write!(
            f,
            "{} {} at {:#x}, EL1 {el1}, EL0 {el0}, EL1 {}, EL0 {}, {}, AttrIndx {}",
            self.size,
            if self.size == PageSize::Size4K {
                "page"
            } else {
                "block"
            },
            self.pa.0,
            x(a.privileged_execute),
            x(a.unprivileged_execute),
            self.shareability(),
            self.attr_index(),
        )?;
        if !self.global() {
            f.write_str(", nG")?;
        }
        if self.contiguous() {
            f.write_str(", contiguous")?;
        }
        if !self.accessed() {
            f.write_str(if self.access_flag_fault {
                ", AF clear (Access flag fault)"
            } else {
                ", AF clear (set by hardware, TCR_EL1.HA)"
            })?;
        }
        Ok(())
    }
}

// Deliberately as in x86_64/translate.rs: both implement the engine's trait.
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
    /// What `descriptor` at `level` leads to, or the fault it raises.
    pub(super) const fn step<E>(
        &self,
        level: Level,
        descriptor: Descriptor,
    ) -> Result<Step, FaultKind<E>> {
        let (step, addr) = match descriptor.kind(level) {
            DescriptorKind::Invalid => return Err(FaultKind::Invalid { level, descriptor }),
            DescriptorKind::Reserved => return Err(FaultKind::Reserved { level, descriptor }),
            DescriptorKind::Table => {
                let addr = descriptor.output_address(12);
                (Step::Table(PhysAddr(addr)), addr)
            }
            DescriptorKind::Block | DescriptorKind::Page => {
                let addr = descriptor.output_address(level.shift());
                let size = match level {
                    Level::L1 => PageSize::Size1G,
                    Level::L2 => PageSize::Size2M,
                    Level::L0 | Level::L3 => PageSize::Size4K,
                };
                (Step::Leaf(size, PhysAddr(addr)), addr)
            }
        };
        if self.beyond_pa_size(addr) {
            return Err(FaultKind::AddressSize {
                level,
                descriptor,
                addr,
                pa_bits: self.pa_bits(),
            });
        }
        Ok(step)
    }

    /// The range `va` is in, and its input address (the bits below the
    /// range's size); or why it is in neither.
    pub(super) const fn select<E>(&self, va: u64) -> Result<(VaRange, u64), FaultKind<E>> {
        let range = VaRange::of(va);
        let config = self.range(range);
        let checked = mask(config.va_bits, config.top_checked_bit());
        let expected = match range {
            VaRange::Lower => 0,
            VaRange::Upper => checked,
        };
        if va & checked != expected {
            return Err(FaultKind::OutsideRanges {
                range,
                va_bits: config.va_bits,
                top: config.top_checked_bit(),
            });
        }
        if config.walks_disabled {
            return Err(FaultKind::WalksDisabled { range });
        }
        Ok((range, va & mask(0, config.va_bits - 1)))
    }

    /// The initial table of `range`, or the Address size fault its TTBR raises.
    pub(super) const fn initial_table<E>(&self, range: VaRange) -> Result<u64, FaultKind<E>> {
        let table = self.range(range).table_base();
        if self.beyond_pa_size(table) {
            return Err(FaultKind::TableBaseBeyondPaSize {
                range,
                table,
                pa_bits: self.pa_bits(),
            });
        }
        Ok(table)
    }

    /// The mapping of a leaf covering input address `ia` of `range`.
    // Out of line, it kept the fast path from dropping what callers never read.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(super) const fn mapping(
        &self,
        range: VaRange,
        ia: u64,
        size: PageSize,
        pa: u64,
        descriptor: Descriptor,
        table: TableRestrictions,
    ) -> Mapping {
        let base = ia & !(size.bytes() - 1);
        let va = match range {
            VaRange::Lower => base,
            VaRange::Upper => base | (u64::MAX << self.range(range).va_bits),
        };
        Mapping {
            va: VirtAddr(va),
            pa: PhysAddr(pa),
            size,
            range,
            access: Access::of(descriptor, table),
            descriptor,
            table,
            access_flag_fault: !descriptor.has(Descriptor::ACCESSED)
                && !self.hardware_access_flag(),
        }
    }

    /// Translates `va` as the MMU would for a stage 1 EL1&0 data access.
    ///
    /// # Errors
    /// A [`Fault`] saying why `va` does not translate, with the descriptors read.
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

    /// The common case, kept small: a walk from level 0 (40- to 48-bit
    /// ranges) that ends on a block or page. Any other outcome is `None`,
    /// and [`Self::translate_or_fault`] walks again, step by step.
    // Measured (benches/paired.rs, mixed image): the step-by-step walk alone
    // took 20.8 ns a translation, this path 3.8-3.9, the pointer chase 2.8-2.9.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn translate_mapped<M: PhysicalMemory + ?Sized>(
        &self,
        memory: &M,
        va: VirtAddr,
    ) -> Option<Translation> {
        let prepared = self.prepared(va.0);
        if va.0 & prepared.checked != prepared.expected {
            return None;
        }
        let ia = va.0 & prepared.ia_mask;
        let mut table = prepared.table;
        // One test for valid (bit 0) and an address inside the PA size: every
        // level's output address has all the bits from the PA size to 47.
        let usable = 1 | (mask(0, 47) & !mask(0, self.pa_bits() - 1));
        let (mut addrs, mut descriptors) = ([0u64; 4], [0u64; 4]);
        for depth in 0..4 {
            let shift = Level::ALL.get(depth)?.shift();
            let addr = table + ((ia >> shift) & 0x1ff) * 8;
            let raw = memory.read_u64(PhysAddr(addr)).ok()?;
            *addrs.get_mut(depth)? = addr;
            *descriptors.get_mut(depth)? = raw;
            if raw & usable != 1 {
                return None;
            }
            // Bit 1: a table (levels 0-2) or a page (level 3); else a block.
            let (size, output) = match (depth, raw & 0b10 != 0) {
                (0..3, true) => {
                    table = raw & mask(12, 47);
                    continue;
                }
                (3, true) => (PageSize::Size4K, raw & mask(12, 47)),
                (1, false) => (PageSize::Size1G, raw & mask(30, 47)),
                (2, false) => (PageSize::Size2M, raw & mask(21, 47)),
                _ => return None, // a block at level 0 or 0b01 at level 3
            };
            // The tables' restrictions, only now: callers that read only the
            // address do not pay for them.
            let range = VaRange::of(va.0);
            let disabled = self.range(range).hierarchical_permissions_disabled;
            let mut restrictions = TableRestrictions::default();
            for &above in descriptors.get(..depth)? {
                restrictions = restrictions.narrowed_by(Descriptor(above), disabled);
            }
            let mapping = self.mapping(range, ia, size, output, Descriptor(raw), restrictions);
            return Some(Translation {
                va,
                pa: PhysAddr(output | (ia & (size.bytes() - 1))),
                mapping,
                path: Path::of_walk(&Level::ALL, &addrs, &descriptors, depth + 1),
            });
        }
        None // unreachable: a level 3 descriptor is a page or faults
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
}
