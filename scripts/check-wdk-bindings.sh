#!/usr/bin/env bash
# Checks the WDK backend (src/ffi/wdk.rs, the `wdk` feature) on Linux against
# real bindgen output: wdk-sys 0.2.0 ships the bindings its build script
# generated from WDK 10.0.22621 (generated_bindings/). This script assembles
# stand-ins, under target/wdk-bindings/ (git-ignored):
#   - wdk-sys 0.5.2: its published src/ with 0.2.0's constants.rs, types.rs and
#     ntddk.rs copied to OUT_DIR (where 0.5.2's src/ `include!`s its build
#     script's output), and the cfg wdk-build emits for a WDM driver;
#   - wdk 0.5.0, wdk-alloc 0.4.2, wdk-panic 0.5.0: published src/, and a build
#     script that only emits that cfg (theirs run wdk-build, which needs a
#     Windows host with the WDK).
# Then, for x86_64-pc-windows-msvc with Debian's toolchain (as build-sys.sh),
# on a scratch copy of the manifest with [patch.crates-io] pointing at them:
# `cargo check` (no warnings from vmwalk allowed), `cargo clippy -D warnings`,
# and a release link with lld-link against an ntoskrnl.lib made by
# llvm-dlltool (variables marked DATA). The image must import exactly the
# expected names from ntoskrnl.exe, and read both variables through their
# import-table slots. Last line: "check-wdk-bindings: ok" or "...: FAILED (why)".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-pc-windows-msvc
work="$root/target/wdk-bindings"

reported=
fail() {
    reported=1
    echo "check-wdk-bindings: FAILED ($*)"
    exit 1
}
# Any other exit with an error (a command under `set -e`) also ends with a verdict.
trap 'rc=$?; if [ "$rc" -ne 0 ] && [ -z "$reported" ]; then echo "check-wdk-bindings: FAILED (exit status $rc)"; fi' EXIT

if ! [ -x /usr/bin/rustc ] || ! [ -x /usr/bin/cargo ] || ! command -v lld-link-19 >/dev/null \
    || ! [ -d /usr/lib/rustlib/src/rust/library/core ] || ! [ -x /usr/bin/clippy-driver ] \
    || ! command -v llvm-dlltool-19 >/dev/null || ! command -v curl >/dev/null; then
    echo "check-wdk-bindings: installing rustc-web cargo-web rust-web-src rust-web-clippy lld-19 llvm-19 curl" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y rustc-web cargo-web rust-web-src rust-web-clippy lld-19 llvm-19 \
        curl >&2
fi
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_TARGET_DIR

