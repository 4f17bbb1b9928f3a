//! What an x86-64 walk needs of the CPU's paging state: CR3, CR4.LA57,
//! EFER.NXE, MAXPHYADDR and 1 GiB page support (Intel SDM vol. 3A, 4.1 and 4.5).

use super::entry;
use super::level::PagingMode;
use crate::walker::PhysAddr;

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
    pub(super) cr3: u64,
    pub(super) mode: PagingMode,
    pub(super) max_phys_bits: u32,
    pub(super) nx_enabled: bool,
    pub(super) gigabyte_pages: bool,
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
