#!/usr/bin/env bash
# The Windows CI workflow, checked as far as Linux allows (it runs only on
# GitHub's Windows runners): the schema (action-validator, from crates.io),
# its bash steps (shellcheck), its PowerShell steps (the tree-sitter parser of
# scripts/check-powershell.sh). Then broken copies must fail each check.
# Installs what it needs: shellcheck and python3-yaml (apt), action-validator
# (cargo install, pinned).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workflow="$root/.github/workflows/build.yaml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if ((${#missing[@]})); then
    echo "check-workflows: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! grep -q ' 0\.9\.0$' <<<"$(action-validator --version 2>/dev/null || true)"; then
    echo "check-workflows: installing action-validator 0.9.0 (cargo install)" >&2
    cargo install --quiet --locked action-validator --version 0.9.0 >&2
fi

check() { # a workflow file; 0 when every check passes
    local file=$1 steps="$work/steps-$RANDOM" status=0
    action-validator "$file" || status=1
    python3 "$root/scripts/workflow_steps.py" "$file" "$steps" >/dev/null || return 1
    if compgen -G "$steps/*.sh" >/dev/null; then
        shellcheck -s bash "$steps"/*.sh || status=1
    fi
    if compgen -G "$steps/*.ps1" >/dev/null; then
        PSCHECK_SYNTAX_ONLY=1 bash "$root/scripts/check-powershell.sh" "$steps" 2>&1 >/dev/null || status=1
    fi
    return $status
}

if ! check "$workflow"; then
    echo "check-workflows: $workflow: FAILED"
    exit 1
fi
echo "check-workflows: $workflow: schema, bash and PowerShell steps ok"

# Each check must catch its own kind of mistake.
failed=0
broken() { # name, sed expression applied to a copy, what the failing check must say
    local copy="$work/broken.yaml" said
    sed -e "$2" "$workflow" >"$copy"
    if cmp -s "$copy" "$workflow"; then
        echo "check-workflows: broken copy '$1' changed nothing: FAILED"
        failed=$((failed + 1))
    elif said=$(check "$copy" 2>&1); then
        echo "check-workflows: broken copy '$1' passed: FAILED"
        failed=$((failed + 1))
    elif ! grep -q -- "$3" <<<"$said"; then
        echo "check-workflows: broken copy '$1' failed, but not with '$3': FAILED"
        failed=$((failed + 1))
    else
        echo "check-workflows: broken copy '$1' fails ($3): ok"
    fi
}
broken "a misspelt job key" 's/^    runs-on: windows-2025$/    run-on: windows-2025/' 'run-on'
broken "a bash step shellcheck rejects" 's|^        run: bash scripts/test.sh$|        run: cd $(dirname scripts/test.sh) \&\& bash test.sh|' 'SC2046'
broken "a PowerShell step that does not parse" 's|^        run: clang --version$|        run: if ($true { clang --version|' 'syntax error\|missing'
((failed == 0))