# --- 1. The published crates, checked against Cargo.lock (0.2.0: the crates.io index).
mkdir -p "$work/crates"
fetch_crate() { # name version sha256
    local name=$1 version=$2 sum=$3 file="$work/crates/$1-$2.crate"
    if ! [ -d "$work/crates/$name-$version" ]; then
        curl -fsSL --retry 3 -o "$file.part" "https://static.crates.io/crates/$name/$name-$version.crate" \
            || fail "download of $name $version"
        echo "$sum  $file.part" | sha256sum --check --quiet || fail "checksum of $name $version"
        mv "$file.part" "$file"
        tar -xzf "$file" -C "$work/crates"
    fi
}
locked_sum() { # name version: the checksum Cargo.lock records
    awk -v n="$1" -v v="$2" '$1=="name"{name=$3} $1=="version"{ver=$3}
        $1=="checksum" && name=="\""n"\"" && ver=="\""v"\"" {gsub(/"/,"",$3); print $3}' "$root/Cargo.lock"
}
fetch_crate wdk-sys 0.2.0 36c6fbc666a0535164ebbb16cff321ee2cac38636aa6b9f1712148388f401087
for spec in wdk-sys:0.5.2 wdk:0.5.0 wdk-alloc:0.4.2 wdk-panic:0.5.0; do
    name=${spec%%:*} version=${spec#*:}
    sum=$(locked_sum "$name" "$version")
    [ -n "$sum" ] || fail "Cargo.lock has no $name $version"
    fetch_crate "$name" "$version" "$sum"
done

# --- 2. The stand-ins, assembled in a fresh directory that replaces the last
# one only when something differs (new files would make cargo rebuild wdk-sys:
# its 7 MB of types take about a minute).
standin="$work/standin"
rm -rf "$standin.new"
mkdir -p "$standin.new"
final_standin=$standin
standin="$standin.new"
cfg_directives='    println!("cargo::rustc-check-cfg=cfg(driver_model__driver_type, values(\"WDM\", \"KMDF\", \"UMDF\"))");
    println!("cargo::rustc-cfg=driver_model__driver_type=\"WDM\"");'
make_standin() { # name version dependencies-toml features-toml [extra build.rs lines]
    local name=$1 version=$2 deps=$3 features=$4 extra=${5:-} dir="$standin/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r "$work/crates/$name-$version/src" "$dir/src"
    cat >"$dir/Cargo.toml" <<EOF
# Stand-in assembled by scripts/check-wdk-bindings.sh: $name $version's published
# src/, without its wdk-build build script.
[package]
name = "$name"
version = "$version"
edition = "2024"
publish = false
build = "build.rs"

[lib]
path = "src/lib.rs"

[dependencies]
$deps

[features]
$features
EOF
    cat >"$dir/build.rs" <<EOF
//! What wdk-build's configure_wdk_library_build emits for a WDM driver.
fn main() {
$cfg_directives
$extra
}
EOF
}

# 0.2.0's bindings were generated for edition 2021; 0.5.2 is edition 2024, where
# extern blocks are `unsafe extern` (what bindgen emits for 2024). Nothing else
# in them is changed.
bindings="$work/bindings"
mkdir -p "$bindings"
for f in constants types ntddk; do
    sed -E 's/^extern "C" \{(\r?)$/unsafe extern "C" {\1/' \
        "$work/crates/wdk-sys-0.2.0/generated_bindings/$f.rs" >"$bindings/$f.rs.new"
    if ! cmp -s "$bindings/$f.rs.new" "$bindings/$f.rs"; then mv "$bindings/$f.rs.new" "$bindings/$f.rs"; else rm "$bindings/$f.rs.new"; fi
done
grep -q '^extern "C"' "$bindings"/*.rs && fail "an extern block was not rewritten"

# ntoskrnl.lib: an import library from a .def, as the WDK's would be: the
# functions the driver's objects reference, and the two exported variables as
# DATA (only __imp_X, no thunk: they can only be read through the import table).
# `functions` are the imports the image must have, exactly (keep the list in
# step with the driver: a new import fails the link, an unused one the check).
# `unreferenced` are referenced only by wdk-alloc's dealloc and wdk-panic's
# handler, which nothing calls: /OPT:REF drops them, so they are not imported.
functions=(
    DbgPrintEx ExAllocatePool2 ExFreePoolWithTag IoAllocateMdl IoBuildPartialMdl IoFreeMdl
    MmAllocatePagesForMdlEx MmBuildMdlForNonPagedPool MmCopyMemory MmFreePagesFromMdl
    MmGetPhysicalAddress MmIsDriverVerifying MmMapLockedPagesSpecifyCache MmUnmapLockedPages
    ZwClose ZwOpenKey ZwQueryValueKey PsLookupProcessByProcessId ObfDereferenceObject
    KeStackAttachProcess KeUnstackDetachProcess SeLocateProcessImageName
)
unreferenced=(ExFreePool KeBugCheckEx)
variables=(MmHighestUserAddress MmSystemRangeStart)
libdir="$work/lib"
mkdir -p "$libdir"
{
    echo "LIBRARY ntoskrnl.exe"
    echo "EXPORTS"
    printf '    %s\n' "${functions[@]}" "${unreferenced[@]}"
    printf '    %s DATA\n' "${variables[@]}"
} >"$libdir/ntoskrnl.def"
llvm-dlltool-19 -m i386:x86-64 -d "$libdir/ntoskrnl.def" -l "$libdir/ntoskrnl.lib.new"
if ! cmp -s "$libdir/ntoskrnl.lib.new" "$libdir/ntoskrnl.lib"; then
    mv "$libdir/ntoskrnl.lib.new" "$libdir/ntoskrnl.lib"
else
    rm "$libdir/ntoskrnl.lib.new"
fi

# wdk-sys: the bindings into OUT_DIR, and ntoskrnl.lib (wdk-build links the
# WDK's ntoskrnl.lib into the driver the same way, `-l ntoskrnl`).
make_standin wdk-sys 0.5.2 'rustversion = "1.0.20"
wdk-macros = "=0.5.2"' 'gpio = []
hid = []
parallel-ports = ["gpio"]
spb = []
storage = []
suppress-wdk-linking = []
test-stubs = ["suppress-wdk-linking"]
usb = []' "    let out = std::env::var(\"OUT_DIR\").unwrap();
    for f in [\"constants.rs\", \"types.rs\", \"ntddk.rs\"] {
        let from = format!(\"$bindings/{f}\");
        println!(\"cargo::rerun-if-changed={from}\");
        std::fs::copy(&from, format!(\"{out}/{f}\")).unwrap();
    }
    println!(\"cargo::rustc-link-search=native=$libdir\");
    println!(\"cargo::rustc-link-lib=dylib=ntoskrnl\");
    println!(\"cargo::rerun-if-changed=$libdir/ntoskrnl.lib\");"
make_standin wdk 0.5.0 'cfg-if = "1.0.3"
wdk-sys = "0.5.2"' 'alloc = []'
make_standin wdk-alloc 0.4.2 'wdk-sys = "0.5.2"' ''
make_standin wdk-panic 0.5.0 'wdk = "0.5.0"' ''

if diff -r -q "$standin" "$final_standin" >/dev/null 2>&1; then
    rm -rf "$standin"
else
    rm -rf "$final_standin"
    mv "$standin" "$final_standin"
fi
standin=$final_standin

# --- 3. A scratch package: vmwalk's own sources (symlinked), its manifest plus
# [patch.crates-io], and a copy of Cargo.lock (cargo rewrites the copy, not ours).
# The committed Cargo.toml is untouched; its wdk-build is a build-dependency
# for a Windows host only, so it is not in this (Linux-host) graph, and
# build.rs takes its standalone branch (the driver link arguments).
pkg="$work/driver"
mkdir -p "$pkg"
for item in src build.rs benches tests README.md; do ln -sfn "$root/$item" "$pkg/$item"; done
{
    cat "$root/Cargo.toml"
    cat <<EOF

# Added by scripts/check-wdk-bindings.sh.
[workspace]

[patch.crates-io]
wdk-sys = { path = "$standin/wdk-sys" }
wdk = { path = "$standin/wdk" }
wdk-alloc = { path = "$standin/wdk-alloc" }
wdk-panic = { path = "$standin/wdk-panic" }
EOF
} >"$pkg/Cargo.toml.new"
cmp -s "$pkg/Cargo.toml.new" "$pkg/Cargo.toml" && rm "$pkg/Cargo.toml.new" || mv "$pkg/Cargo.toml.new" "$pkg/Cargo.toml"
if ! cmp -s "$root/Cargo.lock" "$pkg/Cargo.lock.root"; then
    cp "$root/Cargo.lock" "$pkg/Cargo.lock"
    cp "$root/Cargo.lock" "$pkg/Cargo.lock.root"
fi

cd "$pkg"
export CARGO_TARGET_DIR="$work/target"
build_std=(-Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem)
# The linker setting is part of every unit's fingerprint: check and clippy get
# it too, or each step would rebuild core for the next.
common=(--release --lib --no-default-features --features wdk --target "$target" -j1 "${build_std[@]}"
    --config "target.$target.linker=\"lld-link-19\"")

# Each step's output goes to the terminal and to a log the checks read.
run() { # log-name command...
    local log="$work/$1.log"
    shift
    "$@" 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

echo "check-wdk-bindings: cargo check (wdk feature, $target)"
run check /usr/bin/cargo check "${common[@]}" || fail "cargo check"
# The patched crate graph is the one built: wdk-sys is the stand-in ...
# (read whole, then grep: a pipe into an early-exiting grep fails at random under pipefail)
tree=$(/usr/bin/cargo tree --target "$target" --no-default-features --features wdk -e normal -i wdk-sys 2>/dev/null || true)
grep -q "wdk-sys v0.5.2 ($standin/wdk-sys)" <<<"$tree" || fail "wdk-sys is not the stand-in"
# ... and wdk-build (a build-dependency for Windows hosts only) is not in it.
[ -z "$(/usr/bin/cargo tree --target "$target" --no-default-features --features wdk -i wdk-build 2>/dev/null)" ] \
    || fail "wdk-build is in the graph"
# No warnings at all: not vmwalk's, not the stand-ins', not cargo's (an unused
# [patch] entry would be one). Cargo replays a fresh crate's warnings.
if grep -E '^warning' "$work/check.log"; then
    fail "cargo check printed warnings"
fi

echo "check-wdk-bindings: cargo clippy -D warnings"
run clippy /usr/bin/cargo clippy "${common[@]}" -- -D warnings || fail "cargo clippy"

echo "check-wdk-bindings: link with lld-link-19 and ntoskrnl.lib (llvm-dlltool-19)"
run build /usr/bin/cargo build "${common[@]}" || fail "link"
image="$CARGO_TARGET_DIR/$target/release/vmwalk.dll"
cp "$image" "$work/vmwalk-wdk.sys"
image="$work/vmwalk-wdk.sys"

# --- 4. The image's imports: exactly the .def's names, all from ntoskrnl.exe.
llvm-readobj-19 --coff-imports "$image" >"$work/imports.txt"
dlls=$(awk '/^  Name: /{print $2}' "$work/imports.txt" | sort -u)
[ "$dlls" = "ntoskrnl.exe" ] || fail "imports from: $(echo $dlls)"
actual=$(awk '/^  Symbol: /{print $2}' "$work/imports.txt" | sort)
expected=$(printf '%s\n' "${functions[@]}" "${variables[@]}" | sort)
if [ "$actual" != "$expected" ]; then
    diff <(echo "$expected") <(echo "$actual") || true
    fail "the imported names are not the expected ones (< expected, > imported)"
fi
echo "check-wdk-bindings: imports from ntoskrnl.exe: $(echo $actual | wc -w) names, as listed"

# Both variables are read through their import-table slots: a `mov` loads the
# slot (the variable's address), and a load through that register follows.
base=$(llvm-readobj-19 --file-headers "$image" | awk '/ImageBase:/{print $2}')
llvm-objdump-19 -d -M intel --no-show-raw-insn "$image" >"$work/disasm.txt"
python3 - "$work/imports.txt" "$work/disasm.txt" "$base" "${variables[@]}" <<'EOF' || fail "a variable is not read through the import table"
import re, sys
imports, disasm, base = open(sys.argv[1]).read(), open(sys.argv[2]).read().splitlines(), int(sys.argv[3], 16)
# llvm-readobj prints, per DLL, ImportAddressTableRVA and the symbols in order.
iat = {}
for block in imports.split("Import {")[1:]:
    table = int(re.search(r"ImportAddressTableRVA: (0x[0-9A-Fa-f]+)", block).group(1), 16)
    for i, name in enumerate(re.findall(r"Symbol: (\S+)", block)):
        iat[name] = base + table + 8 * i
ok = True
for var in sys.argv[4:]:
    slot = iat[var]
    reads = 0
    for i, line in enumerate(disasm):
        m = re.search(r"mov\s+(r\w+), qword ptr \[rip \+ 0x[0-9a-f]+\]\s+# 0x([0-9a-f]+)", line)
        if not m or int(m.group(2), 16) != slot:
            continue
        reg = m.group(1)
        if any(re.search(r"\[" + reg + r"\]", later) for later in disasm[i + 1 : i + 6]):
            reads += 1
    print(f"check-wdk-bindings: {var}: IAT slot {slot:#x}, {reads} load(s) of the slot followed by a read through it")
    ok &= reads > 0
sys.exit(0 if ok else 1)
EOF

echo "check-wdk-bindings: ok ($image)"
