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
    Alias, DriverError, DriverSlot, KernelApi, LogFormat, Mappable, MappingMethod, Mdl, PAGE_SIZE,
    POOL_TAG, PoolBuffer, load, read_parameters, unload,
};
use vmwalk::walker::VirtAddr;

fn panic_message(run: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(run)).expect_err("the fake kernel must panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// A kernel address the fake world maps, standing in for `DriverEntry`.
const CODE: u64 = 0xffff_f806_1234_5000;

/// The lines from the first to the first of the walk (`vmwalk: paging:`).
fn setup_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .take_while(|line| !line.starts_with("vmwalk: paging:"))
        .cloned()
        .collect()
}

/// The lines from `DriverEntry succeeded` on.
fn final_lines(lines: &[String]) -> Vec<String> {
    let at = lines
        .iter()
        .position(|line| line.starts_with("vmwalk: DriverEntry succeeded"))
        .expect("DriverEntry succeeded");
    lines[at..].to_vec()
}

fn resource_calls(kernel: &FakeKernel) -> Vec<&'static str> {
    let walk = ["MmCopyMemory", "MmGetPhysicalAddress"];
    kernel
        .calls()
        .into_iter()
        .filter(|c| !walk.contains(c))
        .collect()
}

#[test]
fn the_default_method_passes_the_verifier_model_logs_each_step_and_tears_down_in_reverse() {
    let kernel = FakeKernel::new();
    kernel.verify();
    kernel.map_page(CODE);
    let alias =
        load(&kernel, MappingMethod::PartialMdl, VirtAddr(CODE)).expect("every call succeeds");
    let Alias::Pages(outer) = &alias else {
        panic!("the default method maps pages through a partial MDL")
    };
    // The outer mapping maps the pages' MDL; the inner one, the partial MDL.
    let pages_mdl = outer.mdl().mdl_to_map().as_ptr() as usize;
    let partial_mdl = outer.mdl().mdl().mdl_to_map().as_ptr() as usize;
    let (first, second) = (
        alias.first().as_ptr() as usize,
        alias.second().as_ptr() as usize,
    );
    assert_ne!(first, second, "two addresses");
    assert_eq!(
        resource_calls(&kernel),
        [
            "MmAllocatePagesForMdlEx",
            "IoAllocateMdl",
            "IoBuildPartialMdl",
            "MmMapLockedPagesSpecifyCache",
            "MmMapLockedPagesSpecifyCache"
        ],
        "the partial MDL is built before anything is mapped"
    );
    kernel.clear_log();
    unload(alias);
    assert_eq!(
        kernel.calls(),
        [
            "MmUnmapLockedPages",
            "MmUnmapLockedPages",
            "IoFreeMdl",
            "MmFreePagesFromMdl",
            "ExFreePoolWithTag"
        ],
        "teardown is the reverse of setup"
    );
    kernel.assert_nothing_leaked();
    assert_eq!(
        kernel.lines(),
        [
            format!("vmwalk: DriverUnload: tearing down {first:016X} and {second:016X}\n"),
            format!("vmwalk: MmUnmapLockedPages unmapped {first:016X}\n"),
            format!("vmwalk: MmUnmapLockedPages unmapped {second:016X}\n"),
            format!("vmwalk: IoFreeMdl freed MDL {partial_mdl:016X}\n"),
            format!(
                "vmwalk: MmFreePagesFromMdl and ExFreePoolWithTag(0) freed the pages and MDL {pages_mdl:016X}\n"
            ),
            "vmwalk: DriverUnload done\n".to_owned(),
        ]
    );
}

