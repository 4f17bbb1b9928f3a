#!/usr/bin/env bash
# Runs every vmwalk test that can run on Linux, installing what it needs
# (apt packages, a Python venv, cargo tools). Ends with "suite: N passed, N failed".
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

# A fresh Debian has no C compiler: rustc links host binaries with cc, and the
# fuzz target and the test kernel need g++, ld and objcopy.
missing=()
for tool in cc c++ ld objcopy; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
    echo "test.sh: installing gcc, g++, binutils (missing: ${missing[*]})"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc g++ binutils libc6-dev >/dev/null
fi

# tests/ptwalk_map.rs renders `ptwalk map`'s SVG with headless Chromium (and fails
# without it), and looks for its text's pixels: a font, named, not left to chance.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
if ((${#missing[@]} > 0)); then
    echo "test.sh: installing ${missing[*]} (tests/ptwalk_map.rs renders the map's SVG)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in cargo rustfmt cargo-clippy python3; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing (it comes with the Rust toolchain / Python)"; exit 1; }
done

step "rustfmt" cargo fmt --check
step "rustfmt (fuzz)" cargo fmt --check --manifest-path fuzz/Cargo.toml
step "clippy (host)" cargo clippy --all-targets --features ptwalk -- -D warnings
# The driver needs panic = "abort"; host tests unwind. One setting for the whole
# host build keeps the lib from being built twice under one file name.
step "host tests" cargo test --features ptwalk --config 'profile.dev.panic="unwind"' 
step "rustdoc: no warnings (the doc examples run in the host tests)" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --features ptwalk
step "clippy (driver, x86_64-pc-windows-msvc)" scripts/build-sys.sh --clippy
step "vmwalk.sys: standalone build" scripts/build-sys.sh
step "WDK backend against wdk-sys 0.2.0's bindgen output (check, clippy, link)" scripts/check-wdk-bindings.sh
step "vmwalk.sys: image checks (and broken copies fail)" scripts/emulate.sh --check-image
step "clippy (driver, aarch64-pc-windows-msvc)" scripts/build-sys.sh --clippy --target aarch64
step "vmwalk.sys for ARM64: standalone build, image checks incl. its mrs of TTBR0/TTBR1/TCR, DriverEntry/DriverUnload under unicorn's AArch64 CPU (and broken copies and harnesses fail)" scripts/emulate.sh --check-image --arm64
step "emulator: harness self-test" scripts/emulate.sh --self-test
step "emulator: DriverEntry and DriverUnload" scripts/emulate.sh
step "emulator: fault injection" scripts/emulate.sh --fault-injection
step "emulator: named addresses (kernel; user, in a process, every kind of PTE; bad input)" scripts/emulate.sh --named-addresses
step "emulator: Driver Verifier model (--verifier clean; --verifier --seed-sequence stops with 0xC4/0xB2; --seed-sequence retail; refusal)" scripts/emulate-verifier-test.sh
step "emulator: 5-level world, corrupt entries (not present, reserved bit, Windows software PTEs)" scripts/emulate.sh --corruption-tests
step "emulate.sh: command line (--help, bad options, --check-image anywhere)" scripts/emulate-cli-test.sh
step "fuzz: a fuzz target that does not build fails the step" scripts/fuzz-selftest.sh
step "fuzz: walker vs model (60 s)" scripts/fuzz.sh 60
step "fuzz: image readers on arbitrary files: raw, ELF core, crash dump (60 s)" env VMWALK_FUZZ_TARGET=images scripts/fuzz.sh 60
step "fuzz: AArch64 walker vs its model (60 s)" env VMWALK_FUZZ_TARGET=walk_aarch64 scripts/fuzz.sh 60
step "real MMU: test kernel and Linux guests under QEMU" scripts/mmu-check.sh
step "PowerShell syntax (scripts and their Pester tests)" bash scripts/check-powershell.sh
step "docs: every PowerShell script is run with -ExecutionPolicy Bypass -File (and a broken copy fails)" python3 scripts/check-doc-commands.py --self-test
step "Windows CI workflow: schema (action-validator), bash steps (shellcheck), PowerShell steps (parser); broken copies fail" scripts/check-workflows.sh
step "cargo make: Makefile.toml against wdk-build 0.6.0's rust-driver-makefile.toml (tasks, --print-steps); renamed upstream tasks fail" scripts/check-cargo-make.sh
step "shell scripts: no pipe into an early reader under pipefail (and a broken copy fails)" python3 scripts/check-pipes.py --self-test
step "benchmarks: every benchmark and peer once, a few rounds each (bench.sh --smoke)" scripts/bench.sh --smoke
step "INF: the primitive-driver rules (and broken copies fail)" python3 scripts/check-inf.py --self-test

if ((failed > 0)); then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "suite: $passed passed, $failed failed"
((failed == 0))
