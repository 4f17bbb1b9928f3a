//! What `DriverEntry` and `DriverUnload` do, for any [`KernelApi`].

use core::cell::UnsafeCell;

use super::memory::address;
use super::{DriverError, KernelApi, LogFormat, Mapping, Mdl, PAGE_SIZE, PoolBuffer};
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, ULONG};

/// Pool tag "vmwk", as `!pool` and poolmon show it (stored little-endian).
pub const POOL_TAG: ULONG = u32::from_le_bytes(*b"vmwk");

const LOADED: LogFormat = LogFormat::new(
    c"vmwalk: DriverEntry succeeded; pool %p and its mapping %p stay until unload\n",
);
const ENTRY_FAILED: LogFormat =
    LogFormat::new(c"vmwalk: DriverEntry failed with NTSTATUS 0x%08X; nothing left allocated\n");
const UNLOADING: LogFormat = LogFormat::new(c"vmwalk: DriverUnload: tearing down mapping %p\n");
const UNLOADED: LogFormat = LogFormat::new(c"vmwalk: DriverUnload done\n");

/// `DriverEntry`'s work: a page of NX pool, an MDL for it, a second NX kernel
/// mapping of its pages, and proof that both addresses alias. The returned
/// mapping owns everything; keep it until [`unload`].
///
/// # Errors
/// The step that failed, logged at error level, with everything acquired
/// before it already released.
pub fn load<K: KernelApi>(kernel: &K) -> Result<Mapping<'_, K>, DriverError> {
    let result = acquire(kernel);
    match &result {
        Ok(mapping) => {
            let pool = address(mapping.mdl().buffer().base());
            kernel.dbg_print(DPFLTR_INFO_LEVEL, &LOADED, [pool, address(mapping.base())]);
        }
        Err(error) => {
            let status = error.status().cast_unsigned();
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &ENTRY_FAILED, [status.into(), 0]);
        }
    }
    result
}

fn acquire<K: KernelApi>(kernel: &K) -> Result<Mapping<'_, K>, DriverError> {
    let buffer = PoolBuffer::allocate(kernel, PAGE_SIZE, POOL_TAG)?;
    let mapping = Mapping::map(Mdl::describe(buffer)?)?;
    mapping.check_alias()?;
    Ok(mapping)
}

/// `DriverUnload`'s work: unmap, free the MDL, free the pool, in that order.
pub fn unload<K: KernelApi>(mapping: Mapping<'_, K>) {
    let kernel = mapping.kernel();
    kernel.dbg_print(DPFLTR_INFO_LEVEL, &UNLOADING, [address(mapping.base()), 0]);
    drop(mapping);
    kernel.dbg_print(DPFLTR_INFO_LEVEL, &UNLOADED, [0, 0]);
}

/// Where the driver keeps its state from `DriverEntry` to `DriverUnload`.
pub struct DriverSlot<T>(UnsafeCell<Option<T>>);

// SAFETY: the only accessor, `replace`, requires callers to serialize access;
// the I/O manager never runs DriverEntry and DriverUnload concurrently. The
// value may move between their threads: the wrappers hold system-space
// addresses, valid in every thread.
unsafe impl<T> Sync for DriverSlot<T> {}

impl<T> DriverSlot<T> {
    /// An empty slot.
    #[must_use]
    pub const fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    /// Stores `value` and returns what was there.
    ///
    /// # Safety
    /// No other call on this slot may run at the same time.
    pub const unsafe fn replace(&self, value: Option<T>) -> Option<T> {
        // SAFETY: the caller guarantees exclusive access.
        unsafe { self.0.get().replace(value) }
    }
}

impl<T> Default for DriverSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}
