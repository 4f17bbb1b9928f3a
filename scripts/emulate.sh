#!/usr/bin/env bash
# Builds vmwalk.sys (scripts/build-sys.sh) and runs it under speakeasy-emulator:
# DriverEntry, then DriverUnload, printing the driver's DbgPrintEx lines as the
# debugger shows them. The emulator lives in .venv, created on first use.
#
#   scripts/emulate.sh                    run the driver
#   scripts/emulate.sh --verifier         model Driver Verifier's MDL rules (a violation is bug check 0xC4)
#   scripts/emulate.sh --seed-sequence    the design's first sequence (Parameters\MappingMethod = NonPagedPoolMdl);
#                                         with --verifier, forced past the driver's refusal: stops with 0xC4, 0xB2
#   scripts/emulate.sh --registry N=V     a REG_SZ value under the service's Parameters key
#   scripts/emulate.sh --addresses A,B [--process-id 6732]
#                                         Parameters\Addresses for the driver to walk; the world gains a user
#                                         process 6732 with pages at 0x7ff6c0001000 (present), 0x7ff6c0002000
#                                         (demand zero), 0x7ff6c0003000 (transition), 0x7ff6c0004000 (page file)
#                                         and a 2 MiB page at 0x2104a600000
#   scripts/emulate.sh --named-addresses  good and bad named addresses, checked against the world
#   scripts/emulate.sh --fault-injection  make each kernel call fail in turn, for both mapping methods
#   scripts/emulate.sh --fail CALL        make one call fail
#   scripts/emulate.sh --self-test        check the harness catches leaks, unhandled imports, wrong addresses
#   scripts/emulate.sh --la57             run in a 5-level paging world
#   scripts/emulate.sh --seed N           repeat a world: the same random choices (addresses, frames, self-map
#                                         index) as the run that printed "seed N"; with any mode above
#   scripts/emulate.sh --corrupt KIND     break the first address's walk (not-present | reserved | transition | pagefile | freed)
#   scripts/emulate.sh --corruption-tests each corruption in 4- and 5-level worlds, and a clean 5-level world
#   scripts/emulate.sh --check-image      check the .sys image rules, and that broken copies fail
#                                         (anywhere; other options then run the driver as well)
#   scripts/emulate.sh --arm64            build the ARM64 .sys (aarch64-pc-windows-msvc) and run
#                                         DriverEntry/DriverUnload under unicorn's AArch64 CPU, in a
#                                         world laid out as Windows on ARM64 (scripts/emulator/arm64.py,
#                                         with its self-test); with --check-image, its image checks first
#   scripts/emulate.sh --help             this text
set -euo pipefail

# Options first, before any install or build: --help and bad options cost nothing.
check_image=false
arm64=false
harness_args=()
for arg in "$@"; do
    case $arg in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    --check-image) check_image=true ;;
    --arm64) arm64=true ;;
    *) harness_args+=("$arg") ;;
    esac
done
if $arm64 && ((${#harness_args[@]} > 0)); then
    echo "emulate.sh: --arm64 takes only --check-image: the other options drive the x64 harness (speakeasy)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
requirements="$root/scripts/emulator/requirements.txt"

if ! "$venv/bin/python" -c 'import speakeasy, pefile' 2>/dev/null; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv >&2
    fi
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet -r "$requirements" >&2
fi

harness=("$venv/bin/python" "$root/scripts/emulator/harness.py")
"${harness[@]}" --parse-only - "${harness_args[@]}" || exit

if $arm64; then
    sys=$("$root/scripts/build-sys.sh" --target aarch64 | tail -n 1)
    if $check_image; then
        "$venv/bin/python" "$root/scripts/emulator/check_image.py" --machine arm64 --self-test "$sys"
    fi
    exec "$venv/bin/python" "$root/scripts/emulator/arm64.py" --self-test "$sys"
fi
sys=$("$root/scripts/build-sys.sh" | tail -n 1)
if $check_image; then
    "$venv/bin/python" "$root/scripts/emulator/check_image.py" --self-test "$sys"
    ((${#harness_args[@]} > 0)) || exit 0
fi
exec "${harness[@]}" "$sys" "${harness_args[@]}"
