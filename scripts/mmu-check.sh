#!/usr/bin/env bash
# The walkers against a real MMU (QEMU, TCG): our random-table test kernel in
# 4- and 5-level mode, then real Linux guests (gva2gpa and info tlb), then
# arm64 Linux guests for the AArch64 walker (gva2gpa as EL1, EL1 with PAN, EL0).
# Each part installs QEMU and what else it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# Ask cargo where it put ptwalk: CARGO_TARGET_DIR or a config may move it.
ptwalk=$(cargo build --quiet --release --features ptwalk --bin ptwalk --message-format=json |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "ptwalk":
        print(m["executable"])')
test -x "$ptwalk" || { echo "mmu-check.sh: cargo did not report a ptwalk executable"; exit 1; }
python3 scripts/mmu/testkernel.py --ptwalk "$ptwalk"
python3 scripts/mmu/linux_guest.py --ptwalk "$ptwalk"
python3 scripts/mmu/linux_guest_aarch64.py --ptwalk "$ptwalk"
