//! Addresses named by the user under the service's `Parameters` key
//! (`Addresses`, `ProcessId`), walked in the right address space: kernel
//! addresses where the driver runs, user addresses attached to the process.
//! Nothing here fails the load: bad input and failed calls are logged.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr::{NonNull, null_mut};

use super::KernelApi;
use super::inspect::Walker;
use super::line::log;
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, KAPC_STATE, PEPROCESS, PVOID};

/// At most this many addresses are walked.
pub const MAX_NAMED_ADDRESSES: usize = 16;
/// An address written longer than this is not an address.
const MAX_ADDRESS_TEXT: usize = 40;

/// What the user named; empty by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedAddresses {
    addresses: [u64; MAX_NAMED_ADDRESSES],
    count: usize,
    process_id: Option<u32>,
}

impl Default for NamedAddresses {
    fn default() -> Self {
        Self::none()
    }
}

impl NamedAddresses {
    /// Nothing named.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            addresses: [0; MAX_NAMED_ADDRESSES],
            count: 0,
            process_id: None,
        }
    }

    /// The addresses, in the order given.
    #[must_use]
    pub fn addresses(&self) -> &[u64] {
        self.addresses.get(..self.count).unwrap_or_default()
    }

    /// The process whose address space holds the user addresses.
    #[must_use]
    pub const fn process_id(&self) -> Option<u32> {
        self.process_id
    }

    /// Sets the process (from `ProcessId`).
    pub const fn set_process_id(&mut self, process_id: u32) {
        self.process_id = Some(process_id);
    }

    /// Adds the strings of a `REG_MULTI_SZ` (UTF-16LE, each NUL-terminated),
    /// each a hex address as `WinDbg` writes it (`0x` optional, `` ` `` and `_`
    /// ignored); a bad entry, or one beyond the 16th, is logged and skipped.
    pub fn parse_multi_sz<K: KernelApi>(&mut self, kernel: &K, data: &[u8]) {
        let mut text = [0_u8; MAX_ADDRESS_TEXT];
        let (mut len, mut entry, mut too_long, mut not_ascii) = (0, 0, false, false);
        let units = data
            .chunks_exact(2)
            .map(|unit| u16::from_le_bytes([unit[0], unit[1]]));
        // A final NUL ends the last string even if the value lacks it.
        for unit in units.chain(core::iter::once(0)) {
            if unit != 0 {
                match (u8::try_from(unit), text.get_mut(len)) {
                    (Ok(byte), Some(slot)) if byte.is_ascii() => {
                        *slot = byte;
                        len += 1;
                    }
                    (Ok(byte), None) if byte.is_ascii() => too_long = true,
                    _ => not_ascii = true,
                }
                continue;
            }
            if len == 0 && !too_long && !not_ascii {
                break; // an empty string ends a REG_MULTI_SZ
            }
            entry += 1;
            let written = core::str::from_utf8(text.get(..len).unwrap_or_default()).unwrap_or("");
            match (too_long, not_ascii, parse_address(written)) {
                (false, false, Some(address)) => self.push(kernel, entry, address),
                (true, _, _) => log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: Addresses entry {entry} is longer than any address; skipped\n"
                    ),
                ),
                (_, true, _) => log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!("vmwalk: Addresses entry {entry} is not ASCII hex; skipped\n"),
                ),
                (false, false, None) => log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: Addresses entry {entry} ('{written}') is not a 64-bit hex address; skipped\n"
                    ),
                ),
            }
            (len, too_long, not_ascii) = (0, false, false);
        }
    }

    fn push<K: KernelApi>(&mut self, kernel: &K, entry: usize, address: u64) {
        if let Some(slot) = self.addresses.get_mut(self.count) {
            *slot = address;
            self.count += 1;
        } else {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: Addresses entry {entry} ({address:#x}) is beyond the first {MAX_NAMED_ADDRESSES}; skipped\n"
                ),
            );
        }
    }
}

