//! What a user asks of the driver: values under the service's `Parameters`
//! key (`HKLM\SYSTEM\CurrentControlSet\Services\vmwalk\Parameters`, which
//! only administrators can write), read once in `DriverEntry` at
//! `PASSIVE_LEVEL`. There is no device object and no IOCTL: nothing an
//! unprivileged user can reach.

use core::fmt;
use core::ptr::{NonNull, null_mut};

use super::alias::MappingMethod;
use super::api::KernelApi;
use super::line::log;
use super::named::{MAX_PROCESS_NAME, NamedAddresses};
use crate::ffi::{
    _KEY_VALUE_INFORMATION_CLASS, ACCESS_MASK, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL,
    DPFLTR_WARNING_LEVEL, DRIVER_OBJECT, HANDLE, NTSTATUS, OBJ_CASE_INSENSITIVE, OBJ_KERNEL_HANDLE,
    OBJECT_ATTRIBUTES, PCUNICODE_STRING, REG_DWORD, REG_MULTI_SZ, REG_SZ, ULONG, UNICODE_STRING,
};

/// `KEY_READ` (winnt.h): `(STANDARD_RIGHTS_READ | KEY_QUERY_VALUE |
/// KEY_ENUMERATE_SUB_KEYS | KEY_NOTIFY) & ~SYNCHRONIZE`.
const KEY_READ: ACCESS_MASK = 0x0002_0019;
/// The key or the value does not exist: the user did not set it.
const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32.cast_signed();
/// `KEY_VALUE_PARTIAL_INFORMATION`: `TitleIndex`, `Type`, `DataLength`, then the data.
const PARTIAL_INFORMATION_HEADER: usize = 12;
#[allow(clippy::cast_possible_truncation, reason = "0x30 bytes")]
const OBJECT_ATTRIBUTES_SIZE: ULONG = size_of::<OBJECT_ATTRIBUTES>() as ULONG;
/// Room for `KEY_VALUE_PARTIAL_INFORMATION` and the longest name we know.
const NAME_BUFFER_WORDS: usize = 16;
/// Room for 16 addresses of up to 40 UTF-16 characters, and then some.
const LIST_BUFFER_WORDS: usize = 200;

/// An ASCII name as the UTF-16 a `UNICODE_STRING` points to.
const fn utf16<const N: usize>(ascii: &str) -> [u16; N] {
    let bytes = ascii.as_bytes();
    assert!(bytes.len() == N, "N is the length of the name");
    let mut wide = [0; N];
    let mut i = 0;
    while i < N {
        assert!(bytes[i].is_ascii());
        wide[i] = bytes[i] as u16;
        i += 1;
    }
    wide
}

static PARAMETERS: [u16; 10] = utf16("Parameters");
static MAPPING_METHOD: [u16; 13] = utf16("MappingMethod");
static ADDRESSES: [u16; 9] = utf16("Addresses");
static PROCESS_ID: [u16; 9] = utf16("ProcessId");
static PROCESS_NAME: [u16; 11] = utf16("ProcessName");

/// A `UNICODE_STRING` for one of the names above; the kernel only reads it.
const fn unicode(name: &'static [u16]) -> UNICODE_STRING {
    #[allow(clippy::cast_possible_truncation, reason = "the names are short")]
    let bytes = (name.len() * 2) as u16;
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: name.as_ptr().cast_mut(),
    }
}

/// An open registry key, closed on drop.
struct RegistryKey<'k, K: KernelApi> {
    kernel: &'k K,
    handle: NonNull<core::ffi::c_void>,
}

impl<'k, K: KernelApi> RegistryKey<'k, K> {
    /// `ZwOpenKey(KEY_READ)` of `name`, relative to `parent` if given.
    fn open(
        kernel: &'k K,
        parent: Option<&Self>,
        name: *const UNICODE_STRING,
    ) -> Result<Self, NTSTATUS> {
        let mut attributes = OBJECT_ATTRIBUTES {
            Length: OBJECT_ATTRIBUTES_SIZE,
            RootDirectory: parent.map_or(null_mut(), |key| key.handle.as_ptr()),
            ObjectName: name.cast_mut(),
            Attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
            SecurityDescriptor: null_mut(),
            SecurityQualityOfService: null_mut(),
        };
        let mut handle: HANDLE = null_mut();
        // SAFETY: both out-pointers are live locals; the name outlives the call.
        let status = unsafe { kernel.zw_open_key(&raw mut handle, KEY_READ, &raw mut attributes) };
        match NonNull::new(handle) {
            Some(handle) if status >= 0 => Ok(Self { kernel, handle }),
            _ => Err(if status >= 0 {
                STATUS_OBJECT_NAME_NOT_FOUND
            } else {
                status
            }),
        }
    }

