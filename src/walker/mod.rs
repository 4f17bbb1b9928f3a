//! x86-64 page-table walker: translates virtual to physical addresses the way
//! the MMU does, from CR3 through PML5 (with LA57)/PML4/PDPT/PD/PT, and says
//! exactly why an address does not translate.
//!
//! It is `no_std`, never allocates and never panics: the same code runs in the
//! driver (reading physical memory with `MmCopyMemory`) and on memory images.

mod address;
mod entry;
mod enumerate;
mod fault;
pub mod info_tlb;
mod memory;
mod path;
mod range;
mod self_map;
pub mod software_pte;
mod translate;
pub mod windbg;

pub use address::{Level, PageSize, PagingMode, PhysAddr, VirtAddr};
pub use entry::{MemoryTypeBits, PageTableEntry};
pub use enumerate::{Leaves, RangeError, Run, Runs};
pub use fault::{Fault, FaultKind, ReservedBit};
pub use memory::{ImageMemory, OutsideImage};
pub use path::{Path, Visited};
pub use range::{CachedWalker, Page, PageTranslations};
pub use self_map::SelfMap;
pub use translate::{Access, Mapping, Translation};

/// Reads physical memory for the walker.
pub trait PhysicalMemory {
    /// Why a read failed.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Reads the 8-byte little-endian value at `addr` (8-byte aligned).
    ///
    /// # Errors
    /// When the memory at `addr` cannot be read.
    fn read_u64(&self, addr: PhysAddr) -> Result<u64, Self::Error>;
}

impl<M: PhysicalMemory + ?Sized> PhysicalMemory for &M {
    type Error = M::Error;

    fn read_u64(&self, addr: PhysAddr) -> Result<u64, Self::Error> {
        (**self).read_u64(addr)
    }
}

/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// `IA32_EFER.NXE`: execute-disable bit enabled.
pub const EFER_NXE: u64 = 1 << 11;

/// An invalid walker setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// MAXPHYADDR outside what x86-64 CPUs report.
    #[error("MAXPHYADDR must be between 32 and 52, not {0}")]
    MaxPhysAddr(u32),
}

/// What the walker needs to know of the CPU's paging state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    cr3: u64,
    mode: PagingMode,
    max_phys_bits: u32,
    nx_enabled: bool,
    gigabyte_pages: bool,
}

impl Paging {
    /// Paging from CR3 in `mode`, with MAXPHYADDR 52, EFER.NXE set and 1 GiB pages.
    #[must_use]
    pub const fn new(cr3: u64, mode: PagingMode) -> Self {
        Self {
            cr3,
            mode,
            max_phys_bits: 52,
            nx_enabled: true,
            gigabyte_pages: true,
        }
    }

    /// Paging as the registers describe it (CR4.LA57, EFER.NXE).
    #[must_use]
    pub const fn from_registers(cr3: u64, cr4: u64, efer: u64) -> Self {
        let mode = if cr4 & CR4_LA57 != 0 {
            PagingMode::FiveLevel
        } else {
            PagingMode::FourLevel
        };
        Self::new(cr3, mode).with_nx(efer & EFER_NXE != 0)
    }

    /// Sets MAXPHYADDR (CPUID 80000008h:EAX[7:0]).
    ///
    /// # Errors
    /// When `bits` is not in 32..=52.
    pub const fn with_max_phys_bits(mut self, bits: u32) -> Result<Self, ConfigError> {
        if bits < 32 || bits > 52 {
            return Err(ConfigError::MaxPhysAddr(bits));
        }
        self.max_phys_bits = bits;
        Ok(self)
    }

    /// Sets EFER.NXE.
    #[must_use]
    pub const fn with_nx(mut self, enabled: bool) -> Self {
        self.nx_enabled = enabled;
        self
    }

    /// Sets whether the CPU supports 1 GiB pages.
    #[must_use]
    pub const fn with_gigabyte_pages(mut self, supported: bool) -> Self {
        self.gigabyte_pages = supported;
        self
    }

    /// The paging mode.
    #[must_use]
    pub const fn mode(&self) -> PagingMode {
        self.mode
    }

    /// MAXPHYADDR.
    #[must_use]
    pub const fn max_phys_bits(&self) -> u32 {
        self.max_phys_bits
    }

    /// Physical address of the top-level table: CR3 bits MAXPHYADDR-1:12
    /// (PCID/PWT/PCD in 11:0 and the no-flush bit 63 are ignored).
    #[must_use]
    pub const fn root(&self) -> PhysAddr {
        PhysAddr(self.cr3 & entry::address_mask(12, self.max_phys_bits))
    }
}
