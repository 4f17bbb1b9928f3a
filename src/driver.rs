//! The driver image: `DriverEntry`/`DriverUnload`, and the [`KernelApi`] that
//! calls the real ntoskrnl through [`crate::ffi`].

use core::ffi::CStr;

use crate::ffi::{
    _DPFLTR_TYPE, ACCESS_MASK, BOOLEAN, DRIVER_OBJECT, DbgPrintEx, ExAllocatePool2,
    ExFreePoolWithTag, HANDLE, IoAllocateMdl, IoBuildPartialMdl, IoFreeMdl,
    KEY_VALUE_INFORMATION_CLASS, KPROCESSOR_MODE, KeStackAttachProcess, KeUnstackDetachProcess,
    LOGICAL, MEMORY_CACHING_TYPE, MM_COPY_ADDRESS, MmAllocatePagesForMdlEx,
    MmBuildMdlForNonPagedPool, MmCopyMemory, MmFreePagesFromMdl, MmGetPhysicalAddress,
    MmHighestUserAddress, MmIsDriverVerifying, MmMapLockedPagesSpecifyCache, MmSystemRangeStart,
    MmUnmapLockedPages, NTSTATUS, OBJECT_ATTRIBUTES, ObfDereferenceObject, PCUNICODE_STRING,
    PEPROCESS, PHYSICAL_ADDRESS, PIRP, PMDL, POOL_FLAGS, PRKAPC_STATE, PRKPROCESS, PUNICODE_STRING,
    PVOID, PsLookupProcessByProcessId, SIZE_T, STATUS_SUCCESS, SeLocateProcessImageName, ULONG,
    ZwClose, ZwOpenKey, ZwQueryValueKey,
};
use crate::kernel::{
    Alias, DriverSlot, KernelApi, LogFormat, PagingRegisters, load, read_parameters, unload,
    walk_named,
};
use crate::walker::VirtAddr;

mod registers;

#[cfg(all(windows, feature = "wdk", not(test)))]
extern crate wdk_panic;

#[cfg(all(windows, feature = "wdk", not(test)))]
#[global_allocator]
static GLOBAL_ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;

#[allow(clippy::cast_sign_loss, reason = "DPFLTR_IHVDRIVER_ID is 77")]
const COMPONENT_ID: ULONG = _DPFLTR_TYPE::DPFLTR_IHVDRIVER_ID as ULONG;

/// The running kernel.
struct NtKernel;

static KERNEL: NtKernel = NtKernel;

/// The page and its two mappings, from `DriverEntry` to `DriverUnload`.
static LOADED: DriverSlot<Alias<'static, NtKernel>> = DriverSlot::new();

impl KernelApi for NtKernel {
    fn ex_allocate_pool2(&self, flags: POOL_FLAGS, number_of_bytes: SIZE_T, tag: ULONG) -> PVOID {
        // SAFETY: any arguments are allowed at IRQL <= DISPATCH_LEVEL; without
        // POOL_FLAG_RAISE_ON_FAILURE failure returns NULL.
        unsafe { ExAllocatePool2(flags, number_of_bytes, tag) }
    }

