#!/usr/bin/env bash
# PowerShell syntax check that runs on Linux: parses every .ps1/.psm1/.psd1
# under scripts/ (or the files/folders given) with the tree-sitter PowerShell
# grammar and fails on any ERROR or MISSING node. Also enforces what Windows
# PowerShell 5.1 needs and the project's script conventions:
#   - ASCII only (5.1 reads BOM-less files as ANSI, so UTF-8 text breaks);
#   - .ps1/.psm1 set 'Set-StrictMode -Version Latest' and
#     "$ErrorActionPreference = 'Stop'".
# No real PowerShell parser is available here (pwsh is in none of our
# registries), so this catches syntax errors, not every semantic one.
# Installs its two wheels into build/pscheck-venv (gitignored) on first use.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/build/pscheck-venv"
py="$venv/bin/python"

if ! "$py" -c 'import tree_sitter, tree_sitter_powershell' 2>/dev/null; then
    # Debian splits venv/ensurepip into python3-venv.
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "check-powershell: installing python3-venv" >&2
            apt-get install -y -qq --no-install-recommends python3 python3-venv >&2 ||
                { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >&2; }
        else
            echo "check-powershell: needs python3 with the venv module (Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    rm -rf "$venv"
    echo "check-powershell: installing tree-sitter into $venv" >&2
    python3 -m venv "$venv"
    "$py" -m pip install --quiet --disable-pip-version-check \
        'tree-sitter==0.26.1' 'tree-sitter-powershell==0.26.4' >&2
fi

if [ "$#" -eq 0 ]; then
    set -- "$root/scripts" "$root/tests/powershell"
fi

exec "$py" - "$@" <<'PY'
import os
import pathlib
import re
import sys

import tree_sitter
import tree_sitter_powershell

parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
EXTENSIONS = {".ps1", ".psm1", ".psd1"}
STRICT = re.compile(r"^\s*Set-StrictMode\s+-Version\s+Latest\s*$", re.M | re.I)
STOP = re.compile(r"^\s*\$ErrorActionPreference\s*=\s*'Stop'\s*$", re.M | re.I)


def files(args):
    for arg in args:
        path = pathlib.Path(arg)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS)
        elif path.is_file():
            yield path
        else:
            raise SystemExit(f"check-powershell: no such file or folder: {arg}")


def syntax_errors(tree):
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            yield node, f"missing '{node.type}'"
        elif node.is_error:
            yield node, "syntax error"
        elif node.has_error:
            stack.extend(reversed(node.children))


def check(path):
    problems = []
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    else:
        for number, line in enumerate(data.split(b"\n"), 1):
            if any(byte > 0x7F for byte in line):
                problems.append(f"{path}:{number}: non-ASCII byte without a UTF-8 BOM (Windows PowerShell 5.1 misreads it)")
    lines = data.decode("utf-8", "replace").split("\n")
    for node, what in syntax_errors(parser.parse(data)):
        row, column = node.start_point
        end_row, end_column = node.end_point
        source = lines[row].rstrip() if row < len(lines) else ""
        problems.append(f"{path}:{row + 1}:{column + 1}: {what} (up to {end_row + 1}:{end_column + 1})\n    {source}")
    # PSCHECK_SYNTAX_ONLY=1: workflow steps, which are snippets, not scripts.
    if path.suffix.lower() in {".ps1", ".psm1"} and os.environ.get("PSCHECK_SYNTAX_ONLY") != "1":
        text = data.decode("utf-8", "replace")
        if not STRICT.search(text):
            problems.append(f"{path}: no 'Set-StrictMode -Version Latest' line")
        if not STOP.search(text):
            problems.append(f"{path}: no \"$ErrorActionPreference = 'Stop'\" line")
    return problems


checked = 0
failures = []
for path in files(sys.argv[1:]):
    checked += 1
    problems = check(path)
    failures.extend(problems)
    print(f"{'FAIL' if problems else 'ok  '} {path}")

for problem in failures:
    print(problem, file=sys.stderr)
if checked == 0:
    raise SystemExit("check-powershell: no PowerShell files found")
print(f"check-powershell: {checked} file(s), {len(failures)} problem(s)")
sys.exit(1 if failures else 0)
PY
