#!/usr/bin/env bash
# Measures the walker in one run and prints one table of ratios: against the
# x86_64 crate and the pointer-chase limit, ranged against independent walks
# (benches/walker.rs with Criterion, and benches/paired.rs interleaved, whose
# ratios are the headline: this shared machine's speed drifts between
# benchmarks run one after the other), callgrind instruction counts
# (benches/instructions.rs), and against volatility3 and MemProcFS on a Linux
# guest's image (scripts/bench_peers.py), and `ptwalk translate` on a Windows
# crash dump against the raw image of the same memory (benches/dumps.rs,
# interleaved). The last line is machine-readable:
#   x86_64_ratio=R limit_ratio=R range_ratio=R vol3_speedup=S memprocfs_speedup=S dump_ratio=R
#   arm64_limit_ratio=R arm64_range_ratio=R arm64_paging_ratio=R
# (time ratios ours/theirs; speedups theirs/ours; dump_ratio: the slower of
# the full and bitmap dump over the raw image, whole commands; arm64_*: the
# AArch64 walker on the same image as AArch64 descriptors, against the pointer
# chase, independent walks, and the aarch64-paging crate). Installs valgrind (apt) and
# the peers (a venv in .venv-bench/) when missing. Takes about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/bench-report
venv=.venv-bench
cargo_bench=(cargo bench --quiet)

log() { echo "bench.sh: $*" >&2; }

if ! command -v valgrind >/dev/null; then
    log "installing valgrind"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
if ! "$venv/bin/python" -c 'import volatility3, memprocfs' 2>/dev/null; then
    log "installing volatility3 and memprocfs into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet volatility3==2.28.2 memprocfs==5.19.0
fi

log "building"
"${cargo_bench[@]}" --bench walker --bench instructions --bench paired --no-run 2>/dev/null
executable() {
    "${cargo_bench[@]}" --bench "$1" --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
instructions=$(executable instructions)
paired=$(executable paired)
# benches/dumps.rs runs the ptwalk binary: it needs the feature, and one
# panic strategy for the binary and the bench (they share libvmwalk's file).
dumps_bench=(--features ptwalk --config 'profile.bench.panic="unwind"' --bench dumps)
"${cargo_bench[@]}" "${dumps_bench[@]}" --no-run 2>/dev/null
dumps=$("${cargo_bench[@]}" "${dumps_bench[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "dumps" and m.get("executable"):
        print(m["executable"])')

rm -rf "$out" target/criterion
mkdir -p "$out"

log "criterion (one run of every benchmark)"
VMWALK_BENCH_EXPORT="$out" "${cargo_bench[@]}" --bench walker -- \
    --warm-up-time 1 --measurement-time 5 --noplot >"$out/criterion.txt" 2>&1

log "interleaved ratios"
"$paired" measure >"$out/paired.txt"

log "ptwalk on crash dumps and the raw image, interleaved"
"$dumps" measure >"$out/dumps.txt"

log "callgrind"
: >"$out/callgrind.txt"
for what in vmwalk x86_64 pointer_chase range enumerate arm64 arm64_range; do
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$what" \
        --toggle-collect="*measured_$what*" "$instructions" "$what" >"$out/instructions.$what" 2>/dev/null
    operations=$(sed -n 's/.* operations=\([0-9]*\) .*/\1/p' "$out/instructions.$what")
    total=$(sed -n 's/^totals: *//p' "$out/callgrind.$what")
    echo "$what $total $operations" >>"$out/callgrind.txt"
done

log "volatility3 and MemProcFS on the Linux guest"
"$venv/bin/python" scripts/bench_peers.py --export "$out" >"$out/peers.txt"

echo "vmwalk benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(sed -n '0,/^model name\s*: /s/^model name\s*: //p' /proc/cpuinfo)"
python3 scripts/bench_report.py "$out"