    /// The value `name` of type `wanted`, its data in `buffer`.
    fn value<'b>(
        &self,
        name: &'static [u16],
        wanted: u32,
        buffer: &'b mut [u64],
    ) -> Result<&'b [u8], ValueError> {
        let mut value_name = unicode(name);
        let mut written: ULONG = 0;
        let capacity = size_of_val(buffer);
        let room = ULONG::try_from(capacity).map_err(|_| ValueError::Status(0))?;
        // SAFETY: the handle is open; `buffer` is writable for `room` bytes
        // and `written` for one ULONG.
        let status = unsafe {
            self.kernel.zw_query_value_key(
                self.handle.as_ptr(),
                &raw mut value_name,
                _KEY_VALUE_INFORMATION_CLASS::KeyValuePartialInformation,
                buffer.as_mut_ptr().cast(),
                room,
                &raw mut written,
            )
        };
        if status < 0 {
            return Err(ValueError::Status(status));
        }
        // SAFETY: any u64 slice is readable as bytes, and the borrow keeps it alive.
        let bytes: &'b [u8] =
            unsafe { core::slice::from_raw_parts(buffer.as_ptr().cast(), capacity) };
        let field = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let (value_type, length) = (field(4), field(8) as usize);
        if value_type != wanted {
            return Err(ValueError::Type(value_type));
        }
        // Never trust a length: DataLength must fit what was written.
        bytes
            .get(PARTIAL_INFORMATION_HEADER..PARTIAL_INFORMATION_HEADER.saturating_add(length))
            .ok_or(ValueError::Status(status))
    }

    /// The `REG_SZ` value `name`, as UTF-16 without its terminating NULs.
    fn string<'b>(
        &self,
        name: &'static [u16],
        buffer: &'b mut [u64],
    ) -> Result<&'b [u8], ValueError> {
        let mut data = self.value(name, REG_SZ, buffer)?;
        // regedit stores the terminating NUL; a value may carry more.
        while let [text @ .., 0, 0] = data {
            data = text;
        }
        Ok(data)
    }
}

impl<K: KernelApi> Drop for RegistryKey<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the handle is open and closed only here.
        let _ = unsafe { self.kernel.zw_close(self.handle.as_ptr()) };
    }
}

/// Why a value could not be used.
#[derive(Clone, Copy)]
enum ValueError {
    /// `ZwQueryValueKey` failed (`STATUS_BUFFER_OVERFLOW` too: longer than any name we know).
    Status(NTSTATUS),
    /// Not a `REG_SZ`.
    Type(u32),
}

/// UTF-16LE `value` equals ASCII `name`, ignoring ASCII case.
fn names_equal(value: &[u8], name: &str) -> bool {
    value.len() == name.len() * 2
        && value
            .chunks_exact(2)
            .zip(name.bytes())
            .all(|(unit, byte)| unit[1] == 0 && unit[0].eq_ignore_ascii_case(&byte))
}

/// What the user asked for under `Parameters`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parameters {
    /// How to make the second address.
    pub method: MappingMethod,
    /// Addresses to walk, and the process of the user ones.
    pub named: NamedAddresses,
}

/// Reads `Parameters` once; every outcome is logged, every handle closed.
///
/// `MappingMethod` (or the default; the seed's sequence is refused while
/// Driver Verifier checks the driver), `Addresses` and `ProcessId`.
///
/// # Safety
/// `registry_path` and `driver` are what `DriverEntry` received.
pub unsafe fn read_parameters<K: KernelApi>(
    kernel: &K,
    registry_path: PCUNICODE_STRING,
    driver: *mut DRIVER_OBJECT,
) -> Parameters {
    let key = open_parameters(kernel, registry_path);
    let asked = key.as_ref().and_then(|key| configured_method(kernel, key));
    // SAFETY: the caller's contract.
    let method = unsafe { decide_method(kernel, asked, driver) };
    let named = key
        .as_ref()
        .map_or_else(NamedAddresses::none, |key| named_addresses(kernel, key));
    Parameters { method, named }
}

/// `<RegistryPath>\Parameters`, or `None` (logged unless it does not exist).
fn open_parameters<K: KernelApi>(
    kernel: &K,
    registry_path: PCUNICODE_STRING,
) -> Option<RegistryKey<'_, K>> {
    let service = RegistryKey::open(kernel, None, registry_path)
        .map_err(|status| failed(kernel, format_args!("opening the service key"), status))
        .ok()?;
    let parameters_name = unicode(&PARAMETERS);
    RegistryKey::open(kernel, Some(&service), &raw const parameters_name)
        .map_err(|status| failed(kernel, format_args!("opening Parameters"), status))
        .ok()
}

