#!/usr/bin/env bash
# Fuzzes for $1 seconds (default 60): the walker against the reference model
# (target `walk`), the AArch64 walker against its model (VMWALK_FUZZ_TARGET=
# walk_aarch64), or, with VMWALK_FUZZ_TARGET=images, ptwalk's image readers
# (raw, ELF core, crash dump) on arbitrary files.
# Installs cargo-fuzz when missing; needs a nightly toolchain (libFuzzer's
# sanitizer flags), or uses the stable one with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
# libfuzzer-sys compiles libFuzzer with a C++ compiler; host linking needs cc.
if ! command -v c++ >/dev/null || ! command -v cc >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
toolchain=()
# Read whole, then grep: piped into grep, pipefail fails when grep exits
# early and the writer gets SIGPIPE, though the line was there.
toolchains=$(rustup toolchain list 2>/dev/null || true)
if grep -q '^nightly' <<<"$toolchains"; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi
target=${VMWALK_FUZZ_TARGET:-walk}
corpus=fuzz/corpus/$target
mkdir -p "$corpus"
if [ "$target" = images ]; then
    python3 fuzz/seeds.py --images "$corpus"
elif [ "$target" = walk_aarch64 ]; then
    python3 fuzz/seeds.py --aarch64 "$corpus"
else
    python3 fuzz/seeds.py "$corpus"
fi
# Keep the full log: rustc errors and libFuzzer crashes must be visible, and the
# step's status must be cargo-fuzz's own (a `| grep ... || true` would hide it).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo "${toolchain[@]}" fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1 || status=$?
if ((status != 0)); then
    tail -n 60 "$log"
    echo "fuzz.sh: cargo fuzz failed (exit $status)"
    exit "$status"
fi
grep -E 'Done|stat::number_of_executed_units|stat::peak_rss' "$log" || true
