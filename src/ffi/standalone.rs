//! The standalone backend: the same items as the `wdk` backend, declared by
//! hand with `wdk-sys`'s names and types (see the module docs of `ffi`).
//! Integer types are spelled as fixed-width Rust types (`LONG` is `i32` on
//! Windows) so host builds, where `c_long` is 64 bits, see the same layout.
#![allow(
    clippy::pub_underscore_fields,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    missing_docs,
    reason = "mirrors the C names that wdk-sys's bindgen output keeps"
)]

use core::ffi::{c_char, c_void};

pub type UCHAR = u8;
pub type BOOLEAN = UCHAR;
pub type CHAR = c_char;
pub type CCHAR = c_char;
pub type CSHORT = i16;
pub type USHORT = u16;
pub type ULONG = u32;
pub type LONG = i32;
pub type ULONG64 = u64;
pub type ULONG_PTR = u64;
pub type LONG_PTR = i64;
pub type SIZE_T = ULONG_PTR;
pub type PSIZE_T = *mut SIZE_T;
pub type LONGLONG = i64;
pub type NTSTATUS = LONG;
pub type POOL_FLAGS = ULONG64;
pub type KPROCESSOR_MODE = CCHAR;
pub type PVOID = *mut c_void;
pub type PCSTR = *const CHAR;
pub type WCHAR = u16;
pub type HANDLE = PVOID;
pub type ACCESS_MASK = ULONG;
/// `LOGICAL` (ntdef.h): a `ULONG` used as a boolean.
pub type LOGICAL = ULONG;

/// `enum _MODE` (wdm.h), bindgen `ModuleConsts` style.
pub mod _MODE {
    pub type Type = core::ffi::c_int;
    pub const KernelMode: Type = 0;
}
/// `enum _MEMORY_CACHING_TYPE` (wdm.h).
pub mod _MEMORY_CACHING_TYPE {
    pub type Type = core::ffi::c_int;
    pub const MmCached: Type = 1;
}
pub type MEMORY_CACHING_TYPE = _MEMORY_CACHING_TYPE::Type;
/// `enum _MM_PAGE_PRIORITY` (wdm.h).
pub mod _MM_PAGE_PRIORITY {
    pub type Type = core::ffi::c_int;
    pub const NormalPagePriority: Type = 16;
}
/// `enum _KEY_VALUE_INFORMATION_CLASS` (wdm.h).
pub mod _KEY_VALUE_INFORMATION_CLASS {
    pub type Type = core::ffi::c_int;
    pub const KeyValuePartialInformation: Type = 2;
}
pub type KEY_VALUE_INFORMATION_CLASS = _KEY_VALUE_INFORMATION_CLASS::Type;
/// `enum _DPFLTR_TYPE` (dpfilter.h).
pub mod _DPFLTR_TYPE {
    pub type Type = core::ffi::c_int;
    pub const DPFLTR_IHVDRIVER_ID: Type = 77;
}

pub const STATUS_SUCCESS: NTSTATUS = 0_i32;
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = -1_073_741_670_i32;
pub const STATUS_INTERNAL_ERROR: NTSTATUS = -1_073_741_595_i32;
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
pub const MdlMappingNoExecute: u32 = 0x4000_0000;
pub const MDL_MAPPED_TO_SYSTEM_VA: u32 = 0x0001;
pub const MDL_PAGES_LOCKED: u32 = 0x0002;
pub const MDL_SOURCE_IS_NONPAGED_POOL: u32 = 0x0004;
pub const MDL_PARTIAL: u32 = 0x0010;
pub const MDL_PARTIAL_HAS_BEEN_MAPPED: u32 = 0x0020;
pub const MM_ALLOCATE_FULLY_REQUIRED: u32 = 0x0000_0004;
pub const OBJ_CASE_INSENSITIVE: u32 = 0x0000_0040;
pub const OBJ_KERNEL_HANDLE: u32 = 0x0000_0200;
pub const REG_SZ: u32 = 1;
pub const DPFLTR_ERROR_LEVEL: u32 = 0;
pub const DPFLTR_WARNING_LEVEL: u32 = 1;
pub const DPFLTR_INFO_LEVEL: u32 = 3;
pub const MM_COPY_MEMORY_PHYSICAL: u32 = 0x1;

