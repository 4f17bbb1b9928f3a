//! `DriverEntry` and `DriverUnload` against the fake kernel, and the fake
//! kernel's own rules.
// The fake kernel maps pages with memfd_create, which only Linux has.
#![cfg(target_os = "linux")]

mod driver_fake;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::null_mut;

use driver_fake::FakeKernel;
use vmwalk::ffi::{
    DPFLTR_ERROR_LEVEL, NTSTATUS, POOL_FLAG_NON_PAGED, PVOID, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INTERNAL_ERROR,
};
use vmwalk::kernel::{
    DriverError, DriverSlot, KernelApi, LogFormat, Mdl, PAGE_SIZE, POOL_TAG, PoolBuffer, load,
    unload,
};

fn panic_message(run: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(run)).expect_err("the fake kernel must panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn load_then_unload_logs_every_step_in_order_and_leaks_nothing() {
    let kernel = FakeKernel::new();
    let mapping = load(&kernel).expect("every call succeeds");
    let pool = mapping.mdl().buffer().base().as_ptr() as usize;
    let mdl = mapping.mdl().as_ptr().as_ptr() as usize;
    let mapped = mapping.base().as_ptr() as usize;
    assert_ne!(pool, mapped, "the mapping is a second address");
    assert_eq!(
        kernel.calls(),
        [
            "ExAllocatePool2",
            "IoAllocateMdl",
            "MmBuildMdlForNonPagedPool",
            "MmMapLockedPagesSpecifyCache"
        ]
    );
    unload(mapping);
    assert_eq!(
        kernel.calls()[4..],
        ["MmUnmapLockedPages", "IoFreeMdl", "ExFreePoolWithTag"],
        "teardown is the reverse of setup"
    );
    kernel.assert_nothing_leaked();
    let lines = kernel.lines();
    let expected = [
        format!("vmwalk: ExAllocatePool2(NonPagedNx, 4 KiB) -> pool buffer {pool:016X}\n"),
        format!("vmwalk: IoAllocateMdl -> MDL {mdl:016X}\n"),
        format!("vmwalk: MmBuildMdlForNonPagedPool: MDL {mdl:016X} MdlFlags 0x0000000C\n"),
        format!(
            "vmwalk: MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NX) -> mapping {mapped:016X} of MDL {mdl:016X}\n"
        ),
        format!(
            "vmwalk: alias check passed: pattern written at pool {pool:016X} reads back at mapping {mapped:016X}\n"
        ),
        format!(
            "vmwalk: DriverEntry succeeded; pool {pool:016X} and its mapping {mapped:016X} stay until unload\n"
        ),
        format!("vmwalk: DriverUnload: tearing down mapping {mapped:016X}\n"),
        format!("vmwalk: MmUnmapLockedPages unmapped {mapped:016X}\n"),
        format!("vmwalk: IoFreeMdl freed MDL {mdl:016X}\n"),
        format!("vmwalk: ExFreePoolWithTag freed pool buffer {pool:016X}\n"),
        "vmwalk: DriverUnload done\n".to_owned(),
    ];
    assert_eq!(lines, expected);
    assert!(
        kernel.lines_at(DPFLTR_ERROR_LEVEL).is_empty(),
        "success logs no errors"
    );
}

#[test]
fn the_mapping_reaches_the_same_memory_as_the_pool_address() {
    let kernel = FakeKernel::new();
    let mapping = load(&kernel).expect("loads");
    let pool = mapping.mdl().buffer().base().as_ptr();
    let mapped = mapping.base().as_ptr();
    // SAFETY: both addresses are live for PAGE_SIZE bytes while `mapping` is.
    unsafe { mapped.wrapping_add(PAGE_SIZE - 1).write_volatile(0xA5) };
    // SAFETY: as above.
    let read = unsafe { pool.wrapping_add(PAGE_SIZE - 1).read_volatile() };
    assert_eq!(
        read, 0xA5,
        "a write through the mapping shows at the pool address"
    );
    unload(mapping);
    kernel.assert_nothing_leaked();
}

#[test]
fn errors_become_the_statuses_sc_start_reports() {
    let cases: [(DriverError, NTSTATUS, u32); 5] = [
        (
            DriverError::PoolAllocation,
            STATUS_INSUFFICIENT_RESOURCES,
            0xC000_009A,
        ),
        (
            DriverError::MdlAllocation,
            STATUS_INSUFFICIENT_RESOURCES,
            0xC000_009A,
        ),
        (DriverError::MdlNotBuilt, STATUS_INTERNAL_ERROR, 0xC000_00E5),
        (
            DriverError::Mapping,
            STATUS_INSUFFICIENT_RESOURCES,
            0xC000_009A,
        ),
        (DriverError::NotAliased, STATUS_INTERNAL_ERROR, 0xC000_00E5),
    ];
    for (error, status, bits) in cases {
        let converted = NTSTATUS::from(error);
        assert_eq!(converted, status, "{error}");
        assert_eq!(converted.cast_unsigned(), bits, "{error}");
    }
}

#[test]
fn the_pool_tag_reads_vmwk_in_the_debugger() {
    assert_eq!(POOL_TAG.to_le_bytes(), *b"vmwk");
}

#[test]
fn the_driver_slot_hands_back_what_it_holds() {
    let slot = DriverSlot::new();
    // SAFETY: this test is the only user of the slot.
    assert_eq!(unsafe { slot.replace(Some(7)) }, None);
    // SAFETY: as above.
    assert_eq!(unsafe { slot.replace(None) }, Some(7));
}

