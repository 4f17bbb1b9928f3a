//! Why an x86-64 address does not translate: the page-fault causes of the
//! Intel SDM (vol. 3A, 4.7) and the reserved-bit rules (4.5).

use super::entry::PageTableEntry;
use super::level::Level;
use crate::walker::PhysAddr;

/// The reason a walk stopped, as the CPU would see it (or a failed read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind<E> {
    /// The bits above the top significant bit do not copy it.
    #[error("the address is not canonical for {address_bits}-bit linear addresses")]
    NonCanonical {
        /// 48 or 57.
        address_bits: u32,
    },
    /// P is clear: the CPU raises a not-present page fault.
    #[error("{level} {entry} is not present")]
    NotPresent {
        /// Level of the entry.
        level: Level,
        /// The entry (software may keep information in it).
        entry: PageTableEntry,
    },
    /// A reserved bit is set: the CPU raises a page fault with RSVD set.
    #[error("{level} {entry} has a reserved bit set: {reason}")]
    ReservedBit {
        /// Level of the entry.
        level: Level,
        /// The entry.
        entry: PageTableEntry,
        /// Which rule it breaks.
        reason: ReservedBit,
    },
    /// Physical memory holding the entry could not be read.
    #[error("reading the {level} at physical {addr} failed: {error}")]
    ReadFailed {
        /// Level of the entry.
        level: Level,
        /// Physical address of the entry.
        addr: PhysAddr,
        /// The reader's error.
        error: E,
    },
}

/// Which reserved-bit rule an entry breaks (Intel SDM vol. 3A, 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReservedBit {
    /// Bits 51:MAXPHYADDR of a present entry must be 0.
    #[error("bits 51:{max_phys_bits} must be 0 (MAXPHYADDR is {max_phys_bits})")]
    AboveMaxPhysAddr {
        /// MAXPHYADDR.
        max_phys_bits: u32,
    },
    /// XD (bit 63) is reserved while EFER.NXE is clear.
    #[error("XD (bit 63) is set but EFER.NXE is clear")]
    NoExecuteWithoutNxe,
    /// PS (bit 7) is reserved in PML5 and PML4 entries.
    #[error("PS (bit 7) is reserved at this level")]
    PageSizeAtTopLevel,
    /// PS in a PDPTE needs 1 GiB page support (CPUID 80000001h:EDX.Page1GB).
    #[error("PS (bit 7) is set but the CPU has no 1 GiB pages")]
    NoGigabytePages,
    /// The address bits below a large page's alignment (above the PAT bit) must be 0.
    #[error("bits {high}:13 of a large-page entry must be 0")]
    LargePageAlignment {
        /// 29 for a 1 GiB page, 20 for a 2 MiB page.
        high: u32,
    },
}
