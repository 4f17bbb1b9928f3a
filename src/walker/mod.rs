//! x86-64 page-table walker: translates virtual to physical addresses the way
//! the MMU does, from CR3 through PML5 (with LA57)/PML4/PDPT/PD/PT, and says
//! exactly why an address does not translate.
//!
//! It is `no_std`, never allocates and never panics: the same code runs in the
//! driver (reading physical memory with `MmCopyMemory`) and on memory images.
//!
//! ```
//! use vmwalk::walker::{FaultKind, ImageMemory, Level, Paging, PagingMode, PhysAddr, VirtAddr};
//!
//! // Four tables in a 20 KiB image, PML4 at 0x1000 to PT at 0x4000, that map
//! // the 4 KiB page at virtual 0x7ff6_c000_1000 to physical 0x9000.
//! let va: u64 = 0x7ff6_c000_1234;
//! let mut image = vec![0_u8; 0x5000];
//! let mut put = |table: u64, shift: u32, entry: u64| {
//!     let at = usize::try_from(table + 8 * ((va >> shift) & 0x1ff)).unwrap();
//!     image[at..at + 8].copy_from_slice(&entry.to_le_bytes());
//! };
//! let present_writable = 0b11;
//! put(0x1000, 39, 0x2000 | present_writable);
//! put(0x2000, 30, 0x3000 | present_writable);
//! put(0x3000, 21, 0x4000 | present_writable);
//! put(0x4000, 12, 0x9000 | present_writable);
//!
//! let paging = Paging::new(0x1000, PagingMode::FourLevel);
//! let memory = ImageMemory::new(&image);
//! let translation = paging.translate(&memory, VirtAddr(va)).unwrap();
//! assert_eq!(translation.pa, PhysAddr(0x9234));
//! assert_eq!(translation.path.as_slice().len(), 4, "PML4E, PDPTE, PDE, PTE");
//! assert!(translation.mapping.access.writable);
//!
//! // The next page is not mapped: the walker says where, and why.
//! let fault = paging.translate(&memory, VirtAddr(va + 0x1000)).unwrap_err();
//! assert!(matches!(fault.kind, FaultKind::NotPresent { level: Level::Pt, .. }));
//! assert_eq!(fault.kind.to_string(), "PTE 0x0000000000000000 is not present");
//!
//! // Every present leaf, in address order.
//! let leaves = paging.leaves(&memory).collect::<Result<Vec<_>, _>>().unwrap();
//! assert_eq!(leaves.len(), 1);
//! assert_eq!((leaves[0].va, leaves[0].pa), (VirtAddr(0x7ff6_c000_1000), PhysAddr(0x9000)));
//! ```

pub mod aarch64;
mod address;
mod entry;
mod enumerate;
mod fault;
pub mod info_tlb;
pub mod mask_evidence;
mod memory;
mod merge;
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

    /// Sets MAXPHYADDR (CPUID 80000008h, EAX bits 7:0).
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
