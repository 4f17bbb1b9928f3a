//! Fault injection: each kernel call that can fail fails in turn, for both
//! mapping methods; `DriverEntry` must return the matching error, log it,
//! and release exactly what it took, in reverse order.
// The fake kernel maps pages with memfd_create, which only Linux has.
#![cfg(target_os = "linux")]

mod driver_fake;

use driver_fake::{FakeKernel, Fault, PARTIAL_MDL_FAULTS, POOL_MDL_FAULTS};
use vmwalk::ffi::{DPFLTR_ERROR_LEVEL, NTSTATUS};
use vmwalk::kernel::{DriverError, MappingMethod, load, unload};
use vmwalk::walker::VirtAddr;

const CODE: u64 = 0xffff_f806_1234_5000;

/// The calls that acquire or release something (the walk's reads left out).
const RESOURCE_CALLS: [&str; 10] = [
    "MmAllocatePagesForMdlEx",
    "ExAllocatePool2",
    "IoAllocateMdl",
    "IoBuildPartialMdl",
    "MmBuildMdlForNonPagedPool",
    "MmMapLockedPagesSpecifyCache",
    "MmUnmapLockedPages",
    "IoFreeMdl",
    "MmFreePagesFromMdl",
    "ExFreePoolWithTag",
];

const PAGES: &str = "MmAllocatePagesForMdlEx";
const MAP: &str = "MmMapLockedPagesSpecifyCache";
const UNMAP: &str = "MmUnmapLockedPages";
/// The default method's teardown after both mappings.
const PARTIAL_MDL_TEARDOWN: [&str; 5] = [
    UNMAP,
    UNMAP,
    "IoFreeMdl",
    "MmFreePagesFromMdl",
    "ExFreePoolWithTag",
];
const PARTIAL_MDL_SETUP: [&str; 5] = [PAGES, "IoAllocateMdl", "IoBuildPartialMdl", MAP, MAP];

fn expected_partial_mdl(fault: Fault) -> (DriverError, &'static str, Vec<&'static str>) {
    let full = || [&PARTIAL_MDL_SETUP[..], &PARTIAL_MDL_TEARDOWN[..]].concat();
    match fault {
        Fault::MmAllocatePagesForMdlEx => (
            DriverError::PageAllocation,
            "MmAllocatePagesForMdlEx failed",
            vec![PAGES],
        ),
        Fault::ShortPageAllocation => (
            DriverError::PageAllocation,
            "MmAllocatePagesForMdlEx: MDL",
            vec![PAGES, "MmFreePagesFromMdl", "ExFreePoolWithTag"],
        ),
        Fault::IoAllocateMdl => (
            DriverError::MdlAllocation,
            "IoAllocateMdl failed",
            vec![
                PAGES,
                "IoAllocateMdl",
                "MmFreePagesFromMdl",
                "ExFreePoolWithTag",
            ],
        ),
        Fault::MmMapLockedPagesSpecifyCache => (
            DriverError::Mapping,
            "MmMapLockedPagesSpecifyCache failed",
            vec![
                PAGES,
                "IoAllocateMdl",
                "IoBuildPartialMdl",
                MAP,
                "IoFreeMdl",
                "MmFreePagesFromMdl",
                "ExFreePoolWithTag",
            ],
        ),
        Fault::SecondMapping => (
            DriverError::Mapping,
            "MmMapLockedPagesSpecifyCache failed",
            vec![
                PAGES,
                "IoAllocateMdl",
                "IoBuildPartialMdl",
                MAP,
                MAP,
                UNMAP,
                "IoFreeMdl",
                "MmFreePagesFromMdl",
                "ExFreePoolWithTag",
            ],
        ),
        Fault::SameAddress => (
            DriverError::SameAddress,
            "alias check failed: the second address",
            full(),
        ),
        Fault::MappingNotAliased => (DriverError::NotAliased, "alias check failed: word", full()),
        Fault::WalkContradicts => (
            DriverError::WalkContradicts,
            "mdl-mapping and partial-mapping do not share a page",
            full(),
        ),
        Fault::SharedPte => (
            DriverError::WalkContradicts,
            "mdl-mapping and partial-mapping translate through one PTE",
            full(),
        ),
        _ => unreachable!("not a fault of the default method: {fault:?}"),
    }
}