/// A hex address as `WinDbg` writes it: `0x` optional, `` ` `` and `_` ignored.
fn parse_address(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '`' && c != '_') {
        let digit = u64::from(c.to_digit(16)?);
        value = value.checked_mul(16)?.checked_add(digit)?;
        any = true;
    }
    any.then_some(value)
}

/// Walks every named address: kernel ones here, user ones in the process.
pub fn walk_named<K: KernelApi>(kernel: &K, named: &NamedAddresses) {
    let addresses = named.addresses();
    if addresses.is_empty() {
        if let Some(process_id) = named.process_id() {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: ProcessId {process_id} is set but Addresses names no address\n"
                ),
            );
        }
        return;
    }
    log(
        kernel,
        DPFLTR_INFO_LEVEL,
        format_args!(
            "vmwalk: {} address(es) named under Parameters\\Addresses\n",
            addresses.len()
        ),
    );
    let here = Walker::new(kernel);
    let split = here.split();
    for &va in addresses
        .iter()
        .filter(|&&va| split.side(va) != "user space")
    {
        here.walk("address", va);
    }
    let mut user = addresses
        .iter()
        .filter(|&&va| split.side(va) == "user space")
        .peekable();
    if user.peek().is_none() {
        return;
    }
    let Some(process_id) = named.process_id() else {
        for va in user {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: user address {va:#x} needs a process: set ProcessId under Parameters; not walked\n"
                ),
            );
        }
        return;
    };
    let Some(process) = ProcessRef::look_up(kernel, process_id) else {
        return;
    };
    process.attached(|| {
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: attached to process {process_id}: the CR3 below is its directory table base as the kernel sees it (with KVA shadowing, user mode runs on a second, user-only table)\n"
            ),
        );
        let there = Walker::new(kernel);
        for &va in user {
            there.walk("address", va);
        }
    });
    log(
        kernel,
        DPFLTR_INFO_LEVEL,
        format_args!("vmwalk: detached from process {process_id}\n"),
    );
}

/// A referenced process, dereferenced on drop.
struct ProcessRef<'k, K: KernelApi> {
    kernel: &'k K,
    /// The `EPROCESS`, untyped: wdk-sys declares `PEPROCESS` as a `_KPROCESS` pointer.
    process: NonNull<c_void>,
}

impl<'k, K: KernelApi> ProcessRef<'k, K> {
    /// `PsLookupProcessByProcessId`; `None` (logged) when there is no such process.
    fn look_up(kernel: &'k K, process_id: u32) -> Option<Self> {
        let mut process: PEPROCESS = null_mut();
        let id = process_id as usize as PVOID;
        // SAFETY: `process` is a live local.
        let status = unsafe { kernel.ps_lookup_process_by_process_id(id, &raw mut process) };
        match NonNull::new(process) {
            Some(process) if status >= 0 => Some(Self {
                kernel,
                process: process.cast(),
            }),
            _ => {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: PsLookupProcessByProcessId({process_id}) failed with NTSTATUS {:#010x}: no such process (or it exited); its addresses are not walked\n",
                        status.cast_unsigned()
                    ),
                );
                None
            }
        }
    }

    /// Runs `work` attached to the process (`KeStackAttachProcess`), then
    /// detaches. The APC state lives in this frame, which outlives the
    /// attachment: the kernel keeps a pointer to it until the detach.
    fn attached(&self, work: impl FnOnce()) {
        let mut apc_state = MaybeUninit::<KAPC_STATE>::uninit();
        // SAFETY: the process is referenced until after the detach below;
        // `apc_state` stays in this frame until then.
        unsafe {
            self.kernel
                .ke_stack_attach_process(self.process.as_ptr().cast(), apc_state.as_mut_ptr());
        };
        work();
        // SAFETY: the attach above filled `apc_state`; no other attach since.
        unsafe {
            self.kernel
                .ke_unstack_detach_process(apc_state.as_mut_ptr());
        }
    }
}

impl<K: KernelApi> Drop for ProcessRef<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the lookup took this reference; it is released only here.
        unsafe {
            self.kernel
                .ob_dereference_object(self.process.as_ptr().cast());
        }
    }
}
