//! What a user asks of the driver: values under the service's `Parameters`
//! key (`HKLM\SYSTEM\CurrentControlSet\Services\vmwalk\Parameters`), read
//! once in `DriverEntry` at `PASSIVE_LEVEL`.

use core::ptr::{NonNull, null_mut};

use super::line::log;
use super::{KernelApi, MappingMethod};
use crate::ffi::{
    _KEY_VALUE_INFORMATION_CLASS, ACCESS_MASK, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL,
    DPFLTR_WARNING_LEVEL, DRIVER_OBJECT, HANDLE, NTSTATUS, OBJ_CASE_INSENSITIVE, OBJ_KERNEL_HANDLE,
    OBJECT_ATTRIBUTES, PCUNICODE_STRING, REG_SZ, ULONG, UNICODE_STRING,
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
type ValueBuffer = [u64; 16];
#[allow(clippy::cast_possible_truncation, reason = "128 bytes")]
const VALUE_BUFFER_BYTES: ULONG = size_of::<ValueBuffer>() as ULONG;

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

    /// The `REG_SZ` value `name`, as UTF-16 without its terminating NULs,
    /// in `buffer`.
    fn string<'b>(
        &self,
        name: &'static [u16],
        buffer: &'b mut ValueBuffer,
    ) -> Result<&'b [u8], ValueError> {
        let mut value_name = unicode(name);
        let mut written: ULONG = 0;
        // SAFETY: the handle is open; `buffer` is writable for its size in
        // bytes and `written` for one ULONG.
        let status = unsafe {
            self.kernel.zw_query_value_key(
                self.handle.as_ptr(),
                &raw mut value_name,
                _KEY_VALUE_INFORMATION_CLASS::KeyValuePartialInformation,
                buffer.as_mut_ptr().cast(),
                VALUE_BUFFER_BYTES,
                &raw mut written,
            )
        };
        if status < 0 {
            return Err(ValueError::Status(status));
        }
        // SAFETY: any u64 array is readable as bytes, and the borrow keeps it alive.
        let bytes: &'b [u8] = unsafe {
            core::slice::from_raw_parts(buffer.as_ptr().cast(), size_of::<ValueBuffer>())
        };
        let field = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let (value_type, length) = (field(4), field(8) as usize);
        if value_type != REG_SZ {
            return Err(ValueError::Type(value_type));
        }
        let mut data = bytes
            .get(PARTIAL_INFORMATION_HEADER..PARTIAL_INFORMATION_HEADER + length)
            .ok_or(ValueError::Status(status))?;
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

/// The `MappingMethod` the user set, or the default; the seed's sequence is
/// refused while Driver Verifier checks the driver. Every outcome is logged.
///
/// # Safety
/// `registry_path` and `driver` are what `DriverEntry` received.
pub unsafe fn mapping_method<K: KernelApi>(
    kernel: &K,
    registry_path: PCUNICODE_STRING,
    driver: *mut DRIVER_OBJECT,
) -> MappingMethod {
    let default = MappingMethod::PartialMdl;
    let Some(asked) = configured_method(kernel, registry_path) else {
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

/// The method named in the registry; `None` (logged) when it is not set or
/// cannot be read.
fn configured_method<K: KernelApi>(
    kernel: &K,
    registry_path: PCUNICODE_STRING,
) -> Option<MappingMethod> {
    let failed = |what: &str, status: NTSTATUS| {
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
    };
    let service = RegistryKey::open(kernel, None, registry_path)
        .map_err(|status| failed("opening the service key", status))
        .ok()?;
    let parameters_name = unicode(&PARAMETERS);
    let parameters = RegistryKey::open(kernel, Some(&service), &raw const parameters_name)
        .map_err(|status| failed("opening Parameters", status))
        .ok()?;
    let mut buffer: ValueBuffer = [0; 16];
    match parameters.string(&MAPPING_METHOD, &mut buffer) {
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
        Err(ValueError::Status(status)) => {
            failed("reading MappingMethod", status);
            None
        }
        Err(ValueError::Type(value_type)) => {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: MappingMethod has type {value_type}, not REG_SZ (1); ignored\n"
                ),
            );
            None
        }
    }
}
