//! Addresses named by the user under the service's `Parameters` key
//! (`Addresses`, and `ProcessId` or `ProcessName`), walked in the right
//! address space: kernel addresses where the driver runs, user addresses
//! attached to the process. Nothing here fails the load: bad input and
//! failed calls are logged.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr::{NonNull, null_mut};

use super::api::KernelApi;
use super::inspect::Walker;
use super::line::log;
use super::walk::Split;
use crate::ffi::{
    DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, KAPC_STATE, NTSTATUS, PEPROCESS, PUNICODE_STRING, PVOID,
    UNICODE_STRING,
};

/// At most this many addresses are walked.
pub const MAX_NAMED_ADDRESSES: usize = 16;
/// An address written longer than this is not an address.
const MAX_ADDRESS_TEXT: usize = 40;
/// A process name longer than this (UTF-16 units) is not looked for.
pub const MAX_PROCESS_NAME: usize = 64;
/// `ProcessName` is looked for among the processes whose id is below this:
/// every candidate id (a multiple of 4) is looked up, documented calls only.
pub const MAX_SCANNED_PROCESS_ID: u32 = 0x4_0000;

/// Which process holds the user addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessChoice {
    /// `ProcessId`.
    Id(u32),
    /// `ProcessName`, UTF-16, compared without case with the image file name.
    Name([u16; MAX_PROCESS_NAME], usize),
}

/// What the user named; empty by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedAddresses {
    addresses: [u64; MAX_NAMED_ADDRESSES],
    count: usize,
    process: Option<ProcessChoice>,
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
            process: None,
        }
    }

    /// The addresses, in the order given.
    #[must_use]
    pub fn addresses(&self) -> &[u64] {
        self.addresses.get(..self.count).unwrap_or_default()
    }

    /// The process whose address space holds the user addresses.
    #[must_use]
    pub const fn process(&self) -> Option<ProcessChoice> {
        self.process
    }

    /// Sets the process (from `ProcessId`).
    pub const fn set_process_id(&mut self, process_id: u32) {
        self.process = Some(ProcessChoice::Id(process_id));
    }

    /// Sets the process by name (from `ProcessName`: UTF-16LE bytes); false
    /// when the name is empty or longer than [`MAX_PROCESS_NAME`].
    pub fn set_process_name(&mut self, utf16le: &[u8]) -> bool {
        let mut name = [0_u16; MAX_PROCESS_NAME];
        let units = utf16le
            .chunks_exact(2)
            .map(|unit| u16::from_le_bytes([unit[0], unit[1]]));
        let mut len = 0;
        for unit in units {
            let Some(slot) = name.get_mut(len) else {
                return false;
            };
            *slot = unit;
            len += 1;
        }
        if len == 0 {
            return false;
        }
        self.process = Some(ProcessChoice::Name(name, len));
        true
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
        if named.process().is_some() {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!("vmwalk: a process is named but Addresses names no address\n"),
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
    let split = Split::of(kernel);
    let mut here = addresses
        .iter()
        .filter(|&&va| split.side(va) != "user space")
        .peekable();
    // The walker logs the registers and finds the self-map: only when needed.
    if here.peek().is_some() {
        let walker = Walker::new(kernel);
        for &va in here {
            walker.walk("address", va);
        }
    }
    let mut user = addresses
        .iter()
        .filter(|&&va| split.side(va) == "user space")
        .peekable();
    if user.peek().is_none() {
        return;
    }
    let process_id = match named.process() {
        Some(ProcessChoice::Id(process_id)) => process_id,
        Some(ProcessChoice::Name(name, len)) => {
            let Some(process_id) = find_by_name(kernel, name.get(..len).unwrap_or_default()) else {
                return;
            };
            process_id
        }
        None => {
            for va in user {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: user address {va:#x} needs a process: set ProcessId or ProcessName under Parameters; not walked\n"
                    ),
                );
            }
            return;
        }
    };
    let Some(process) = ProcessRef::look_up(kernel, process_id) else {
        return;
    };
    process.attached(|| {
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: attached to process {process_id}: the paging registers below are its address space as the kernel sees it (on x64 with KVA shadowing, user mode runs on a second, user-only table)\n"
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

/// The id of the one running process whose image file is `name` (without
/// case), among ids below [`MAX_SCANNED_PROCESS_ID`]; `None` (logged) when
/// none or several are.
fn find_by_name<K: KernelApi>(kernel: &K, name: &[u16]) -> Option<u32> {
    let shown = Utf16(name);
    let (mut found, mut count) = ([0_u32; 2], 0_usize);
    for process_id in (4..MAX_SCANNED_PROCESS_ID).step_by(4) {
        let Some(process) = ProcessRef::find(kernel, process_id) else {
            continue;
        };
        if process.image_file_is(name) {
            if let Some(slot) = found.get_mut(count) {
                *slot = process_id;
            }
            count += 1;
        }
    }
    match count {
        0 => log(
            kernel,
            DPFLTR_ERROR_LEVEL,
            format_args!(
                "vmwalk: no running process is named {shown} (among ids below {MAX_SCANNED_PROCESS_ID:#x}); its addresses are not walked\n"
            ),
        ),
        1 => {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!("vmwalk: {shown} is process {}\n", found[0]),
            );
            return Some(found[0]);
        }
        _ => log(
            kernel,
            DPFLTR_ERROR_LEVEL,
            format_args!(
                "vmwalk: {count} processes are named {shown} ({}, {}, ...): set ProcessId to choose one\n",
                found[0], found[1]
            ),
        ),
    }
    None
}

/// UTF-16 for a log line; what is not printable ASCII shows as `?`.
struct Utf16<'a>(&'a [u16]);

impl core::fmt::Display for Utf16<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|&unit| {
            let c = u8::try_from(unit)
                .ok()
                .filter(u8::is_ascii_graphic)
                .map_or('?', char::from);
            core::fmt::Write::write_char(f, c)
        })
    }
}

