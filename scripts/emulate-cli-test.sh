#!/usr/bin/env bash
# emulate.sh's command line: exit codes and exact first lines. Run after the
# emulator steps (the venv and the .sys exist, so stderr holds only our lines).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0

expect() { # name, wanted exit code, wanted first line, stream file, command...
    local name=$1 code=$2 first=$3 stream=$4
    shift 4
    "$@" >/tmp/emulate-cli.out 2>/tmp/emulate-cli.err
    local got=$? line
    line=$(head -n 1 "/tmp/emulate-cli.$stream")
    if [ "$got" != "$code" ] || [ "$line" != "$first" ]; then
        echo "emulate-cli: $name: FAILED (exit $got, first $stream line: $line)"
        failed=$((failed + 1))
    else
        echo "emulate-cli: $name: ok"
    fi
}

expect "--help prints emulate.sh's usage without building" 0 \
    "Builds vmwalk.sys (scripts/build-sys.sh) and runs it under speakeasy-emulator:" out \
    env PATH=/nonexistent/cargo-must-not-run:"$PATH" CARGO=/bin/false scripts/emulate.sh --la57 --help
expect "--fail with an unknown call fails with one clear line" 1 \
    "emulate.sh: argument --fail: invalid choice: 'NoSuchCall' (choose from 'ExAllocatePool2', 'IoAllocateMdl', 'MmAllocatePagesForMdlEx', 'MmBuildMdlForNonPagedPool', 'MmCopyMemory', 'MmGetPhysicalAddress', 'MmMapLockedPagesSpecifyCache', 'PsLookupProcessByProcessId', 'ZwOpenKey', 'ZwQueryValueKey', 'not-aliased', 'same-address', 'second-mapping', 'short-page-allocation', 'walk-contradicts')" err \
    scripts/emulate.sh --fail NoSuchCall
expect "--registry without NAME=VALUE fails before building" 1 \
    "emulate.sh: --registry wants NAME=VALUE, got 'MappingMethod'" err \
    scripts/emulate.sh --registry MappingMethod
expect "an unknown option fails before building" 1 \
    "emulate.sh: unrecognized arguments: --no-such-option" err \
    scripts/emulate.sh --no-such-option
expect "--arm64 with an x64 harness option fails before building" 2 \
    "emulate.sh: --arm64 takes only --check-image: the other options drive the x64 harness (speakeasy)" err \
    env CARGO=/bin/false scripts/emulate.sh --arm64 --la57
for call in MmCopyMemory IoAllocateMdl; do
    # Whole output first: a pipe into an early-exiting grep fails at random under pipefail.
    said=$(scripts/emulate.sh --fail "$call" 2>/dev/null || true)
    if grep -q "^harness: --fail $call: DriverEntry returned 0x[0-9A-F]*, as it must: " <<<"$said"; then
        echo "emulate-cli: --fail $call says what it checked: ok"
    else
        echo "emulate-cli: --fail $call says what it checked: FAILED"
        failed=$((failed + 1))
    fi
done
check_output=$(scripts/emulate.sh --check-image 2>/dev/null || true)
first_check_line=${check_output%%$'\n'*}
expect "--la57 --check-image checks the image, then runs a 5-level world" 0 \
    "$first_check_line" out scripts/emulate.sh --la57 --check-image
if [ "$failed" = 0 ] && ! grep -q '5-level' /tmp/emulate-cli.out; then
    echo "emulate-cli: --la57 after --check-image was ignored"
    failed=$((failed + 1))
fi
help=$(scripts/emulate.sh --help)
if grep -q -- '--seed N ' <<<"$help"; then
    echo "emulate-cli: --help names --seed on its own line: ok"
else
    echo "emulate-cli: --help names --seed on its own line: FAILED"
    failed=$((failed + 1))
fi
arm64_run=$(scripts/emulate.sh --arm64 2>&1 || true)
if grep -q "^arm64: user space; on Windows they are kernel addresses, walked through TTBR1_EL1" <<<"$arm64_run"; then
    echo "emulate-cli: --arm64 says why its kernel pages are user-space addresses: ok"
else
    echo "emulate-cli: --arm64 says why its kernel pages are user-space addresses: FAILED"
    failed=$((failed + 1))
fi
# build-sys.sh keeps its artifacts below the user's CARGO_TARGET_DIR.
elsewhere=$(mktemp -d)
built=$(CARGO_TARGET_DIR="$elsewhere" scripts/build-sys.sh 2>/dev/null || true)
built=${built##*$'\n'}
if [[ $built == "$elsewhere"/standalone/*/vmwalk.sys && -f $built ]]; then
    echo "emulate-cli: build-sys.sh builds below CARGO_TARGET_DIR: ok"
else
    echo "emulate-cli: build-sys.sh builds below CARGO_TARGET_DIR: FAILED (it printed ${built:-nothing})"
    failed=$((failed + 1))
fi
rm -rf "$elsewhere"
rm -f /tmp/emulate-cli.out /tmp/emulate-cli.err
((failed == 0))
