//! The driver's kernel side, generic over [`KernelApi`] so host tests can run
//! it against a fake kernel: the safe ownership wrappers, the error type and
//! the `DriverEntry`/`DriverUnload` lifecycle.

mod error;
mod inspect;
mod lifecycle;
mod line;
mod log;
mod memory;
mod physical;

pub use error::DriverError;
pub use inspect::inspect;
pub use lifecycle::{DriverSlot, POOL_TAG, load, unload};
pub use line::Line;
pub use log::LogFormat;
pub use memory::{Mapping, Mdl, PAGE_SIZE, PoolBuffer};
pub use physical::{CopyFailed, KernelMemory};

use core::ffi::CStr;

use crate::ffi::{
    BOOLEAN, KPROCESSOR_MODE, MEMORY_CACHING_TYPE, MM_COPY_ADDRESS, NTSTATUS, PHYSICAL_ADDRESS,
    PIRP, PMDL, POOL_FLAGS, PVOID, SIZE_T, ULONG,
};

/// What the walker needs from the CPU: control registers, EFER and CPUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingRegisters {
    /// CR3: the top-level table and PCID.
    pub cr3: u64,
    /// CR4: LA57 selects 5-level paging.
    pub cr4: u64,
    /// `IA32_EFER` (MSR `0xC000_0080`): NXE enables XD.
    pub efer: u64,
    /// MAXPHYADDR, CPUID `0x8000_0008` EAX\[7:0\].
    pub max_phys_bits: u32,
    /// 1 GiB pages, CPUID `0x8000_0001` EDX\[26\].
    pub gigabyte_pages: bool,
}

/// The ntoskrnl calls the driver makes, one method per function with the same
/// parameters, so a fake kernel can check every argument the real one gets.
pub trait KernelApi {
    /// `ExAllocatePool2`: NULL on failure.
    fn ex_allocate_pool2(&self, flags: POOL_FLAGS, number_of_bytes: SIZE_T, tag: ULONG) -> PVOID;

    /// `ExFreePoolWithTag`.
    ///
    /// # Safety
    /// `p` was returned by [`Self::ex_allocate_pool2`] with `tag`, is not freed
    /// yet, and no MDL describes it any more.
    unsafe fn ex_free_pool_with_tag(&self, p: PVOID, tag: ULONG);

    /// `IoAllocateMdl`: NULL on failure.
    ///
    /// # Safety
    /// `virtual_address..+length` is a live nonpaged allocation that outlives the MDL.
    unsafe fn io_allocate_mdl(
        &self,
        virtual_address: PVOID,
        length: ULONG,
        secondary_buffer: BOOLEAN,
        charge_quota: BOOLEAN,
        irp: PIRP,
    ) -> PMDL;

    /// `MmBuildMdlForNonPagedPool`.
    ///
    /// # Safety
    /// `mdl` is live and describes live nonpaged pool.
    unsafe fn mm_build_mdl_for_non_paged_pool(&self, mdl: PMDL);

    /// `MmMapLockedPagesSpecifyCache`: NULL on failure when
    /// `bug_check_on_failure` is FALSE.
    ///
    /// # Safety
    /// `mdl` is live and describes locked pages.
    unsafe fn mm_map_locked_pages_specify_cache(
        &self,
        mdl: PMDL,
        access_mode: KPROCESSOR_MODE,
        cache_type: MEMORY_CACHING_TYPE,
        requested_address: PVOID,
        bug_check_on_failure: ULONG,
        priority: ULONG,
    ) -> PVOID;

    /// `MmUnmapLockedPages`.
    ///
    /// # Safety
    /// `base_address` was returned by mapping `mdl` and is not unmapped yet.
    unsafe fn mm_unmap_locked_pages(&self, base_address: PVOID, mdl: PMDL);

    /// `IoFreeMdl`.
    ///
    /// # Safety
    /// `mdl` is live and no mapping of it remains.
    unsafe fn io_free_mdl(&self, mdl: PMDL);

    /// `DbgPrintEx(DPFLTR_IHVDRIVER_ID, level, format, args[0], args[1])`.
    fn dbg_print(&self, level: ULONG, format: &LogFormat, args: [u64; 2]);

    /// `DbgPrintEx(DPFLTR_IHVDRIVER_ID, level, "%s", line)`: a line formatted
    /// by the driver itself.
    fn dbg_print_line(&self, level: ULONG, line: &CStr);

    /// `MmCopyMemory`.
    ///
    /// # Safety
    /// `target_address` is writable for `number_of_bytes` bytes and
    /// `number_of_bytes_transferred` for one `SIZE_T`.
    unsafe fn mm_copy_memory(
        &self,
        target_address: PVOID,
        source_address: MM_COPY_ADDRESS,
        number_of_bytes: SIZE_T,
        flags: ULONG,
        number_of_bytes_transferred: *mut SIZE_T,
    ) -> NTSTATUS;

    /// `MmGetPhysicalAddress`.
    ///
    /// # Safety
    /// `base_address` is a valid nonpaged (or locked) address.
    unsafe fn mm_get_physical_address(&self, base_address: PVOID) -> PHYSICAL_ADDRESS;

    /// `MmHighestUserAddress`.
    fn mm_highest_user_address(&self) -> PVOID;

    /// `MmSystemRangeStart`.
    fn mm_system_range_start(&self) -> PVOID;

    /// CR3, CR4, EFER and the CPUID paging facts of the current processor.
    fn paging_registers(&self) -> PagingRegisters;
}
