#!/usr/bin/env bash
# fuzz.sh must fail when cargo fuzz fails: run it on a target that does not
# exist (cargo fuzz exits non-zero before fuzzing), and on a target that
# crashes on its first input (libFuzzer reports the crash), and expect a
# non-zero exit with fuzz.sh's own failure line each time.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(VMWALK_FUZZ_TARGET=no_such_target scripts/fuzz.sh 1 2>&1)
status=$?
if ((status == 0)); then
    echo "fuzz-selftest: fuzz.sh exited 0 for a target that does not exist"
    exit 1
fi
if ! grep -q '^fuzz.sh: cargo fuzz failed (exit ' <<<"$out"; then
    echo "fuzz-selftest: fuzz.sh failed without its failure line:"
    echo "$out" | tail -n 20
    exit 1
fi
echo "fuzz-selftest: fuzz.sh exits $status for a failing fuzz build"
out=$(VMWALK_FUZZ_TARGET=selftest_crash scripts/fuzz.sh 30 2>&1)
status=$?
if ((status == 0)) || ! grep -q '^fuzz.sh: cargo fuzz failed (exit ' <<<"$out" \
    || ! grep -q '^SUMMARY: libFuzzer: deadly signal' <<<"$out"; then
    echo "fuzz-selftest: a crashing fuzz target did not fail fuzz.sh (exit $status):"
    echo "$out" | tail -n 20
    exit 1
fi
echo "fuzz-selftest: fuzz.sh exits $status when libFuzzer finds a crash"
