//! Fault injection: each kernel call that can fail fails in turn; `DriverEntry`
//! must return the matching error, log it, and release exactly what it took.
// The fake kernel maps pages with memfd_create, which only Linux has.
#![cfg(target_os = "linux")]

mod driver_fake;

use driver_fake::{FAULTS, FakeKernel, Fault};
use vmwalk::ffi::{DPFLTR_ERROR_LEVEL, NTSTATUS};
use vmwalk::kernel::{DriverError, load, unload};

const ACQUIRING_CALLS: [&str; 4] = [
    "ExAllocatePool2",
    "IoAllocateMdl",
    "MmBuildMdlForNonPagedPool",
    "MmMapLockedPagesSpecifyCache",
];

const fn expected(fault: Fault) -> (DriverError, &'static str, &'static [&'static str]) {
    match fault {
        Fault::ExAllocatePool2 => (
            DriverError::PoolAllocation,
            "ExAllocatePool2 failed",
            &["ExAllocatePool2"],
        ),
        Fault::IoAllocateMdl => (
            DriverError::MdlAllocation,
            "IoAllocateMdl failed",
            &["ExAllocatePool2", "IoAllocateMdl", "ExFreePoolWithTag"],
        ),
        Fault::MmBuildMdlForNonPagedPool => (
            DriverError::MdlNotBuilt,
            "MmBuildMdlForNonPagedPool failed",
            &[
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
            &[
                "ExAllocatePool2",
                "IoAllocateMdl",
                "MmBuildMdlForNonPagedPool",
                "MmMapLockedPagesSpecifyCache",
                "IoFreeMdl",
                "ExFreePoolWithTag",
            ],
        ),
        Fault::MappingNotAliased => (
            DriverError::NotAliased,
            "alias check failed",
            &[
                "ExAllocatePool2",
                "IoAllocateMdl",
                "MmBuildMdlForNonPagedPool",
                "MmMapLockedPagesSpecifyCache",
                "MmUnmapLockedPages",
                "IoFreeMdl",
                "ExFreePoolWithTag",
            ],
        ),
    }
}

#[test]
fn each_failing_call_returns_its_error_logs_it_and_leaks_nothing() {
    for fault in FAULTS {
        let kernel = FakeKernel::with_fault(fault);
        let (error, logged, calls) = expected(fault);
        let result = load(&kernel)
            .map(|_| ())
            .expect_err("DriverEntry must fail");
        assert_eq!(result, error, "{fault:?}");
        assert_eq!(
            kernel.calls(),
            calls,
            "{fault:?}: releases in reverse order"
        );
        kernel.assert_nothing_leaked();
        let errors = kernel.lines_at(DPFLTR_ERROR_LEVEL);
        assert_eq!(
            errors.len(),
            2,
            "{fault:?}: the failing step and the status: {errors:?}"
        );
        assert!(
            errors[0].starts_with(&format!("vmwalk: {logged}")),
            "{fault:?}: {errors:?}"
        );
        let status = NTSTATUS::from(error).cast_unsigned();
        assert_eq!(
            errors[1],
            format!(
                "vmwalk: DriverEntry failed with NTSTATUS 0x{status:08X}; nothing left allocated\n"
            ),
        );
        let last = kernel.lines().pop().expect("logged");
        assert_eq!(last, errors[1], "{fault:?}: the status is the last line");
    }
}

#[test]
fn the_faults_cover_every_call_that_can_fail() {
    let kernel = FakeKernel::new();
    unload(load(&kernel).expect("loads"));
    let calls = kernel.calls();
    let acquiring: Vec<_> = calls
        .iter()
        .copied()
        .filter(|c| ACQUIRING_CALLS.contains(c))
        .collect();
    assert_eq!(
        acquiring, ACQUIRING_CALLS,
        "the driver makes exactly these acquiring calls"
    );
    // The release calls return nothing, so they cannot report a failure.
    assert_eq!(calls.len(), ACQUIRING_CALLS.len() + 3);
    for call in ACQUIRING_CALLS {
        assert!(
            FAULTS.iter().any(|fault| format!("{fault:?}") == call),
            "no fault injected into {call}"
        );
    }
}
