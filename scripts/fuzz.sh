#!/usr/bin/env bash
# Fuzzes the walker against the reference model for $1 seconds (default 60).
# Installs cargo-fuzz when missing; needs a nightly toolchain (libFuzzer's
# sanitizer flags), or uses the stable one with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi
mkdir -p fuzz/corpus/walk
python3 fuzz/seeds.py fuzz/corpus/walk
cargo "${toolchain[@]}" fuzz run walk fuzz/corpus/walk -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E 'Done|stat::number_of_executed_units|stat::peak_rss|ERROR|panicked|SUMMARY|assert|left|right' || true
test "${PIPESTATUS[0]}" -eq 0