/// A referenced process, dereferenced on drop.
struct ProcessRef<'k, K: KernelApi> {
    kernel: &'k K,
    /// The `EPROCESS`, untyped: wdk-sys declares `PEPROCESS` as a `_KPROCESS` pointer.
    process: NonNull<c_void>,
}

impl<'k, K: KernelApi> ProcessRef<'k, K> {
    /// `PsLookupProcessByProcessId`, silent: `Err` holds the status.
    fn try_look_up(kernel: &'k K, process_id: u32) -> Result<Self, NTSTATUS> {
        let mut process: PEPROCESS = null_mut();
        let id = process_id as usize as PVOID;
        // SAFETY: `process` is a live local.
        let status = unsafe { kernel.ps_lookup_process_by_process_id(id, &raw mut process) };
        match NonNull::new(process) {
            Some(process) if status >= 0 => Ok(Self {
                kernel,
                process: process.cast(),
            }),
            _ => Err(status),
        }
    }

    /// The process, if `process_id` names one (a scan: not logged).
    fn find(kernel: &'k K, process_id: u32) -> Option<Self> {
        Self::try_look_up(kernel, process_id).ok()
    }

    /// `PsLookupProcessByProcessId`; `None` (logged) when there is no such process.
    fn look_up(kernel: &'k K, process_id: u32) -> Option<Self> {
        Self::try_look_up(kernel, process_id)
            .map_err(|status| {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: PsLookupProcessByProcessId({process_id}) failed with NTSTATUS {:#010x}: no such process (or it exited); its addresses are not walked\n",
                        status.cast_unsigned()
                    ),
                );
            })
            .ok()
    }

    /// Its image file's name (the last part of `SeLocateProcessImageName`'s
    /// path) is `name`, without ASCII case.
    fn image_file_is(&self, name: &[u16]) -> bool {
        let mut path: PUNICODE_STRING = null_mut();
        // SAFETY: the process is referenced; `path` is a live local.
        let status = unsafe {
            self.kernel
                .se_locate_process_image_name(self.process.as_ptr().cast(), &raw mut path)
        };
        let Some(string) = NonNull::new(path).filter(|_| status >= 0) else {
            return false;
        };
        let path = PoolString {
            kernel: self.kernel,
            string,
        };
        path.file_name().is_some_and(|file| {
            file.len() == name.len() && file.iter().zip(name).all(|(&a, &b)| lower(a) == lower(b))
        })
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

/// ASCII letters folded to lower case; every other unit as it is.
fn lower(unit: u16) -> u16 {
    u8::try_from(unit).map_or(unit, |byte| u16::from(byte.to_ascii_lowercase()))
}

/// A `UNICODE_STRING` in pool that `SeLocateProcessImageName` allocated,
/// freed on drop with `ExFreePool`.
struct PoolString<'k, K: KernelApi> {
    kernel: &'k K,
    string: NonNull<UNICODE_STRING>,
}

impl<K: KernelApi> PoolString<'_, K> {
    /// The part after the last backslash, if the string is well formed.
    fn file_name(&self) -> Option<&[u16]> {
        // SAFETY: the kernel filled the header in; it lives while `self` does.
        let header = unsafe { self.string.as_ref() };
        if header.Buffer.is_null() || header.Length > header.MaximumLength {
            return None;
        }
        // SAFETY: `Buffer` holds `Length` bytes, allocated with the header.
        let path =
            unsafe { core::slice::from_raw_parts(header.Buffer, usize::from(header.Length / 2)) };
        let start = path
            .iter()
            .rposition(|&unit| unit == u16::from(b'\\'))
            .map_or(0, |at| at + 1);
        path.get(start..)
    }
}

impl<K: KernelApi> Drop for PoolString<'_, K> {
    fn drop(&mut self) {
        // SAFETY: SeLocateProcessImageName allocated it for this caller, who
        // frees it once, with ExFreePool's tag 0.
        unsafe {
            self.kernel
                .ex_free_pool_with_tag(self.string.as_ptr().cast(), 0);
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