/// `union _LARGE_INTEGER` (winnt.h); only `QuadPart` of its members is
/// mirrored, the one the driver uses.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _LARGE_INTEGER {
    pub QuadPart: LONGLONG,
}
pub type LARGE_INTEGER = _LARGE_INTEGER;
pub type PHYSICAL_ADDRESS = LARGE_INTEGER;

/// `struct _MM_COPY_ADDRESS` (ntddk.h): bindgen names its anonymous union
/// `_MM_COPY_ADDRESS__bindgen_ty_1`.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _MM_COPY_ADDRESS {
    pub __bindgen_anon_1: _MM_COPY_ADDRESS__bindgen_ty_1,
}
#[repr(C)]
#[derive(Copy, Clone)]
pub union _MM_COPY_ADDRESS__bindgen_ty_1 {
    pub VirtualAddress: PVOID,
    pub PhysicalAddress: PHYSICAL_ADDRESS,
}
pub type MM_COPY_ADDRESS = _MM_COPY_ADDRESS;

/// Opaque kernel objects the driver only passes around as pointers.
#[repr(C)]
pub struct _EPROCESS {
    _opaque: [u8; 0],
}
pub type PEPROCESS = *mut _EPROCESS;
#[repr(C)]
pub struct _KPROCESS {
    _opaque: [u8; 0],
}
pub type PRKPROCESS = *mut _KPROCESS;
/// `struct _KAPC_STATE` (wdm.h): only its size matters to the driver, which
/// gives `KeStackAttachProcess` room to save the thread's APC state.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _KAPC_STATE {
    _opaque: [u64; 6],
}
pub type KAPC_STATE = _KAPC_STATE;
pub type PRKAPC_STATE = *mut _KAPC_STATE;
pub const REG_DWORD: u32 = 4;
pub const REG_MULTI_SZ: u32 = 7;
#[repr(C)]
pub struct _IRP {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct _DEVICE_OBJECT {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct _DRIVER_EXTENSION {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct _FAST_IO_DISPATCH {
    _opaque: [u8; 0],
}
pub type PIRP = *mut _IRP;

#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _UNICODE_STRING {
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: *mut WCHAR,
}
pub type UNICODE_STRING = _UNICODE_STRING;
pub type PUNICODE_STRING = *mut UNICODE_STRING;
pub type PCUNICODE_STRING = *const UNICODE_STRING;

/// `struct _OBJECT_ATTRIBUTES` (ntdef.h).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _OBJECT_ATTRIBUTES {
    pub Length: ULONG,
    pub RootDirectory: HANDLE,
    pub ObjectName: PUNICODE_STRING,
    pub Attributes: ULONG,
    pub SecurityDescriptor: PVOID,
    pub SecurityQualityOfService: PVOID,
}
pub type OBJECT_ATTRIBUTES = _OBJECT_ATTRIBUTES;

/// `struct _MDL` (wdm.h); the page frame numbers follow it in memory.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _MDL {
    pub Next: *mut Self,
    pub Size: CSHORT,
    pub MdlFlags: CSHORT,
    pub Process: *mut _EPROCESS,
    pub MappedSystemVa: PVOID,
    pub StartVa: PVOID,
    pub ByteCount: ULONG,
    pub ByteOffset: ULONG,
}
pub type MDL = _MDL;
pub type PMDL = *mut _MDL;

pub type PDRIVER_INITIALIZE =
    Option<unsafe extern "C" fn(*mut _DRIVER_OBJECT, PUNICODE_STRING) -> NTSTATUS>;
pub type PDRIVER_STARTIO = Option<unsafe extern "C" fn(*mut _DEVICE_OBJECT, *mut _IRP)>;
pub type PDRIVER_UNLOAD = Option<unsafe extern "C" fn(DriverObject: *mut _DRIVER_OBJECT)>;
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "C" fn(*mut _DEVICE_OBJECT, *mut _IRP) -> NTSTATUS>;

/// `struct _DRIVER_OBJECT` (wdm.h).
#[repr(C)]
pub struct _DRIVER_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: *mut _DEVICE_OBJECT,
    pub Flags: ULONG,
    pub DriverStart: PVOID,
    pub DriverSize: ULONG,
    pub DriverSection: PVOID,
    pub DriverExtension: *mut _DRIVER_EXTENSION,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: PUNICODE_STRING,
    pub FastIoDispatch: *mut _FAST_IO_DISPATCH,
    pub DriverInit: PDRIVER_INITIALIZE,
    pub DriverStartIo: PDRIVER_STARTIO,
    pub DriverUnload: PDRIVER_UNLOAD,
    /// `IRP_MJ_MAXIMUM_FUNCTION + 1` entries.
    pub MajorFunction: [PDRIVER_DISPATCH; 28],
}
pub type DRIVER_OBJECT = _DRIVER_OBJECT;