fn expected_pool_mdl(fault: Fault) -> (DriverError, &'static str, Vec<&'static str>) {
    let full = vec![
        "ExAllocatePool2",
        "IoAllocateMdl",
        "MmBuildMdlForNonPagedPool",
        MAP,
        UNMAP,
        "IoFreeMdl",
        "ExFreePoolWithTag",
    ];
    match fault {
        Fault::ExAllocatePool2 => (
            DriverError::PoolAllocation,
            "ExAllocatePool2 failed",
            vec!["ExAllocatePool2"],
        ),
        Fault::IoAllocateMdl => (
            DriverError::MdlAllocation,
            "IoAllocateMdl failed",
            vec!["ExAllocatePool2", "IoAllocateMdl", "ExFreePoolWithTag"],
        ),
        Fault::MmBuildMdlForNonPagedPool => (
            DriverError::MdlNotBuilt,
            "MmBuildMdlForNonPagedPool failed",
            vec![
                "ExAllocatePool2",
                "IoAllocateMdl",
                "MmBuildMdlForNonPagedPool",
                "IoFreeMdl",
                "ExFreePoolWithTag",
            ],
        ),
        Fault::MmMapLockedPagesSpecifyCache => (
            DriverError::Mapping,
            "MmMapLockedPagesSpecifyCache failed",
            vec![
                "ExAllocatePool2",
                "IoAllocateMdl",
                "MmBuildMdlForNonPagedPool",
                MAP,
                "IoFreeMdl",
                "ExFreePoolWithTag",
            ],
        ),
        Fault::SameAddress => (
            DriverError::SameAddress,
            "alias check failed: the second address",
            full,
        ),
        Fault::MappingNotAliased => (DriverError::NotAliased, "alias check failed: word", full),
        Fault::WalkContradicts => (
            DriverError::WalkContradicts,
            "pool and mapping do not share a page",
            full.clone(),
        ),
        Fault::SharedPte => (
            DriverError::WalkContradicts,
            "pool and mapping translate through one PTE",
            full,
        ),
        _ => unreachable!("not a fault of the seed's sequence: {fault:?}"),
    }
}

fn check(method: MappingMethod, fault: Fault, expected: (DriverError, &str, Vec<&str>)) {
    let kernel = FakeKernel::with_fault(fault);
    kernel.map_page(CODE);
    let (error, logged, calls) = expected;
    let result = load(&kernel, method, VirtAddr(CODE))
        .map(|_| ())
        .expect_err("DriverEntry must fail");
    assert_eq!(result, error, "{method:?} {fault:?}");
    let made: Vec<_> = kernel
        .calls()
        .into_iter()
        .filter(|c| RESOURCE_CALLS.contains(c))
        .collect();
    assert_eq!(
        made, calls,
        "{method:?} {fault:?}: releases in reverse order"
    );
    kernel.assert_nothing_leaked();
    let errors = kernel.lines_at(DPFLTR_ERROR_LEVEL);
    assert!(
        errors
            .iter()
            .any(|line| line.starts_with(&format!("vmwalk: {logged}"))),
        "{method:?} {fault:?}: {errors:?}"
    );
    let status = NTSTATUS::from(error).cast_unsigned();
    let status_line = format!(
        "vmwalk: DriverEntry failed with NTSTATUS 0x{status:08X}; nothing left allocated\n"
    );
    assert_eq!(errors.last(), Some(&status_line), "{method:?} {fault:?}");
    let last = kernel.lines().pop().expect("logged");
    assert_eq!(
        last, status_line,
        "{method:?} {fault:?}: the status is the last line"
    );
}

#[test]
fn each_failing_call_of_the_default_method_returns_its_error_and_leaks_nothing() {
    for fault in PARTIAL_MDL_FAULTS {
        check(
            MappingMethod::PartialMdl,
            fault,
            expected_partial_mdl(fault),
        );
    }
}

#[test]
fn each_failing_call_of_the_seed_sequence_returns_its_error_and_leaks_nothing() {
    for fault in POOL_MDL_FAULTS {
        check(
            MappingMethod::NonPagedPoolMdl,
            fault,
            expected_pool_mdl(fault),
        );
    }
}

#[test]
fn the_faults_cover_every_call_that_can_fail() {
    for (method, faults) in [
        (MappingMethod::PartialMdl, &PARTIAL_MDL_FAULTS[..]),
        (MappingMethod::NonPagedPoolMdl, &POOL_MDL_FAULTS[..]),
    ] {
        let kernel = FakeKernel::new();
        kernel.map_page(CODE);
        unload(load(&kernel, method, VirtAddr(CODE)).expect("loads"));
        kernel.assert_nothing_leaked();
        // Calls that return nothing (releases, IoBuildPartialMdl) cannot fail.
        let silent = [
            UNMAP,
            "IoFreeMdl",
            "MmFreePagesFromMdl",
            "ExFreePoolWithTag",
            "IoBuildPartialMdl",
        ];
        for call in kernel.calls() {
            if RESOURCE_CALLS.contains(&call) && !silent.contains(&call) {
                assert!(
                    faults.iter().any(|fault| format!("{fault:?}") == call),
                    "{method:?}: no fault injected into {call}"
                );
            }
        }
    }
}
