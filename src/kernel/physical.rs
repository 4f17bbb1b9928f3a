//! Physical memory for the walker, read with `MmCopyMemory`, which fails
//! cleanly on addresses that are not RAM instead of faulting.

use core::fmt;

use super::api::KernelApi;
use crate::ffi::{
    _MM_COPY_ADDRESS__bindgen_ty_1, MM_COPY_ADDRESS, MM_COPY_MEMORY_PHYSICAL, NTSTATUS,
    PHYSICAL_ADDRESS, SIZE_T,
};
use crate::walker::{PhysAddr, PhysicalMemory};

/// The running system's physical memory.
pub struct KernelMemory<'k, K: KernelApi> {
    kernel: &'k K,
}

impl<'k, K: KernelApi> KernelMemory<'k, K> {
    /// Physical memory read through `kernel`.
    pub const fn new(kernel: &'k K) -> Self {
        Self { kernel }
    }
}

/// `MmCopyMemory` did not copy the 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyFailed {
    /// Its status.
    pub status: NTSTATUS,
    /// Bytes it copied.
    pub copied: SIZE_T,
}

impl fmt::Display for CopyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MmCopyMemory returned NTSTATUS {:#010x} after {} of 8 bytes",
            self.status.cast_unsigned(),
            self.copied
        )
    }
}

impl<K: KernelApi> PhysicalMemory for KernelMemory<'_, K> {
    type Error = CopyFailed;

    #[allow(
        clippy::used_underscore_items,
        reason = "bindgen's name for the anonymous union"
    )]
    fn read_u64(&self, addr: PhysAddr) -> Result<u64, CopyFailed> {
        let mut value = 0_u64;
        let mut copied: SIZE_T = 0;
        let source = MM_COPY_ADDRESS {
            __bindgen_anon_1: _MM_COPY_ADDRESS__bindgen_ty_1 {
                PhysicalAddress: PHYSICAL_ADDRESS {
                    QuadPart: addr.0.cast_signed(),
                },
            },
        };
        // SAFETY: `value` is writable for 8 bytes and `copied` for a SIZE_T;
        // MmCopyMemory validates the physical address itself.
        let status = unsafe {
            self.kernel.mm_copy_memory(
                (&raw mut value).cast(),
                source,
                8,
                MM_COPY_MEMORY_PHYSICAL,
                &raw mut copied,
            )
        };
        if status >= 0 && copied == 8 {
            Ok(value)
        } else {
            Err(CopyFailed { status, copied })
        }
    }
}
