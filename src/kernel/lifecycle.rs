//! What `DriverEntry` and `DriverUnload` do, for any [`KernelApi`].

use core::cell::UnsafeCell;

use super::alias::{Alias, MappingMethod};
use super::api::KernelApi;
use super::error::DriverError;
use super::inspect::inspect;
use super::log::LogFormat;
use super::memory::address;
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, ULONG};
use crate::walker::VirtAddr;

/// Pool tag "vmwk", as `!pool` and poolmon show it (stored little-endian).
pub const POOL_TAG: ULONG = u32::from_le_bytes(*b"vmwk");

const LOADED: LogFormat =
    LogFormat::new(c"vmwalk: DriverEntry succeeded; the page at %p and %p stays until unload\n");
const ENTRY_FAILED: LogFormat =
    LogFormat::new(c"vmwalk: DriverEntry failed with NTSTATUS 0x%08X; nothing left allocated\n");
const UNLOADING: LogFormat = LogFormat::new(c"vmwalk: DriverUnload: tearing down %p and %p\n");
const UNLOADED: LogFormat = LogFormat::new(c"vmwalk: DriverUnload done\n");

/// `DriverEntry`'s work: one page at two kernel virtual addresses, proven to alias.
///
/// The page is made with `method`; the proof is two different addresses and
/// one pattern, then a walk (two different PTEs, one frame), which also
/// walks `code` (`DriverEntry`) and a stack address. The returned [`Alias`]
/// owns everything; keep it until [`unload`].
///
/// # Errors
/// The step that failed, logged at error level, with everything acquired
/// before it already released.
pub fn load<K: KernelApi>(
    kernel: &K,
    method: MappingMethod,
    code: VirtAddr,
) -> Result<Alias<'_, K>, DriverError> {
    let result = Alias::create(kernel, method, POOL_TAG).and_then(|alias| {
        alias.check()?;
        inspect(&alias, code)?;
        Ok(alias)
    });
    match &result {
        Ok(alias) => {
            let addresses = [address(alias.first()), address(alias.second())];
            kernel.dbg_print(DPFLTR_INFO_LEVEL, &LOADED, addresses);
        }
        Err(error) => {
            let status = error.status().cast_unsigned();
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &ENTRY_FAILED, [status.into(), 0]);
        }
    }
    result
}

/// `DriverUnload`'s work: the reverse of [`load`], by the ownership of [`Alias`].
pub fn unload<K: KernelApi>(alias: Alias<'_, K>) {
    let kernel = alias.kernel();
    let addresses = [address(alias.first()), address(alias.second())];
    kernel.dbg_print(DPFLTR_INFO_LEVEL, &UNLOADING, addresses);
    drop(alias);
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
