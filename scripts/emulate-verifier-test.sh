#!/usr/bin/env bash
# Driver Verifier in the emulator (issue 10): the default method passes with
# the Verifier model on; the design's first sequence runs on a retail kernel,
# is refused when the driver is verified, and, forced past that refusal,
# stops with bug check 0xC4, subcode 0xB2.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0

expect() { # name, wanted exit (0 or nonzero), wanted output line (a fixed string), options...
    local name=$1 code=$2 wanted=$3
    shift 3
    scripts/emulate.sh "$@" >/tmp/emulate-verifier.out 2>&1
    local got=$?
    if { [ "$code" = 0 ] && [ "$got" != 0 ]; } || { [ "$code" != 0 ] && [ "$got" = 0 ]; } \
        || ! grep -qF -- "$wanted" /tmp/emulate-verifier.out; then
        echo "verifier: $name: FAILED (exit $got; want $code and a line with: $wanted)"
        grep -E '^(harness|\*\*\*)' /tmp/emulate-verifier.out | tail -n 5
        failed=$((failed + 1))
    else
        echo "verifier: $name: ok"
    fi
}

expect "--verifier: the default method is clean" 0 \
    "vmwalk: MappingMethod PartialMdl (the default)" --verifier
expect "--seed-sequence: a retail kernel maps it" 0 \
    "vmwalk: MappingMethod NonPagedPoolMdl (from Parameters)" --seed-sequence
expect "--verifier --seed-sequence: bug check 0xC4, 0xB2" nonzero \
    "*** STOP: 0x000000C4 (0x00000000000000B2, " --verifier --seed-sequence
expect "--verifier --seed-sequence: says the stop is the demonstration" nonzero \
    "harness: expected: the design's sequence stops here under Driver Verifier" --verifier --seed-sequence
expect "asked for under Verifier: refused, the default runs" 0 \
    "vmwalk: MappingMethod NonPagedPoolMdl refused: Driver Verifier checks this driver" \
    --verifier --registry MappingMethod=NonPagedPoolMdl
rm -f /tmp/emulate-verifier.out
echo "verifier: $((5 - failed)) passed, $failed failed"
((failed == 0))