    unsafe fn ex_free_pool_with_tag(&self, p: PVOID, tag: ULONG) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { ExFreePoolWithTag(p, tag) };
    }

    unsafe fn io_allocate_mdl(
        &self,
        virtual_address: PVOID,
        length: ULONG,
        secondary_buffer: BOOLEAN,
        charge_quota: BOOLEAN,
        irp: PIRP,
    ) -> PMDL {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { IoAllocateMdl(virtual_address, length, secondary_buffer, charge_quota, irp) }
    }

    unsafe fn mm_build_mdl_for_non_paged_pool(&self, mdl: PMDL) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { MmBuildMdlForNonPagedPool(mdl) };
    }

    unsafe fn mm_map_locked_pages_specify_cache(
        &self,
        mdl: PMDL,
        access_mode: KPROCESSOR_MODE,
        cache_type: MEMORY_CACHING_TYPE,
        requested_address: PVOID,
        bug_check_on_failure: ULONG,
        priority: ULONG,
    ) -> PVOID {
        // SAFETY: the caller upholds the trait's contract.
        unsafe {
            MmMapLockedPagesSpecifyCache(
                mdl,
                access_mode,
                cache_type,
                requested_address,
                bug_check_on_failure,
                priority,
            )
        }
    }

    unsafe fn mm_unmap_locked_pages(&self, base_address: PVOID, mdl: PMDL) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { MmUnmapLockedPages(base_address, mdl) };
    }

    unsafe fn io_free_mdl(&self, mdl: PMDL) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { IoFreeMdl(mdl) };
    }

    fn mm_allocate_pages_for_mdl_ex(
        &self,
        low_address: PHYSICAL_ADDRESS,
        high_address: PHYSICAL_ADDRESS,
        skip_bytes: PHYSICAL_ADDRESS,
        total_bytes: SIZE_T,
        cache_type: MEMORY_CACHING_TYPE,
        flags: ULONG,
    ) -> PMDL {
        // SAFETY: any arguments are allowed at IRQL <= APC_LEVEL (DriverEntry
        // runs at PASSIVE_LEVEL); failure returns NULL.
        unsafe {
            MmAllocatePagesForMdlEx(
                low_address,
                high_address,
                skip_bytes,
                total_bytes,
                cache_type,
                flags,
            )
        }
    }

    unsafe fn mm_free_pages_from_mdl(&self, mdl: PMDL) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { MmFreePagesFromMdl(mdl) };
    }

    unsafe fn io_build_partial_mdl(
        &self,
        source: PMDL,
        target: PMDL,
        virtual_address: PVOID,
        length: ULONG,
    ) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { IoBuildPartialMdl(source, target, virtual_address, length) };
    }

    unsafe fn mm_is_driver_verifying(&self, driver: *mut DRIVER_OBJECT) -> LOGICAL {
        // SAFETY: the caller passes the driver's own object.
        unsafe { MmIsDriverVerifying(driver) }
    }

    unsafe fn zw_open_key(
        &self,
        key_handle: *mut HANDLE,
        desired_access: ACCESS_MASK,
        object_attributes: *mut OBJECT_ATTRIBUTES,
    ) -> NTSTATUS {
        // SAFETY: the caller upholds the trait's contract; PASSIVE_LEVEL.
        unsafe { ZwOpenKey(key_handle, desired_access, object_attributes) }
    }

    unsafe fn zw_query_value_key(
        &self,
        key_handle: HANDLE,
        value_name: PUNICODE_STRING,
        information_class: KEY_VALUE_INFORMATION_CLASS,
        information: PVOID,
        length: ULONG,
        result_length: *mut ULONG,
    ) -> NTSTATUS {
        // SAFETY: the caller upholds the trait's contract; PASSIVE_LEVEL.
        unsafe {
            ZwQueryValueKey(
                key_handle,
                value_name,
                information_class,
                information,
                length,
                result_length,
            )
        }
    }

    unsafe fn zw_close(&self, handle: HANDLE) -> NTSTATUS {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { ZwClose(handle) }
    }

    unsafe fn ps_lookup_process_by_process_id(
        &self,
        process_id: HANDLE,
        process: *mut PEPROCESS,
    ) -> NTSTATUS {
        // SAFETY: the caller upholds the trait's contract; PASSIVE_LEVEL.
        unsafe { PsLookupProcessByProcessId(process_id, process) }
    }

    unsafe fn se_locate_process_image_name(
        &self,
        process: PEPROCESS,
        image_file_name: *mut PUNICODE_STRING,
    ) -> NTSTATUS {
        // SAFETY: the caller upholds the trait's contract; PASSIVE_LEVEL.
        unsafe { SeLocateProcessImageName(process, image_file_name) }
    }

    unsafe fn ob_dereference_object(&self, object: PVOID) {
        // SAFETY: the caller upholds the trait's contract.
        let _ = unsafe { ObfDereferenceObject(object) };
    }

    unsafe fn ke_stack_attach_process(&self, process: PRKPROCESS, apc_state: PRKAPC_STATE) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { KeStackAttachProcess(process, apc_state) };
    }

    unsafe fn ke_unstack_detach_process(&self, apc_state: PRKAPC_STATE) {
        // SAFETY: the caller upholds the trait's contract.
        unsafe { KeUnstackDetachProcess(apc_state) };
    }

    fn dbg_print(&self, level: ULONG, format: &LogFormat, args: [u64; 2]) {
        let [first, second] = args;
        // SAFETY: LogFormat guarantees a NUL-terminated format with at most two
        // conversions, each taking one of the two 64-bit arguments.
        unsafe {
            DbgPrintEx(
                COMPONENT_ID,
                level,
                format.as_cstr().as_ptr(),
                first,
                second,
            )
        };
    }

    fn dbg_print_line(&self, level: ULONG, line: &CStr) {
        // SAFETY: "%s" takes one argument, a NUL-terminated string: `line`.
        unsafe { DbgPrintEx(COMPONENT_ID, level, c"%s".as_ptr(), line.as_ptr()) };
    }

    unsafe fn mm_copy_memory(
        &self,
        target_address: PVOID,
        source_address: MM_COPY_ADDRESS,
        number_of_bytes: SIZE_T,
        flags: ULONG,
        number_of_bytes_transferred: *mut SIZE_T,
    ) -> NTSTATUS {
        // SAFETY: the caller upholds the trait's contract; DriverEntry runs at
        // PASSIVE_LEVEL, below the APC_LEVEL limit of MmCopyMemory.
        unsafe {
            MmCopyMemory(
                target_address,
                source_address,
                number_of_bytes,
                flags,
                number_of_bytes_transferred,
            )
        }
    }

    unsafe fn mm_get_physical_address(&self, base_address: PVOID) -> PHYSICAL_ADDRESS {
        // SAFETY: the caller passes a valid nonpaged address.
        unsafe { MmGetPhysicalAddress(base_address) }
    }

    fn mm_highest_user_address(&self) -> PVOID {
        // SAFETY: an ntoskrnl variable, set during boot and only read afterwards.
        unsafe { MmHighestUserAddress }
    }

    fn mm_system_range_start(&self) -> PVOID {
        // SAFETY: as above.
        unsafe { MmSystemRangeStart }
    }

    fn paging_registers(&self) -> PagingRegisters {
        registers::read()
    }
}

