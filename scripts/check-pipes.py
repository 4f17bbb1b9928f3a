#!/usr/bin/env python3
"""No pipe into a reader that may stop early (`grep -q`, `grep -m`, `head`)
in a bash script under `pipefail`: when the reader exits, the writer gets
SIGPIPE and the pipeline fails although the line was there, at random.
Read the output whole first (`out=$(cmd || true)`, then `grep -q ... <<<"$out"`).
`--self-test` checks that a broken copy is caught."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EARLY_READER = re.compile(r"\|\s*(grep\s+(-[a-zA-Z]*[qm]|--quiet|--max-count)\b|head\b)")


def problems(path, text):
    if not re.search(r"^\s*set\s+-[a-z]*o\s+pipefail|^\s*set\s+-o\s+pipefail|pipefail", text, re.M):
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if EARLY_READER.search(code):
            found.append("%s:%d: a pipe into a reader that stops early, under pipefail: %s"
                         % (path, number, line.strip()))
    return found


def scripts():
    return sorted(ROOT.glob("scripts/*.sh")) + [ROOT / ".ci" / "run"]


def main():
    found = []
    for path in scripts():
        if path.exists():
            found += problems(path.relative_to(ROOT), path.read_text())
    if "--self-test" in sys.argv[1:]:
        broken = "set -euo pipefail\nif rustup toolchain list | grep -q '^nightly'; then :; fi\nx=$(cmd | head -n 1)\n"
        caught = problems("broken.sh", broken)
        if len(caught) != 2:
            found.append("self-test: a broken copy was not caught: %r" % caught)
        else:
            print("check-pipes: a broken copy is caught (%d lines)" % len(caught))
    for problem in found:
        print("check-pipes: " + problem)
    print("check-pipes: %s" % ("FAILED" if found else "no pipe into an early reader under pipefail"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
