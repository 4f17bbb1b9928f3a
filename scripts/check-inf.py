"""Checks inf/vmwalk.inx against the INF rules Microsoft's "Creating a
primitive driver" page lists (windows-hardware/drivers/develop/
creating-a-primitive-driver): a complete [Version] (Provider, Class,
ClassGuid), no [Manufacturer], [DefaultInstall] sections architecture
decorated only, no [DefaultUninstall] without LegacyUninstall=1, and files in
the driver store (dirid 13). Also DCH's declarative rule: only CopyFiles,
AddReg and AddService in the install sections. With --self-test, broken
copies must fail. Prints one line per rule and a closing line."""

import re
import sys

INX = "inf/vmwalk.inx"
DECLARATIVE = {"CopyFiles", "AddReg", "AddService", "DelReg", "DelFiles"}


def sections(text):
    """{section name (as written): [(key, value)]}, comments stripped."""
    parsed, current = {}, None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            current = m[1].strip()
            parsed.setdefault(current, [])
        elif current is not None:
            key, _, value = line.partition("=")
            parsed[current].append((key.strip(), value.strip()))
    return parsed


def check(text):
    """[(rule, ok)]."""
    s = sections(text)
    lower = {name.lower(): name for name in s}
    version = dict(s.get("Version", []))
    default = [name for name in s if name.lower().startswith("defaultinstall")]
    installs = [name for name in default if not name.lower().endswith(".services")]
    directives = {key for name in installs for key, _ in s[name]}
    uninstall = [name for name in s if name.lower().startswith("defaultuninstall")]
    return [
        ("[Version] has Provider, Class and ClassGuid",
         all(version.get(key) for key in ("Provider", "Class", "ClassGuid"))),
        ("no [Manufacturer] section", "manufacturer" not in lower),
        ("[DefaultInstall] sections are all architecture decorated",
         bool(installs) and all(re.match(r"DefaultInstall\.NT(\$ARCH\$|amd64|arm64)(\.|$)", n, re.I) for n in default)),
        ("no [DefaultUninstall] unless LegacyUninstall=1",
         all(("LegacyUninstall", "1") in s[name] for name in uninstall)),
        ("files go to the driver store (DestinationDirs 13, ServiceBinary %13%)",
         dict(s.get("DestinationDirs", [])).get("DefaultDestDir") == "13"
         and any(key == "ServiceBinary" and value.startswith("%13%\\") for sec in s.values() for key, value in sec)),
        ("only declarative directives (CopyFiles, AddReg, AddService)", bool(directives) and directives <= DECLARATIVE),
        ("a kernel service, demand start (ServiceType 1, StartType 3)",
         any(("ServiceType", "1") in sec and ("StartType", "3") in sec for sec in s.values())),
    ]


def main():
    text = open(INX).read()
    failed = 0
    for rule, ok in check(text):
        print("inf-check: %s: %s" % (rule, "ok" if ok else "FAILED"))
        failed += not ok
    if "--self-test" in sys.argv:
        broken = {
            "a [Manufacturer] section": text + "\n[Manufacturer]\n%P% = Models, NTamd64\n",
            "an undecorated [DefaultInstall]": text + "\n[DefaultInstall]\nCopyFiles = vmwalk.CopyFiles\n",
            "a missing ClassGuid": re.sub(r"(?m)^ClassGuid.*$", "", text),
            "a co-installer style directive": text.replace("CopyFiles = vmwalk.CopyFiles",
                                                           "CopyFiles = vmwalk.CopyFiles\nRegisterDlls = x", 1),
            "files outside the driver store": text.replace("DefaultDestDir = 13", "DefaultDestDir = 12"),
        }
        for name, copy in broken.items():
            caught = not all(ok for _, ok in check(copy))
            print("inf-check self-test: %s is %s" % (name, "caught" if caught else "MISSED"))
            failed += not caught
    print("inf-check: %s" % ("all rules hold" if not failed else "%d FAILED" % failed))
    return 1 if failed else 0


sys.exit(main())