#[test]
fn log_formats_are_checked() {
    let good = LogFormat::new(c"vmwalk: a %p b 0x%08X\n");
    assert_eq!(good.as_cstr(), c"vmwalk: a %p b 0x%08X\n");
    for bad in [
        c"no prefix %p\n",
        c"vmwalk: no newline",
        c"vmwalk: %s is not allowed\n",
        c"vmwalk: %p %p %p too many\n",
    ] {
        let message = panic_message(|| {
            let _ = LogFormat::new(bad);
        });
        assert!(!message.is_empty(), "{bad:?} must be rejected");
    }
}

#[test]
fn the_fake_kernel_reports_leaks() {
    let kernel = FakeKernel::new();
    let buffer = PoolBuffer::allocate(&kernel, PAGE_SIZE, POOL_TAG).expect("allocates");
    std::mem::forget(buffer);
    let message = panic_message(|| kernel.assert_nothing_leaked());
    assert!(message.contains("leak: 1 pool allocations"), "{message}");
}

#[test]
fn the_fake_kernel_rejects_double_free_and_wrong_tag() {
    let kernel = FakeKernel::new();
    let p = kernel.ex_allocate_pool2(POOL_FLAG_NON_PAGED, 64, POOL_TAG);
    let message = panic_message(|| {
        // SAFETY: deliberately wrong: the fake must refuse before touching memory.
        unsafe { kernel.ex_free_pool_with_tag(p, u32::from_le_bytes(*b"nope")) };
    });
    assert!(message.contains("pool tag mismatch"), "{message}");
    // SAFETY: a live allocation with its tag.
    unsafe { kernel.ex_free_pool_with_tag(p, POOL_TAG) };
    let message = panic_message(|| {
        // SAFETY: deliberately a double free; the fake refuses it.
        unsafe { kernel.ex_free_pool_with_tag(p, POOL_TAG) };
    });
    assert!(message.contains("double free"), "{message}");
}

#[test]
fn the_fake_kernel_rejects_executable_pool() {
    let kernel = FakeKernel::new();
    let message = panic_message(|| {
        kernel.ex_allocate_pool2(0x80, 64, POOL_TAG);
    });
    assert!(message.contains("nonpaged NX"), "{message}");
}

#[test]
fn the_fake_kernel_rejects_wrong_teardown_order_and_use_after_free() {
    let kernel = FakeKernel::new();
    let p: PVOID = kernel.ex_allocate_pool2(POOL_FLAG_NON_PAGED, 4096, POOL_TAG);
    // SAFETY: `p` is live pool of 4096 bytes.
    let mdl = unsafe { kernel.io_allocate_mdl(p, 4096, 0, 0, null_mut()) };
    let message = panic_message(|| {
        // SAFETY: deliberately frees pool an MDL still describes; the fake refuses.
        unsafe { kernel.ex_free_pool_with_tag(p, POOL_TAG) };
    });
    assert!(
        message.contains("while an MDL still describes it"),
        "{message}"
    );
    // SAFETY: `mdl` describes live pool.
    unsafe { kernel.mm_build_mdl_for_non_paged_pool(mdl) };
    // SAFETY: the MDL is built; the arguments are the driver's.
    let mapped =
        unsafe { kernel.mm_map_locked_pages_specify_cache(mdl, 0, 1, null_mut(), 0, 0x4000_0010) };
    let message = panic_message(|| {
        // SAFETY: deliberately frees a mapped MDL; the fake refuses.
        unsafe { kernel.io_free_mdl(mdl) };
    });
    assert!(message.contains("still mapped"), "{message}");
    // SAFETY: in order now.
    unsafe { kernel.mm_unmap_locked_pages(mapped, mdl) };
    let message = panic_message(|| {
        // SAFETY: deliberately unmaps twice; the fake refuses.
        unsafe { kernel.mm_unmap_locked_pages(mapped, mdl) };
    });
    assert!(message.contains("not mapped"), "{message}");
    // SAFETY: unmapped, so the MDL may go.
    unsafe { kernel.io_free_mdl(mdl) };
    let message = panic_message(|| {
        // SAFETY: deliberately uses a freed MDL; the fake refuses.
        unsafe { kernel.mm_build_mdl_for_non_paged_pool(mdl) };
    });
    assert!(message.contains("not live"), "{message}");
    // SAFETY: nothing describes the pool any more.
    unsafe { kernel.ex_free_pool_with_tag(p, POOL_TAG) };
    let message = panic_message(|| {
        // SAFETY: deliberately describes freed pool; the fake refuses.
        unsafe { kernel.io_allocate_mdl(p, 4096, 0, 0, null_mut()) };
    });
    assert!(message.contains("use after free"), "{message}");
    kernel.assert_nothing_leaked();
}

#[test]
fn the_fake_kernel_rejects_an_executable_mapping() {
    let kernel = FakeKernel::new();
    let buffer = PoolBuffer::allocate(&kernel, PAGE_SIZE, POOL_TAG).expect("allocates");
    let mdl = Mdl::describe(buffer).expect("describes");
    let message = panic_message(|| {
        // SAFETY: a live, built MDL; the priority lacks MdlMappingNoExecute on purpose.
        unsafe {
            kernel.mm_map_locked_pages_specify_cache(mdl.as_ptr().as_ptr(), 0, 1, null_mut(), 0, 16)
        };
    });
    assert!(message.contains("must be NX"), "{message}");
    drop(mdl);
    kernel.assert_nothing_leaked();
}
