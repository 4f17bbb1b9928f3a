#!/usr/bin/env bash
# Measures the walker in one run and prints one table of ratios: against the
# x86_64 crate and the pointer-chase limit, ranged against independent walks
# (benches/walker.rs with Criterion, and benches/paired.rs interleaved, whose
# ratios are the headline: this shared machine's speed drifts between
# benchmarks run one after the other), callgrind instruction counts
# (benches/instructions.rs), and against volatility3 and MemProcFS on a Linux
# guest's image (scripts/bench_peers.py), and `ptwalk translate` on a Windows
# crash dump against the raw image of the same memory (benches/dumps.rs,
# interleaved), and `ptwalk map` on a 4 GiB capture of ~100k runs (its time
# and SVG size). The last line is machine-readable:
#   x86_64_ratio=R limit_ratio=R range_ratio=R vol3_speedup=S memprocfs_speedup=S dump_ratio=R
#   arm64_limit_ratio=R arm64_range_ratio=R arm64_paging_ratio=R
#   ... map_ms=MS map_svg_bytes=N
# (time ratios ours/theirs; speedups theirs/ours; dump_ratio: the slower of
# the full and bitmap dump over the raw image, whole commands; arm64_*: the
# AArch64 walker on the same image as AArch64 descriptors, against the pointer
# chase, independent walks, and the aarch64-paging crate). Installs what it
# needs when missing, on a fresh Debian too: valgrind, a C compiler (cargo
# links with cc), python3-venv, libusb-1.0-0 (MemProcFS's leechcore loads it)
# from apt, and the peers at pinned versions in a venv (.venv-bench/). Takes
# about 3 minutes.
#   scripts/bench.sh --smoke   every benchmark and peer once, a few rounds
#                              each, to see them run (scripts/test.sh); its
#                              ratios mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=false
case ${1:-} in
--smoke) smoke=true ;;
"") ;;
*) echo "bench.sh: unknown option $1 (only --smoke)" >&2; exit 2 ;;
esac
out=target/bench-report
venv=.venv-bench
cargo_bench=(cargo bench --quiet)
# The peers, pinned: leechcorepyc is memprocfs's native half.
peers=(volatility3==2.28.2 memprocfs==5.19.0 leechcorepyc==2.23.3)

log() { echo "bench.sh: $*" >&2; }

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
grep -q 'libusb-1.0.so.0' <<<"$(ldconfig -p 2>/dev/null || true)" || missing+=(libusb-1.0-0)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! "$venv/bin/python" -c 'import volatility3, memprocfs' 2>/dev/null; then
    log "installing ${peers[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "${peers[@]}"
    "$venv/bin/python" -c 'import volatility3, memprocfs'
fi

# A failing build shows its errors; a good one stays quiet.
quietly() {
    local log_file
    log_file=$(mktemp)
    if ! "$@" >"$log_file" 2>&1; then
        cat "$log_file" >&2
        rm -f "$log_file"
        log "failed: $*"
        return 1
    fi
    rm -f "$log_file"
}

log "building"
quietly "${cargo_bench[@]}" --bench walker --bench instructions --bench paired --bench memflow --no-run
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
memflow=$(executable memflow)
# benches/dumps.rs runs the ptwalk binary: it needs the feature, and one
# panic strategy for the binary and the bench (they share libvmwalk's file).
dumps_bench=(--features ptwalk --config 'profile.bench.panic="unwind"' --bench dumps)
quietly "${cargo_bench[@]}" "${dumps_bench[@]}" --no-run
dumps=$("${cargo_bench[@]}" "${dumps_bench[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "dumps" and m.get("executable"):
        print(m["executable"])')

rm -rf "$out" target/criterion
mkdir -p "$out"

if $smoke; then
    times=(--warm-up-time 0.05 --measurement-time 0.1 --sample-size 10)
    rounds=smoke
else
    times=(--warm-up-time 1 --measurement-time 5)
    rounds=
fi
log "criterion (one run of every benchmark)"
VMWALK_BENCH_EXPORT="$out" "${cargo_bench[@]}" --bench walker -- \
    "${times[@]}" --noplot >"$out/criterion.txt" 2>&1 || { cat "$out/criterion.txt" >&2; exit 1; }

log "interleaved ratios"
"$paired" measure $rounds >"$out/paired.txt"

log "memflow batches and page map, and the scan limit, interleaved"
"$memflow" measure $rounds >"$out/memflow.txt"

log "ptwalk on crash dumps and the raw image, interleaved"
"$dumps" measure $rounds >"$out/dumps.txt"

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
"$venv/bin/python" scripts/bench_peers.py --export "$out" --repeat "$($smoke && echo 1 || echo 3)" >"$out/peers.txt"

echo "vmwalk benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(sed -n '0,/^model name\s*: /s/^model name\s*: //p' /proc/cpuinfo)"
python3 scripts/bench_report.py "$out"