#[test]
fn the_default_method_logs_the_flags_windows_sets() {
    let kernel = FakeKernel::new();
    kernel.map_page(CODE);
    let alias = load(&kernel, MappingMethod::PartialMdl, VirtAddr(CODE)).expect("loads");
    let Alias::Pages(outer) = &alias else {
        panic!("default method")
    };
    let pages_mdl = outer.mdl().mdl_to_map().as_ptr() as usize;
    let partial_mdl = outer.mdl().mdl().mdl_to_map().as_ptr() as usize;
    let (first, second) = (
        alias.first().as_ptr() as usize,
        alias.second().as_ptr() as usize,
    );
    let lines = kernel.lines();
    // MDL_PAGES_LOCKED (2); a partial MDL: MDL_ALLOCATED_FIXED_SIZE | MDL_PARTIAL (0x18).
    assert_eq!(
        setup_lines(&lines),
        [
            format!(
                "vmwalk: MmAllocatePagesForMdlEx(4 KiB, MmCached) -> MDL {pages_mdl:016X} MdlFlags 0x00000002\n"
            ),
            format!("vmwalk: IoAllocateMdl -> MDL {partial_mdl:016X}\n"),
            format!("vmwalk: IoBuildPartialMdl: MDL {partial_mdl:016X} MdlFlags 0x00000018\n"),
            format!(
                "vmwalk: MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NX) -> mapping {second:016X} of MDL {partial_mdl:016X}\n"
            ),
            format!(
                "vmwalk: MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NX) -> mapping {first:016X} of MDL {pages_mdl:016X}\n"
            ),
            format!(
                "vmwalk: alias check passed: pattern written at {first:016X} reads back at {second:016X}\n"
            ),
        ]
    );
    assert_eq!(
        final_lines(&lines),
        [format!(
            "vmwalk: DriverEntry succeeded; the page at {first:016X} and {second:016X} stays until unload\n"
        )]
    );
    assert!(
        kernel
            .lines_at(DPFLTR_ERROR_LEVEL)
            .iter()
            .all(|l| l.starts_with("vmwalk: walk of stack")),
        "only the host stack, which the fake world does not map"
    );
    unload(alias);
    kernel.assert_nothing_leaked();
}

#[test]
fn the_seed_sequence_runs_on_a_retail_kernel_and_says_which_rule_it_breaks() {
    let kernel = FakeKernel::new();
    kernel.map_page(CODE);
    let alias =
        load(&kernel, MappingMethod::NonPagedPoolMdl, VirtAddr(CODE)).expect("retail maps it");
    let Alias::Pool(mapping) = &alias else {
        panic!("seed sequence")
    };
    let mdl = mapping.mdl().as_ptr().as_ptr() as usize;
    let (pool, mapped) = (
        alias.first().as_ptr() as usize,
        alias.second().as_ptr() as usize,
    );
    assert_eq!(
        setup_lines(&kernel.lines()),
        [
            format!("vmwalk: ExAllocatePool2(NonPagedNx, 4 KiB) -> pool buffer {pool:016X}\n"),
            format!("vmwalk: IoAllocateMdl -> MDL {mdl:016X}\n"),
            format!("vmwalk: MmBuildMdlForNonPagedPool: MDL {mdl:016X} MdlFlags 0x0000000C\n"),
            "vmwalk: MappingMethod NonPagedPoolMdl: the MmBuildMdlForNonPagedPool page forbids what comes next, a second system mapping of its MDL with MmMapLockedPagesSpecifyCache\n".to_owned(),
            "vmwalk: under Driver Verifier this call stops the machine: bug check 0xC4 (DRIVER_VERIFIER_DETECTED_VIOLATION), parameter 1 0xB2 (MDL already mapped to a system address)\n".to_owned(),
            format!("vmwalk: MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NX) -> mapping {mapped:016X} of MDL {mdl:016X}\n"),
            format!("vmwalk: alias check passed: pattern written at {pool:016X} reads back at {mapped:016X}\n"),
        ]
    );
    kernel.clear_log();
    unload(alias);
    assert_eq!(
        kernel.calls(),
        ["MmUnmapLockedPages", "IoFreeMdl", "ExFreePoolWithTag"]
    );
    kernel.assert_nothing_leaked();
}

#[test]
fn the_seed_sequence_under_the_verifier_model_is_bug_check_c4_b2() {
    let kernel = FakeKernel::new();
    kernel.verify();
    kernel.map_page(CODE);
    let message = panic_message(|| {
        let _ = load(&kernel, MappingMethod::NonPagedPoolMdl, VirtAddr(CODE));
    });
    assert!(
        message.contains("bug check 0xC4 (DRIVER_VERIFIER_DETECTED_VIOLATION), parameters 0xb2,"),
        "{message}"
    );
    assert!(
        message.contains(", 0xc, 0x4:"),
        "flags 0xC, the offending SOURCE_IS_NONPAGED_POOL: {message}"
    );
}

