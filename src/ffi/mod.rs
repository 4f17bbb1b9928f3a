//! Every ntoskrnl name the driver uses, from one of two backends that present
//! the same names and types, so the rest of the driver is identical in both
//! builds:
//!
//! - `wdk` (Windows target with the `wdk` feature): re-exports from `wdk-sys`,
//!   whose bindings bindgen generates from the WDK headers.
//! - `standalone` (every other build): the same items declared by hand,
//!   mirroring what `wdk-sys`'s bindgen configuration generates; functions are
//!   `raw-dylib` imports from `ntoskrnl.exe` and exist only for Windows targets.
//!
//! How the names and types were checked (`wdk-sys` 0.5.2, `wdk-build` 0.6.0):
//! - Naming and shapes: `wdk-build/src/bindgen.rs` sets
//!   `default_enum_style(EnumVariation::ModuleConsts)`, so a C enum `_MODE` is
//!   `pub mod _MODE { pub type Type = c_int; pub const KernelMode: Type = 0; }`
//!   and `#define`d integers are `u32` constants; types and constants are at the
//!   crate root (`wdk-sys/src/lib.rs`: `pub use crate::{constants::*, types::*}`),
//!   functions in `wdk_sys::ntddk` (`wdk-sys/build.rs` `generate_base`).
//! - `POOL_FLAG_NON_PAGED: POOL_FLAGS` and the `STATUS_*` values are written out
//!   by hand in `wdk-sys/src/constants.rs` (read there).
//! - Function signatures: the Microsoft WDK reference pages (wdm.h) for
//!   `ExAllocatePool2`, `ExFreePoolWithTag`, `IoAllocateMdl`, `IoFreeMdl`,
//!   `MmBuildMdlForNonPagedPool`, `MmMapLockedPagesSpecifyCache` (`Priority` is a
//!   `ULONG` so `MdlMappingNoExecute` can be OR-ed in), `MmUnmapLockedPages` and
//!   `DbgPrintEx` (`NTSYSAPI ULONG`, `__cdecl`, variadic).
//! - Enum values and `#define`s (`KernelMode` 0, `MmCached` 1,
//!   `NormalPagePriority` 16, `MdlMappingNoExecute` `0x4000_0000`,
//!   `MDL_SOURCE_IS_NONPAGED_POOL` 4, `DPFLTR_IHVDRIVER_ID` 77,
//!   `DPFLTR_ERROR_LEVEL` 0, `DPFLTR_INFO_LEVEL` 3): several public copies of
//!   wdm.h / dpfilter.h, and public Rust code that calls these functions through
//!   `wdk-sys` with exactly these paths (`_MODE::KernelMode as i8`,
//!   `_MM_PAGE_PRIORITY::HighPagePriority as u32 | MdlMappingNoExecute`).
//! - Struct layouts (`MDL` 0x30 bytes, `DRIVER_OBJECT` with `DriverUnload` at
//!   0x68): the wdm.h definitions.
//! - `MmAllocatePagesForMdlEx`, `MmFreePagesFromMdl`, `IoBuildPartialMdl`,
//!   `ZwOpenKey`, `ZwQueryValueKey`, `ZwClose` (wdm.h) and
//!   `MmIsDriverVerifying` (ntddk.h, returning `LOGICAL`, a `ULONG`): their
//!   WDK reference pages; `OBJECT_ATTRIBUTES` (0x30 bytes, `ObjectName` at
//!   0x10, `Attributes` at 0x18) from ntdef.h; `MDL_*` flags and
//!   `MM_ALLOCATE_FULLY_REQUIRED` (4) from wdm.h.
//! - `PsLookupProcessByProcessId` (ntddk.h), `ObfDereferenceObject` (wdm.h,
//!   what the `ObDereferenceObject` macro calls), `KeStackAttachProcess` and
//!   `KeUnstackDetachProcess` (ntddk.h): their WDK reference pages;
//!   `KAPC_STATE` is 0x30 bytes on x64 (wdm.h), asserted below.
//! - `MmCopyMemory` (ntddk.h) and `MmGetPhysicalAddress` (wdm.h): their WDK
//!   reference pages; `MM_COPY_ADDRESS` is a struct around an anonymous union
//!   (`ns-ntddk-_mm_copy_address`), which bindgen names
//!   `_MM_COPY_ADDRESS__bindgen_ty_1`, and `PHYSICAL_ADDRESS` is the
//!   `LARGE_INTEGER` union (`QuadPart`): public driver code imports exactly
//!   `wdk_sys::{_MM_COPY_ADDRESS__bindgen_ty_1, MM_COPY_ADDRESS,
//!   MM_COPY_MEMORY_PHYSICAL, PHYSICAL_ADDRESS, ntddk::MmCopyMemory}` and
//!   builds `PHYSICAL_ADDRESS { QuadPart: .. }`. `MM_COPY_MEMORY_PHYSICAL` is 1.
//! - `MmHighestUserAddress` and `MmSystemRangeStart` are exported *variables*.
//!   wdk-sys declares them in a plain `extern "C"` block, so a reference is to
//!   `MmHighestUserAddress` itself, which an import library provides only for
//!   functions (a thunk): linked against `ntoskrnl.lib` that lists them as DATA,
//!   it is an undefined symbol (measured with lld-link, see below). So both
//!   builds declare them in this module, as `raw-dylib` imports: the compiler
//!   then reads them through the import table (`mov rcx, [__imp_X]`,
//!   `mov rax, [rcx]`).
//!
//! Every number above is asserted below against whichever backend is built:
//! in the WDK build the values come from the installed kit, so a hand-written
//! mirror that drifted from the WDK stops that build. On Linux,
//! `scripts/check-wdk-bindings.sh` builds the `wdk` backend against the bindgen
//! output wdk-sys 0.2.0 ships (WDK 10.0.22621): every name here resolves there
//! with these types, the assertions hold, and the linked image reads both
//! variables through its import table.

