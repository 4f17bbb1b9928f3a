//! Why `DriverEntry` failed, and the NTSTATUS `sc start` reports for it.

use crate::ffi::{NTSTATUS, STATUS_INSUFFICIENT_RESOURCES, STATUS_INTERNAL_ERROR};

/// A failed step of `DriverEntry`; everything acquired before it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// `MmAllocatePagesForMdlEx` returned NULL, or less than a page.
    #[error("MmAllocatePagesForMdlEx returned no page")]
    PageAllocation,
    /// `ExAllocatePool2` returned NULL.
    #[error("ExAllocatePool2 returned NULL")]
    PoolAllocation,
    /// `IoAllocateMdl` returned NULL.
    #[error("IoAllocateMdl returned NULL")]
    MdlAllocation,
    /// `MmBuildMdlForNonPagedPool` did not mark the MDL as describing nonpaged pool.
    #[error("MmBuildMdlForNonPagedPool left MDL_SOURCE_IS_NONPAGED_POOL clear")]
    MdlNotBuilt,
    /// `MmMapLockedPagesSpecifyCache` returned NULL.
    #[error("MmMapLockedPagesSpecifyCache returned NULL")]
    Mapping,
    /// The pattern written through the pool address did not read back through
    /// the mapping.
    #[error("the second address does not alias the first")]
    NotAliased,
    /// The second address is the first one: nothing would be proven.
    #[error("the second address is the first one")]
    SameAddress,
    /// Walking the page tables contradicts the alias: one PTE for both
    /// addresses, or two different frames.
    #[error("the page tables contradict the alias")]
    WalkContradicts,
}

impl DriverError {
    /// The status `DriverEntry` returns: out of pool, MDLs or system PTEs is
    /// `STATUS_INSUFFICIENT_RESOURCES`; a kernel breaking its own contract is
    /// `STATUS_INTERNAL_ERROR`.
    #[must_use]
    pub const fn status(self) -> NTSTATUS {
        match self {
            Self::PageAllocation | Self::PoolAllocation | Self::MdlAllocation | Self::Mapping => {
                STATUS_INSUFFICIENT_RESOURCES
            }
            Self::MdlNotBuilt | Self::NotAliased | Self::SameAddress | Self::WalkContradicts => {
                STATUS_INTERNAL_ERROR
            }
        }
    }
}

impl From<DriverError> for NTSTATUS {
    fn from(error: DriverError) -> Self {
        error.status()
    }
}