#[test]
fn both_methods_reach_the_same_memory_through_both_addresses() {
    for method in [MappingMethod::PartialMdl, MappingMethod::NonPagedPoolMdl] {
        let kernel = FakeKernel::new();
        kernel.map_page(CODE);
        let alias = load(&kernel, method, VirtAddr(CODE)).expect("loads");
        let (first, second) = (alias.first().as_ptr(), alias.second().as_ptr());
        // SAFETY: both addresses are live for PAGE_SIZE bytes while `alias` is.
        unsafe { second.wrapping_add(PAGE_SIZE - 1).write_volatile(0xA5) };
        // SAFETY: as above.
        let read = unsafe { first.wrapping_add(PAGE_SIZE - 1).read_volatile() };
        assert_eq!(
            read, 0xA5,
            "{method:?}: a write through the second address shows at the first"
        );
        unload(alias);
        kernel.assert_nothing_leaked();
    }
}

#[test]
fn a_partial_mdl_of_a_mapped_mdl_inherits_the_mapping_and_verifier_stops_its_mapping() {
    // Why the driver builds the partial MDL before mapping anything.
    let kernel = FakeKernel::new();
    kernel.verify();
    let any = |quad| vmwalk::ffi::PHYSICAL_ADDRESS { QuadPart: quad };
    let pages = kernel.mm_allocate_pages_for_mdl_ex(any(0), any(-1), any(0), 4096, 1, 4);
    // SAFETY: a live MDL of locked pages; the driver's arguments.
    let first = unsafe {
        kernel.mm_map_locked_pages_specify_cache(pages, 0, 1, null_mut(), 0, 0x4000_0010)
    };
    // SAFETY: the pages' MDL describes one page at its StartVa (0).
    let partial = unsafe { kernel.io_allocate_mdl(null_mut(), 4096, 0, 0, null_mut()) };
    // SAFETY: both MDLs live, the range inside the source.
    unsafe { kernel.io_build_partial_mdl(pages, partial, null_mut(), 4096) };
    // SAFETY: a live MDL.
    let flags = unsafe { (*partial).MdlFlags };
    assert_eq!(
        flags, 0x19,
        "ALLOCATED_FIXED_SIZE | PARTIAL | MAPPED_TO_SYSTEM_VA, from its source"
    );
    let message = panic_message(|| {
        // SAFETY: deliberately maps an MDL Windows considers mapped; the model stops it.
        unsafe {
            kernel.mm_map_locked_pages_specify_cache(partial, 0, 1, null_mut(), 0, 0x4000_0010)
        };
    });
    assert!(message.contains("parameters 0xb2,"), "{message}");
    // SAFETY: in reverse order of the setup above.
    unsafe { kernel.io_free_mdl(partial) };
    // SAFETY: as above.
    unsafe { kernel.mm_unmap_locked_pages(first, pages) };
    // SAFETY: as above.
    unsafe { kernel.mm_free_pages_from_mdl(pages) };
    // SAFETY: as above.
    unsafe { kernel.ex_free_pool_with_tag(pages.cast(), 0) };
    kernel.assert_nothing_leaked();
}

#[test]
fn the_verifier_model_stops_freeing_a_mapped_mdl_and_mapping_at_high_irql() {
    let kernel = FakeKernel::new();
    kernel.verify();
    let any = |quad| vmwalk::ffi::PHYSICAL_ADDRESS { QuadPart: quad };
    let pages = kernel.mm_allocate_pages_for_mdl_ex(any(0), any(-1), any(0), 4096, 1, 4);
    // SAFETY: the pages' MDL describes one page at its StartVa (0).
    let partial = unsafe { kernel.io_allocate_mdl(null_mut(), 4096, 0, 0, null_mut()) };
    // SAFETY: both live, before any mapping.
    unsafe { kernel.io_build_partial_mdl(pages, partial, null_mut(), 4096) };
    // SAFETY: a partial MDL of locked pages.
    let mapped = unsafe {
        kernel.mm_map_locked_pages_specify_cache(partial, 0, 1, null_mut(), 0, 0x4000_0010)
    };
    let message = panic_message(|| {
        // SAFETY: deliberately frees a mapped MDL; the model stops it first.
        unsafe { kernel.io_free_mdl(partial) };
    });
    assert!(message.contains("parameters 0xb8,"), "{message}");
    kernel.set_irql(3);
    let message = panic_message(|| {
        // SAFETY: deliberately at IRQL 3; the model stops it first.
        unsafe {
            kernel.mm_map_locked_pages_specify_cache(pages, 0, 1, null_mut(), 0, 0x4000_0010)
        };
    });
    assert!(message.contains("parameters 0x76, 0x3,"), "{message}");
    kernel.set_irql(0);
    // SAFETY: in reverse order of the setup above.
    unsafe { kernel.mm_unmap_locked_pages(mapped, partial) };
    // SAFETY: as above.
    unsafe { kernel.io_free_mdl(partial) };
    // SAFETY: as above.
    unsafe { kernel.mm_free_pages_from_mdl(pages) };
    // SAFETY: as above.
    unsafe { kernel.ex_free_pool_with_tag(pages.cast(), 0) };
    kernel.assert_nothing_leaked();
}

