//! What the driver asks of the kernel: the [`KernelApi`] trait that the real
//! ntoskrnl and the test's fake kernel implement, and the paging registers
//! it reports.

use core::ffi::CStr;

use super::log::LogFormat;

use crate::ffi::{
    ACCESS_MASK, BOOLEAN, DRIVER_OBJECT, HANDLE, KEY_VALUE_INFORMATION_CLASS, KPROCESSOR_MODE,
    LOGICAL, MEMORY_CACHING_TYPE, MM_COPY_ADDRESS, NTSTATUS, OBJECT_ATTRIBUTES, PEPROCESS,
    PHYSICAL_ADDRESS, PIRP, PMDL, POOL_FLAGS, PRKAPC_STATE, PRKPROCESS, PUNICODE_STRING, PVOID,
    SIZE_T, ULONG,
};

/// What the walker needs from the CPU, on the architecture the driver runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingRegisters {
    /// An x64 processor.
    X64(X64Registers),
    /// An ARM64 processor.
    Arm64(Arm64Registers),
}

/// x64: control registers, EFER and CPUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X64Registers {
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

/// ARM64: the EL1&0 translation registers, read with `mrs` at EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm64Registers {
    /// `TTBR0_EL1`: the lower range's table (and an ASID in bits 63:48).
    pub ttbr0: u64,
    /// `TTBR1_EL1`: the upper range's table.
    pub ttbr1: u64,
    /// `TCR_EL1`: range sizes, granules, output size, top-byte-ignore.
    pub tcr: u64,
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

    /// `MmAllocatePagesForMdlEx`: an MDL of locked, unmapped pages, or NULL.
    fn mm_allocate_pages_for_mdl_ex(
        &self,
        low_address: PHYSICAL_ADDRESS,
        high_address: PHYSICAL_ADDRESS,
        skip_bytes: PHYSICAL_ADDRESS,
        total_bytes: SIZE_T,
        cache_type: MEMORY_CACHING_TYPE,
        flags: ULONG,
    ) -> PMDL;

    /// `MmFreePagesFromMdl`: frees the pages, not the MDL itself.
    ///
    /// # Safety
    /// `mdl` came from [`Self::mm_allocate_pages_for_mdl_ex`], its pages are
    /// not freed yet, and no mapping or partial MDL of them remains.
    unsafe fn mm_free_pages_from_mdl(&self, mdl: PMDL);

    /// `IoBuildPartialMdl`.
    ///
    /// # Safety
    /// Both MDLs are live; `target` was allocated for at least `length` bytes
    /// at `virtual_address`, which lies inside what `source` describes.
    unsafe fn io_build_partial_mdl(
        &self,
        source: PMDL,
        target: PMDL,
        virtual_address: PVOID,
        length: ULONG,
    );

    /// `MmIsDriverVerifying`: nonzero when Driver Verifier checks this driver.
    ///
    /// # Safety
    /// `driver` is the driver object `DriverEntry` received.
    unsafe fn mm_is_driver_verifying(&self, driver: *mut DRIVER_OBJECT) -> LOGICAL;

    /// `ZwOpenKey`.
    ///
    /// # Safety
    /// `key_handle` is writable; `object_attributes` and the name it points to
    /// are valid for the call.
    unsafe fn zw_open_key(
        &self,
        key_handle: *mut HANDLE,
        desired_access: ACCESS_MASK,
        object_attributes: *mut OBJECT_ATTRIBUTES,
    ) -> NTSTATUS;

    /// `ZwQueryValueKey`.
    ///
    /// # Safety
    /// `key_handle` is open; `information` is writable for `length` bytes and
    /// `result_length` for one `ULONG`.
    unsafe fn zw_query_value_key(
        &self,
        key_handle: HANDLE,
        value_name: PUNICODE_STRING,
        information_class: KEY_VALUE_INFORMATION_CLASS,
        information: PVOID,
        length: ULONG,
        result_length: *mut ULONG,
    ) -> NTSTATUS;

    /// `ZwClose`.
    ///
    /// # Safety
    /// `handle` is open and closed only here.
    unsafe fn zw_close(&self, handle: HANDLE) -> NTSTATUS;

    /// `PsLookupProcessByProcessId`: on success `*process` holds a reference.
    ///
    /// # Safety
    /// `process` is writable.
    unsafe fn ps_lookup_process_by_process_id(
        &self,
        process_id: HANDLE,
        process: *mut PEPROCESS,
    ) -> NTSTATUS;

    /// `SeLocateProcessImageName`: on success `*image_file_name` is pool the
    /// caller frees with `ExFreePool` (`ExFreePoolWithTag(p, 0)`).
    ///
    /// # Safety
    /// `process` is referenced; `image_file_name` is writable.
    unsafe fn se_locate_process_image_name(
        &self,
        process: PEPROCESS,
        image_file_name: *mut PUNICODE_STRING,
    ) -> NTSTATUS;

    /// `ObDereferenceObject` (the `ObfDereferenceObject` export).
    ///
    /// # Safety
    /// `object` holds a reference this caller took, released only here.
    unsafe fn ob_dereference_object(&self, object: PVOID);

    /// `KeStackAttachProcess`.
    ///
    /// # Safety
    /// `process` is referenced until the matching detach; `apc_state` is
    /// writable and stays in place until then.
    unsafe fn ke_stack_attach_process(&self, process: PRKPROCESS, apc_state: PRKAPC_STATE);

    /// `KeUnstackDetachProcess`.
    ///
    /// # Safety
    /// `apc_state` is what the matching, most recent attach filled in.
    unsafe fn ke_unstack_detach_process(&self, apc_state: PRKAPC_STATE);

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

    /// The paging registers of the current processor.
    fn paging_registers(&self) -> PagingRegisters;
}
