//! For `scripts/fuzz-selftest.sh` only: crashes on the first input, so the
//! self-test can check that a crash found by libFuzzer fails `fuzz.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(
        data.len() > usize::MAX / 2,
        "fuzz.sh self-test: a crash must fail the step"
    );
});
