#!/usr/bin/env bash
# Runs every vmwalk test that can run on Linux, installing what it needs
# (apt packages, a Python venv, cargo tools). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()

step() {
    local name=$1
    shift
    local start=$SECONDS
    echo "==> $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "<== $name: ok ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "<== $name: FAILED ($((SECONDS - start)) s)"
    fi
}

for tool in cargo rustfmt cargo-clippy python3; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing (it comes with the Rust toolchain / Python)"; exit 1; }
done

step "rustfmt" cargo fmt --check
step "rustfmt (fuzz)" cargo fmt --check --manifest-path fuzz/Cargo.toml
step "clippy (host)" cargo clippy --all-targets --features ptwalk -- -D warnings
# The driver needs panic = "abort"; host tests unwind. One setting for the whole
# host build keeps the lib from being built twice under one file name.
step "host tests" cargo test --features ptwalk --config 'profile.dev.panic="unwind"' 
step "clippy (driver, x86_64-pc-windows-msvc)" scripts/build-sys.sh --clippy
step "vmwalk.sys: standalone build" scripts/build-sys.sh
step "vmwalk.sys: image checks (and broken copies fail)" scripts/emulate.sh --check-image
step "emulator: harness self-test" scripts/emulate.sh --self-test
step "emulator: DriverEntry and DriverUnload" scripts/emulate.sh
step "emulator: fault injection" scripts/emulate.sh --fault-injection
step "emulator: 5-level world, corrupt entries (not present, reserved bit)" scripts/emulate.sh --corruption-tests
step "fuzz: walker vs model (60 s)" scripts/fuzz.sh 60
step "real MMU: test kernel and Linux guests under QEMU" scripts/mmu-check.sh
step "PowerShell syntax" bash scripts/check-powershell.sh

if ((failed > 0)); then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "vmwalk: $passed passed, $failed failed"
((failed == 0))
