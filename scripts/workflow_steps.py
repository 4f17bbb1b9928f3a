#!/usr/bin/env python3
"""Writes each `run:` step of a GitHub Actions workflow to its own file, by
the shell it runs in, for the linters: `<job>-<n>.sh` (bash: the Linux
runners' default) and `<job>-<n>.ps1` (pwsh: the Windows runners' default,
or `shell: pwsh`). `${{ expr }}` becomes a plain word, as GitHub substitutes
it before the shell sees the text.

Usage: workflow_steps.py WORKFLOW.yaml OUTDIR"""
import re
import sys
from pathlib import Path

import yaml

EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def main():
    workflow, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(workflow.read_text())
    written = 0
    for name, job in (spec.get("jobs") or {}).items():
        default = "pwsh" if "windows" in str(job.get("runs-on", "")) else "bash"
        default = ((job.get("defaults") or {}).get("run") or {}).get("shell", default)
        for number, step in enumerate(job.get("steps") or [], 1):
            if "run" not in step:
                continue
            shell = step.get("shell", default)
            body = EXPRESSION.sub("EXPRESSION", step["run"])
            if shell == "bash":
                text = "#!/usr/bin/env bash\n# %s, step %d: %s\nset -e\n%s" % (name, number, step.get("name", ""), body)
                (out / ("%s-%02d.sh" % (name, number))).write_text(text)
            elif shell in ("pwsh", "powershell"):
                (out / ("%s-%02d.ps1" % (name, number))).write_text(body)
            else:
                sys.exit("workflow_steps: %s step %d: shell %r is neither bash nor pwsh" % (name, number, shell))
            written += 1
    print("workflow_steps: %d run steps of %s" % (written, workflow))


if __name__ == "__main__":
    main()
