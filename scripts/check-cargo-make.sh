#!/usr/bin/env bash
# `cargo make` on Linux, as far as it goes without the WDK: our Makefile.toml
# read by the real cargo-make against the rust-driver-makefile.toml that
# crates.io's wdk-build 0.6.0 ships (the file Makefile.toml's load_script
# fetches on Windows; the script itself needs wdk-build, which builds only
# on Windows, so the check's copy drops it). It checks that every task we
# override or depend on exists upstream, and the order `cargo make` would
# run the package flow in (--print-steps); then that a renamed upstream task
# fails the check. Installs cargo-make (pinned, cargo install) and curl.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! grep -q '^cargo-make 0\.37\.24$' <<<"$(cargo make --version 2>/dev/null || true)"; then
    echo "check-cargo-make: installing cargo-make 0.37.24 (cargo install)" >&2
    cargo install --quiet --locked --no-default-features cargo-make --version 0.37.24 >&2
fi
if ! command -v curl >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
fi

# wdk-build 0.6.0 as crates.io serves it, checked against Cargo.lock.
sum=$(awk '$1=="name"{name=$3} $1=="version"{ver=$3}
    $1=="checksum" && name=="\"wdk-build\"" && ver=="\"0.6.0\"" {gsub(/"/,"",$3); print $3}' "$root/Cargo.lock")
[ -n "$sum" ] || { echo "check-cargo-make: Cargo.lock has no wdk-build 0.6.0"; exit 1; }
curl -fsSL --retry 3 -o "$work/wdk-build.crate" https://static.crates.io/crates/wdk-build/wdk-build-0.6.0.crate
echo "$sum  $work/wdk-build.crate" | sha256sum --check --quiet
tar -xzf "$work/wdk-build.crate" -C "$work"
upstream="$work/wdk-build-0.6.0/rust-driver-makefile.toml"

# The package flow, in the order wdk-build 0.6.0 runs it (run_task
# package-driver, whose dependencies follow), with our copy-inx-to-output.
expected_flow="wdk-build-init setup-wdk-config-env-vars build generate-driver-binary-file
copy-driver-binary-to-package copy-pdb-to-package copy-inx-to-output stampinf copy-inf-to-package
generate-certificate copy-certificate-to-package sign-driver-binary verify-signature-driver-binary
inf2cat sign-cat verify-signature-cat infverif package-driver"

check() { # the upstream makefile to check against; 0 when all holds
    local makefile=$1 tree="$work/tree" problems=0
    rm -rf "$tree" && mkdir -p "$tree"
    git -C "$root" ls-files -z | (cd "$root" && xargs -0 tar -cf -) | tar -xf - -C "$tree"
    mkdir -p "$tree/target" && cp "$makefile" "$tree/target/rust-driver-makefile.toml"
    # Without load_script; with a public task that depends on the private flow.
    python3 - "$tree/Makefile.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text, count = re.subn(r"(?ms)^\[config\]\nload_script = '''.*?'''\n", "", text)
assert count == 1, "Makefile.toml: no [config] load_script to drop"
text += '\n[tasks.vmwalk-package-steps]\ndependencies = ["package-driver"]\n'
open(path, "w").write(text)
PY
    # Every task we define must be one upstream defines (else it silently runs nowhere).
    local ours
    ours=$(python3 -c 'import sys, tomllib
ours = tomllib.load(open(sys.argv[1], "rb")).get("tasks", {})
theirs = tomllib.load(open(sys.argv[2], "rb")).get("tasks", {})
print(" ".join(t for t in ours if t != "vmwalk-package-steps" and t not in theirs))' "$tree/Makefile.toml" "$makefile")
    if [ -n "$ours" ]; then
        echo "check-cargo-make: we override tasks wdk-build 0.6.0 does not define: $ours"
        problems=1
    fi
    local steps flow
    steps=$(cd "$tree" && cargo make --makefile Makefile.toml --print-steps --output-format short-description \
        vmwalk-package-steps 2>/dev/null) || { echo "check-cargo-make: cargo make --print-steps failed"; return 1; }
    flow=$(sed -n 's/^[0-9]*\. \([a-z0-9-]*\) - .*/\1/p' <<<"$steps" | grep -v -x -e vmwalk-package-steps -e end | tr '\n' ' ')
    local want
    want=$(tr '\n' ' ' <<<"$expected_flow")
    if [ "${flow% }" != "${want% }" ]; then
        echo "check-cargo-make: the package flow is: ${flow% }"
        echo "check-cargo-make: expected:            ${want% }"
        problems=1
    fi
    # `cargo make` alone runs the default task, upstream's alias of
    # package-driver-flow (which builds first).
    steps=$(cd "$tree" && cargo make --makefile Makefile.toml --print-steps --output-format short-description 2>/dev/null) \
        || { echo "check-cargo-make: cargo make --print-steps (default) failed"; return 1; }
    flow=$(sed -n 's/^[0-9]*\. \([a-z0-9-]*\) - .*/\1/p' <<<"$steps" | tr '\n' ' ')
    local alias
    alias=$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["tasks"].get("default", {}).get("alias", ""))' "$makefile")
    if [ "${flow% }" != "wdk-build-init build default end" ] || [ "$alias" != package-driver-flow ]; then
        echo "check-cargo-make: cargo make (default) runs: ${flow% } (default is an alias of '$alias')"
        problems=1
    fi
    # Our copy-inx-to-output is the one that runs (the .inx lives in inf/).
    steps=$(cd "$tree" && cargo make --makefile Makefile.toml --print-steps vmwalk-package-steps 2>/dev/null)
    if ! grep -q 'inf/vmwalk.inx' <<<"$steps"; then
        echo "check-cargo-make: copy-inx-to-output is not ours (inf/vmwalk.inx)"
        problems=1
    fi
    return $problems
}

if ! check "$upstream"; then
    echo "check-cargo-make: FAILED against wdk-build 0.6.0's rust-driver-makefile.toml"
    exit 1
fi
echo "check-cargo-make: Makefile.toml against wdk-build 0.6.0: every task we override exists, the package flow is as expected"

# A renamed upstream task must fail the check.
failed=0
for renamed in copy-inx-to-output package-driver stampinf; do
    sed -e "s/\\b$renamed\\b/$renamed-renamed/g" "$upstream" >"$work/renamed.toml"
    if check "$work/renamed.toml" >/dev/null 2>&1; then
        echo "check-cargo-make: upstream task $renamed renamed: not caught: FAILED"
        failed=1
    else
        echo "check-cargo-make: upstream task $renamed renamed: caught: ok"
    fi
done
((failed == 0))
