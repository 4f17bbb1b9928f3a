#!/usr/bin/env python3
"""Every PowerShell script the README and docs/ tell a user to run is run as
`powershell -ExecutionPolicy Bypass -File .\\scripts\\X.ps1`: a default
Windows 10/11 client's execution policy (Restricted) refuses
`.\\scripts\\X.ps1` itself ("running scripts is disabled"). `--self-test`
checks that a broken copy is caught."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = re.compile(r"\.\\scripts\\[\w-]+\.ps1")
BYPASS = "powershell -ExecutionPolicy Bypass -File "


def problems(name, text):
    found = []
    # Inline code may wrap: join the lines of each paragraph first.
    flat = re.sub(r"(?<!\n)\n(?!\n)", " ", text)
    for match in SCRIPT.finditer(flat):
        if not flat[:match.start()].endswith(BYPASS):
            line = flat[max(0, match.start() - 40):match.end() + 20].replace("\n", " ")
            found.append("%s: %s run without %r: ...%s..." % (name, match[0], BYPASS.strip(), line))
    return found


def main():
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found += problems(path.relative_to(ROOT), path.read_text())
    if "--self-test" in sys.argv[1:]:
        caught = problems("broken.md", "Run `.\\scripts\\Invoke-VmwalkService.ps1 Status` first.\n")
        if len(caught) != 1:
            found.append("self-test: a broken copy was not caught")
        else:
            print("check-doc-commands: a broken copy is caught")
    for problem in found:
        print("check-doc-commands: " + problem)
    print("check-doc-commands: %s" % ("FAILED" if found else "every script is run with -ExecutionPolicy Bypass -File"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
