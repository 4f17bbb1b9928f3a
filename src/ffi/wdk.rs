//! The WDK backend: the items come from `wdk-sys`'s generated bindings.

pub use wdk_sys::ntddk::{
    DbgPrintEx, ExAllocatePool2, ExFreePoolWithTag, IoAllocateMdl, IoFreeMdl,
    MmBuildMdlForNonPagedPool, MmCopyMemory, MmGetPhysicalAddress, MmMapLockedPagesSpecifyCache,
    MmUnmapLockedPages,
};
pub use wdk_sys::{
    _DPFLTR_TYPE, _MEMORY_CACHING_TYPE, _MM_COPY_ADDRESS__bindgen_ty_1, _MM_PAGE_PRIORITY, _MODE,
    BOOLEAN, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, DRIVER_OBJECT, KPROCESSOR_MODE, MDL,
    MDL_SOURCE_IS_NONPAGED_POOL, MEMORY_CACHING_TYPE, MM_COPY_ADDRESS, MM_COPY_MEMORY_PHYSICAL,
    MdlMappingNoExecute, NTSTATUS, PCUNICODE_STRING, PHYSICAL_ADDRESS, PIRP, PMDL,
    POOL_FLAG_NON_PAGED, POOL_FLAGS, PVOID, SIZE_T, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INTERNAL_ERROR, STATUS_SUCCESS, ULONG,
};