#[cfg(all(windows, feature = "wdk"))]
mod wdk;
#[cfg(all(windows, feature = "wdk"))]
pub use wdk::*;

#[cfg(not(all(windows, feature = "wdk")))]
mod standalone;
#[cfg(not(all(windows, feature = "wdk")))]
pub use standalone::*;

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(_MODE::KernelMode == 0);
    assert!(_MEMORY_CACHING_TYPE::MmCached == 1);
    assert!(_MM_PAGE_PRIORITY::NormalPagePriority == 16);
    assert!(MdlMappingNoExecute == 0x4000_0000);
    assert!(MDL_MAPPED_TO_SYSTEM_VA == 0x1 && MDL_PAGES_LOCKED == 0x2);
    assert!(MDL_SOURCE_IS_NONPAGED_POOL == 0x4);
    assert!(MDL_PARTIAL == 0x10 && MDL_PARTIAL_HAS_BEEN_MAPPED == 0x20);
    assert!(MM_ALLOCATE_FULLY_REQUIRED == 0x4);
    assert!(OBJ_CASE_INSENSITIVE == 0x40 && OBJ_KERNEL_HANDLE == 0x200);
    assert!(REG_SZ == 1 && REG_DWORD == 4 && REG_MULTI_SZ == 7);
    assert!(size_of::<KAPC_STATE>() == 0x30);
    assert!(_KEY_VALUE_INFORMATION_CLASS::KeyValuePartialInformation == 2);
    assert!(size_of::<OBJECT_ATTRIBUTES>() == 0x30);
    assert!(offset_of!(OBJECT_ATTRIBUTES, ObjectName) == 0x10);
    assert!(offset_of!(OBJECT_ATTRIBUTES, Attributes) == 0x18);
    assert!(_DPFLTR_TYPE::DPFLTR_IHVDRIVER_ID == 77);
    assert!(DPFLTR_ERROR_LEVEL == 0 && DPFLTR_WARNING_LEVEL == 1 && DPFLTR_INFO_LEVEL == 3);
    assert!(POOL_FLAG_NON_PAGED == 0x40);
    assert!(STATUS_SUCCESS == 0);
    assert!(STATUS_INSUFFICIENT_RESOURCES.cast_unsigned() == 0xC000_009A);
    assert!(STATUS_INTERNAL_ERROR.cast_unsigned() == 0xC000_00E5);
    assert!(size_of::<MDL>() == 0x30);
    assert!(offset_of!(MDL, MdlFlags) == 0x0a);
    assert!(offset_of!(MDL, MappedSystemVa) == 0x18);
    assert!(offset_of!(MDL, ByteCount) == 0x28);
    assert!(offset_of!(DRIVER_OBJECT, DriverUnload) == 0x68);
    assert!(MM_COPY_MEMORY_PHYSICAL == 1);
    assert!(size_of::<MM_COPY_ADDRESS>() == 8 && size_of::<PHYSICAL_ADDRESS>() == 8);
};

// The address-space split `MM_HIGHEST_USER_ADDRESS` and `MM_SYSTEM_RANGE_START` name.
// Read through a `raw-dylib` import; with the feature `ntoskrnl-lib-data`, through
// the WDK's ntoskrnl.lib instead (the fallback if MSVC's linker objects to the
// raw-dylib data import next to that library: `cargo make --features ...` or one
// line in Cargo.toml's `default`).
#[cfg(any(windows, clippy))]
#[cfg_attr(
    all(windows, not(feature = "ntoskrnl-lib-data")),
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
#[cfg_attr(all(windows, feature = "ntoskrnl-lib-data"), link(name = "ntoskrnl"))]
unsafe extern "C" {
    /// The highest address user mode can use.
    pub static MmHighestUserAddress: PVOID;
    /// The lowest address of system space.
    pub static MmSystemRangeStart: PVOID;
}
