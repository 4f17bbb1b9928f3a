#!/usr/bin/env bash
# Builds vmwalk.sys on Linux without the WDK (the standalone build): Debian's
# rustc with -Zbuild-std for x86_64-pc-windows-msvc (or, with --target aarch64,
# aarch64-pc-windows-msvc), linked by lld-link.
# Installs the toolchain when missing. The last line of output is the .sys path.
# With --clippy it lints the driver for its real target instead (Debian's clippy).
# Usage: build-sys.sh [--target x86_64|aarch64] [--clippy]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-pc-windows-msvc
clippy=false
while (($# > 0)); do
    case $1 in
        --target)
            case ${2:-} in
                x86_64 | x64 | x86_64-pc-windows-msvc) target=x86_64-pc-windows-msvc ;;
                aarch64 | arm64 | aarch64-pc-windows-msvc) target=aarch64-pc-windows-msvc ;;
                *) echo "build-sys: --target takes x86_64 or aarch64, not '${2:-}'" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --clippy) clippy=true; shift ;;
        *) echo "build-sys: unknown option '$1' (usage: build-sys.sh [--target x86_64|aarch64] [--clippy])" >&2; exit 2 ;;
    esac
done

if ! [ -x /usr/bin/rustc ] || ! [ -x /usr/bin/cargo ] || ! command -v lld-link-19 >/dev/null \
    || ! [ -d /usr/lib/rustlib/src/rust/library/core ] || ! [ -x /usr/bin/clippy-driver ]; then
    echo "build-sys: installing rustc-web cargo-web rust-web-src rust-web-clippy lld-19 llvm-19" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y rustc-web cargo-web rust-web-src rust-web-clippy lld-19 llvm-19 >&2
fi

# Debian's toolchain, not rustup's proxies; RUSTC_BOOTSTRAP allows -Zbuild-std.
# A separate target dir keeps the host builds' artifacts intact: below the
# user's CARGO_TARGET_DIR when set, else below the checkout's target/.
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
targets=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR="$targets/standalone"
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS
cd "$root"
build_std=(-Zbuild-std=core,compiler_builtins -Zbuild-std-features=compiler-builtins-mem)
if $clippy; then
    # Its own target dir: clippy's and the build's artifacts would invalidate each other.
    export CARGO_TARGET_DIR="$targets/standalone-clippy"
    exec /usr/bin/cargo clippy --release --lib --no-default-features --target "$target" "${build_std[@]}" -- -D warnings
fi
/usr/bin/cargo build --release --lib --no-default-features --target "$target" \
    "${build_std[@]}" --config "target.$target.linker=\"lld-link-19\"" >&2

out="$CARGO_TARGET_DIR/$target/release"
cp "$out/vmwalk.dll" "$out/vmwalk.sys"
echo "$out/vmwalk.sys"