#[cfg(any(windows, clippy))]
#[cfg_attr(
    windows,
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "C" {
    pub fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
    pub fn ExFreePoolWithTag(P: PVOID, Tag: ULONG);
    pub fn IoAllocateMdl(
        VirtualAddress: PVOID,
        Length: ULONG,
        SecondaryBuffer: BOOLEAN,
        ChargeQuota: BOOLEAN,
        Irp: PIRP,
    ) -> PMDL;
    pub fn IoFreeMdl(Mdl: PMDL);
    pub fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL);
    pub fn MmMapLockedPagesSpecifyCache(
        MemoryDescriptorList: PMDL,
        AccessMode: KPROCESSOR_MODE,
        CacheType: MEMORY_CACHING_TYPE,
        RequestedAddress: PVOID,
        BugCheckOnFailure: ULONG,
        Priority: ULONG,
    ) -> PVOID;
    pub fn MmUnmapLockedPages(BaseAddress: PVOID, MemoryDescriptorList: PMDL);
    pub fn MmAllocatePagesForMdlEx(
        LowAddress: PHYSICAL_ADDRESS,
        HighAddress: PHYSICAL_ADDRESS,
        SkipBytes: PHYSICAL_ADDRESS,
        TotalBytes: SIZE_T,
        CacheType: MEMORY_CACHING_TYPE,
        Flags: ULONG,
    ) -> PMDL;
    pub fn MmFreePagesFromMdl(MemoryDescriptorList: PMDL);
    pub fn IoBuildPartialMdl(
        SourceMdl: PMDL,
        TargetMdl: PMDL,
        VirtualAddress: PVOID,
        Length: ULONG,
    );
    pub fn MmIsDriverVerifying(DriverObject: *mut _DRIVER_OBJECT) -> LOGICAL;
    pub fn ZwOpenKey(
        KeyHandle: *mut HANDLE,
        DesiredAccess: ACCESS_MASK,
        ObjectAttributes: *mut OBJECT_ATTRIBUTES,
    ) -> NTSTATUS;
    pub fn ZwQueryValueKey(
        KeyHandle: HANDLE,
        ValueName: PUNICODE_STRING,
        KeyValueInformationClass: KEY_VALUE_INFORMATION_CLASS,
        KeyValueInformation: PVOID,
        Length: ULONG,
        ResultLength: *mut ULONG,
    ) -> NTSTATUS;
    pub fn ZwClose(Handle: HANDLE) -> NTSTATUS;
    pub fn PsLookupProcessByProcessId(ProcessId: HANDLE, Process: *mut PEPROCESS) -> NTSTATUS;
    pub fn SeLocateProcessImageName(
        Process: PEPROCESS,
        pImageFileName: *mut PUNICODE_STRING,
    ) -> NTSTATUS;
    pub fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR;
    pub fn KeStackAttachProcess(PROCESS: PRKPROCESS, ApcState: PRKAPC_STATE);
    pub fn KeUnstackDetachProcess(ApcState: PRKAPC_STATE);
    pub fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: PCSTR, ...) -> ULONG;
    pub fn MmCopyMemory(
        TargetAddress: PVOID,
        SourceAddress: MM_COPY_ADDRESS,
        NumberOfBytes: SIZE_T,
        Flags: ULONG,
        NumberOfBytesTransferred: PSIZE_T,
    ) -> NTSTATUS;
    pub fn MmGetPhysicalAddress(BaseAddress: PVOID) -> PHYSICAL_ADDRESS;
    /// Only the standalone panic handler uses it (`wdk-panic` does the same).
    pub fn KeBugCheckEx(
        BugCheckCode: ULONG,
        BugCheckParameter1: ULONG_PTR,
        BugCheckParameter2: ULONG_PTR,
        BugCheckParameter3: ULONG_PTR,
        BugCheckParameter4: ULONG_PTR,
    ) -> !;
}