/// The driver's entry point: sets up the mapping, or undoes everything and
/// returns why it could not.
///
/// # Safety
/// Called once by the I/O manager at `PASSIVE_LEVEL` with a valid driver object.
// SAFETY: no other item in the image is named DriverEntry.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: both are what the I/O manager passed to DriverEntry.
    let parameters = unsafe { read_parameters(&KERNEL, registry_path, &raw mut *driver) };
    let code = VirtAddr((driver_entry as *const ()).addr() as u64);
    match load(&KERNEL, parameters.method, code) {
        Ok(alias) => {
            walk_named(&KERNEL, &parameters.named);
            // SAFETY: DriverUnload, the only other user, cannot run before
            // DriverEntry returns.
            let previous = unsafe { LOADED.replace(Some(alias)) };
            debug_assert!(previous.is_none(), "DriverEntry runs once");
            driver.DriverUnload = Some(driver_unload);
            STATUS_SUCCESS
        }
        // DriverUnload stays unset: the I/O manager does not call it after a
        // failed DriverEntry, and there is nothing left to release.
        Err(error) => error.into(),
    }
}

/// Releases what `driver_entry` kept, in the reverse order of its making.
unsafe extern "C" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    // SAFETY: the I/O manager calls DriverUnload once, after DriverEntry
    // returned, never concurrently with it.
    if let Some(alias) = unsafe { LOADED.replace(None) } {
        unload(alias);
    }
}

#[cfg(all(windows, not(feature = "wdk"), not(test)))]
mod standalone_runtime {
    use crate::ffi::KeBugCheckEx;

    /// Bugcheck code "VMWK": a panic is a driver bug; stop the machine with a
    /// recognizable code rather than run on in an unknown state.
    const PANIC_BUGCHECK: u32 = u32::from_be_bytes(*b"VMWK");

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
        // SAFETY: KeBugCheckEx may be called at any IRQL and never returns.
        unsafe { KeBugCheckEx(PANIC_BUGCHECK, 0, 0, 0, 0) }
    }

    // The MSVC target references `_fltused` when floating point is compiled
    // in; the CRT that would define it is not linked. A symbol from assembly
    // is not exported (a `#[no_mangle]` static would be).
    core::arch::global_asm!(".globl _fltused", ".set _fltused, 0x9875");
}
