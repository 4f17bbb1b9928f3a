#!/usr/bin/env bash
# The walker against a real MMU (QEMU, TCG): our random-table test kernel in
# 4- and 5-level mode, then real Linux guests (gva2gpa and info tlb).
# Each part installs QEMU and what else it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --features ptwalk --bin ptwalk
python3 scripts/mmu/testkernel.py --ptwalk target/release/ptwalk
python3 scripts/mmu/linux_guest.py --ptwalk target/release/ptwalk