/// Logs a failed registry call, except "not found": the user did not set it.
fn failed<K: KernelApi>(kernel: &K, what: fmt::Arguments<'_>, status: NTSTATUS) {
    if status != STATUS_OBJECT_NAME_NOT_FOUND {
        log(
            kernel,
            DPFLTR_ERROR_LEVEL,
            format_args!(
                "vmwalk: {what} failed with NTSTATUS {:#010x}\n",
                status.cast_unsigned()
            ),
        );
    }
}

/// `Addresses` (`REG_MULTI_SZ`), and `ProcessName` (`REG_SZ`) or
/// `ProcessId` (`REG_DWORD`, which wins when both are set).
fn named_addresses<K: KernelApi>(kernel: &K, key: &RegistryKey<'_, K>) -> NamedAddresses {
    let mut named = NamedAddresses::none();
    let mut buffer = [0_u64; LIST_BUFFER_WORDS];
    match key.value(&ADDRESSES, REG_MULTI_SZ, &mut buffer) {
        Ok(data) => named.parse_multi_sz(kernel, data),
        Err(error) => report(kernel, "Addresses", "REG_MULTI_SZ (7)", error),
    }
    let mut buffer = [0_u64; NAME_BUFFER_WORDS * 2];
    match key.string(&PROCESS_NAME, &mut buffer) {
        Ok(name) if named.set_process_name(name) => {}
        Ok(_) => log(
            kernel,
            DPFLTR_ERROR_LEVEL,
            format_args!(
                "vmwalk: ProcessName is empty or longer than {MAX_PROCESS_NAME} characters; ignored\n"
            ),
        ),
        Err(error) => report(kernel, "ProcessName", "REG_SZ (1)", error),
    }
    // ProcessId, if set, wins over ProcessName: it names one process.
    let mut buffer = [0_u64; NAME_BUFFER_WORDS];
    match key.value(&PROCESS_ID, REG_DWORD, &mut buffer) {
        Ok(&[a, b, c, d]) => named.set_process_id(u32::from_le_bytes([a, b, c, d])),
        Ok(data) => log(
            kernel,
            DPFLTR_ERROR_LEVEL,
            format_args!(
                "vmwalk: ProcessId holds {} bytes, not the 4 of a REG_DWORD; ignored\n",
                data.len()
            ),
        ),
        Err(error) => report(kernel, "ProcessId", "REG_DWORD (4)", error),
    }
    named
}

/// Logs why a value is not used.
fn report<K: KernelApi>(kernel: &K, name: &str, wanted: &str, error: ValueError) {
    match error {
        ValueError::Status(status) => failed(kernel, format_args!("reading {name}"), status),
        ValueError::Type(value_type) => log(
            kernel,
            DPFLTR_ERROR_LEVEL,
            format_args!("vmwalk: {name} has type {value_type}, not {wanted}; ignored\n"),
        ),
    }
}

/// The method to use: what the user asked for, unless it is the seed's
/// sequence while Driver Verifier checks the driver. Logged.
///
/// # Safety
/// `driver` is what `DriverEntry` received.
unsafe fn decide_method<K: KernelApi>(
    kernel: &K,
    asked: Option<MappingMethod>,
    driver: *mut DRIVER_OBJECT,
) -> MappingMethod {
    let default = MappingMethod::PartialMdl;
    let Some(asked) = asked else {
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!("vmwalk: MappingMethod {} (the default)\n", default.name()),
        );
        return default;
    };
    if asked == MappingMethod::NonPagedPoolMdl {
        // SAFETY: `driver` is this driver's object (the caller's contract).
        if unsafe { kernel.mm_is_driver_verifying(driver) } != 0 {
            log(
                kernel,
                DPFLTR_WARNING_LEVEL,
                format_args!(
                    "vmwalk: MappingMethod NonPagedPoolMdl refused: Driver Verifier checks this driver (MmIsDriverVerifying) and would stop the machine; using {}\n",
                    default.name()
                ),
            );
            return default;
        }
    }
    log(
        kernel,
        DPFLTR_INFO_LEVEL,
        format_args!("vmwalk: MappingMethod {} (from Parameters)\n", asked.name()),
    );
    asked
}

/// The method named in `MappingMethod`; `None` (logged) when it is not set
/// or cannot be used.
fn configured_method<K: KernelApi>(kernel: &K, key: &RegistryKey<'_, K>) -> Option<MappingMethod> {
    let mut buffer = [0_u64; NAME_BUFFER_WORDS];
    match key.string(&MAPPING_METHOD, &mut buffer) {
        Ok(value) => {
            let known = [MappingMethod::PartialMdl, MappingMethod::NonPagedPoolMdl];
            let method = known.into_iter().find(|m| names_equal(value, m.name()));
            if method.is_none() {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: MappingMethod is none of PartialMdl, NonPagedPoolMdl; ignored\n"
                    ),
                );
            }
            method
        }
        Err(error) => {
            report(kernel, "MappingMethod", "REG_SZ (1)", error);
            None
        }
    }
}