/// `mapping_method` with the registry as `set` leaves it; its lines.
fn method_with(
    set: impl FnOnce(&FakeKernel),
    verifying: bool,
) -> (MappingMethod, Vec<String>, Vec<String>) {
    let kernel = FakeKernel::new();
    set(&kernel);
    kernel.report_verifying(verifying);
    let mut buffer = Vec::new();
    let path = FakeKernel::registry_path(&mut buffer);
    let mut driver = std::mem::MaybeUninit::<vmwalk::ffi::DRIVER_OBJECT>::zeroed();
    // SAFETY: a registry path and a driver object as DriverEntry receives them.
    let method = unsafe { read_parameters(&kernel, &raw const path, driver.as_mut_ptr()) }.method;
    kernel.assert_nothing_leaked();
    (method, kernel.lines(), kernel.lines_at(DPFLTR_ERROR_LEVEL))
}

#[test]
fn the_mapping_method_comes_from_parameters_and_the_seed_sequence_is_refused_under_verifier() {
    let (method, lines, errors) = method_with(|_| {}, false);
    assert_eq!(method, MappingMethod::PartialMdl);
    assert_eq!(lines, ["vmwalk: MappingMethod PartialMdl (the default)\n"]);
    assert!(errors.is_empty());

    let seed = |k: &FakeKernel| k.set_string_parameter("MappingMethod", "nonPagedPoolMDL");
    let (method, lines, _) = method_with(seed, false);
    assert_eq!(
        method,
        MappingMethod::NonPagedPoolMdl,
        "case does not matter, as in the registry"
    );
    assert_eq!(
        lines,
        ["vmwalk: MappingMethod NonPagedPoolMdl (from Parameters)\n"]
    );

    let (method, lines, _) = method_with(seed, true);
    assert_eq!(method, MappingMethod::PartialMdl);
    assert_eq!(
        lines,
        [
            "vmwalk: MappingMethod NonPagedPoolMdl refused: Driver Verifier checks this driver (MmIsDriverVerifying) and would stop the machine; using PartialMdl\n"
        ]
    );

    let (method, _, errors) =
        method_with(|k| k.set_string_parameter("MappingMethod", "Pool"), false);
    assert_eq!(method, MappingMethod::PartialMdl);
    assert_eq!(
        errors,
        ["vmwalk: MappingMethod is none of PartialMdl, NonPagedPoolMdl; ignored\n"]
    );

    let (method, _, errors) = method_with(
        |k| k.set_parameter("MappingMethod", 4, &1_u32.to_le_bytes()),
        false,
    );
    assert_eq!(method, MappingMethod::PartialMdl);
    assert_eq!(
        errors,
        ["vmwalk: MappingMethod has type 4, not REG_SZ (1); ignored\n"]
    );

    let long = "N".repeat(100);
    let (method, _, errors) =
        method_with(|k| k.set_string_parameter("MappingMethod", &long), false);
    assert_eq!(method, MappingMethod::PartialMdl);
    assert_eq!(
        errors,
        ["vmwalk: reading MappingMethod failed with NTSTATUS 0x80000005\n"]
    );

    let (method, _, errors) = method_with(|k| k.set_string_parameter("Other", "x"), false);
    assert_eq!(
        method,
        MappingMethod::PartialMdl,
        "a Parameters key without the value"
    );
    assert!(errors.is_empty());
}

#[test]
fn errors_become_the_statuses_sc_start_reports() {
    let cases: [(DriverError, NTSTATUS, u32); 8] = [
        (
            DriverError::PageAllocation,
            STATUS_INSUFFICIENT_RESOURCES,
            0xC000_009A,
        ),
        (DriverError::SameAddress, STATUS_INTERNAL_ERROR, 0xC000_00E5),
        (
            DriverError::WalkContradicts,
            STATUS_INTERNAL_ERROR,
            0xC000_00E5,
        ),
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
