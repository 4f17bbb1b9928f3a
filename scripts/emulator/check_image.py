"""Check that vmwalk.sys is a driver image Windows (with HVCI) will load.

Rules: machine AMD64, subsystem NATIVE, entry point = DriverEntry, imports only
the allow-listed functions of ntoskrnl.exe, no section both writable and
executable, SectionAlignment 0x1000, a valid checksum, and DllCharacteristics
with DYNAMIC_BASE, NX_COMPAT and FORCE_INTEGRITY.

--self-test also breaks each rule in a patched copy (with the checksum fixed
afterwards, so only that rule is broken) and requires the check to catch
exactly that rule.
"""

import argparse
import sys

import pefile

# Exactly what the driver calls. A panic path surviving optimization would add
# KeBugCheckEx (the panic handler's only import) and fail this check.
ALLOWED_IMPORTS = {
    b"ntoskrnl.exe": {
        b"DbgPrintEx", b"ExAllocatePool2", b"ExFreePoolWithTag", b"IoAllocateMdl",
        b"IoFreeMdl", b"MmBuildMdlForNonPagedPool", b"MmMapLockedPagesSpecifyCache",
        b"MmUnmapLockedPages", b"MmCopyMemory", b"MmGetPhysicalAddress",
        b"MmAllocatePagesForMdlEx", b"MmFreePagesFromMdl", b"IoBuildPartialMdl",
        b"MmIsDriverVerifying", b"ZwOpenKey", b"ZwQueryValueKey", b"ZwClose",
        b"PsLookupProcessByProcessId", b"ObfDereferenceObject", b"KeStackAttachProcess",
        b"KeUnstackDetachProcess", b"SeLocateProcessImageName",
        # Exported variables (the IAT slot holds their address).
        b"MmHighestUserAddress", b"MmSystemRangeStart",
    },
}
IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_SUBSYSTEM_NATIVE = 1
SCN_EXECUTE, SCN_WRITE = 0x2000_0000, 0x8000_0000
REQUIRED_DLL_CHARACTERISTICS = {"DYNAMIC_BASE": 0x40, "FORCE_INTEGRITY": 0x80, "NX_COMPAT": 0x100}


def check(data):
    """{rule: problem or None} for the image in `data`."""
    pe = pefile.PE(data=data)
    opt = pe.OPTIONAL_HEADER
    results = {}

    results["machine AMD64"] = (None if pe.FILE_HEADER.Machine == IMAGE_FILE_MACHINE_AMD64
                                else "machine %#x" % pe.FILE_HEADER.Machine)
    results["subsystem NATIVE"] = (None if opt.Subsystem == IMAGE_SUBSYSTEM_NATIVE
                                   else "subsystem %d" % opt.Subsystem)

    exports = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    entry = [e.address for e in exports.symbols if e.name == b"DriverEntry"] if exports else []
    results["entry point is DriverEntry"] = (
        None if entry == [opt.AddressOfEntryPoint]
        else "entry RVA %#x, DriverEntry at %s" % (opt.AddressOfEntryPoint, [hex(a) for a in entry]))

    problems = []
    for dll in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        allowed = ALLOWED_IMPORTS.get(dll.dll.lower())
        if allowed is None:
            problems.append("imports from %s" % dll.dll.decode(errors="replace"))
            continue
        problems += ["imports %s" % i.name for i in dll.imports if i.name not in allowed]
    results["imports only the allow-list from ntoskrnl.exe"] = "; ".join(problems) or None

    wx = [s.Name.rstrip(b"\0").decode() for s in pe.sections
          if s.Characteristics & SCN_EXECUTE and s.Characteristics & SCN_WRITE]
    results["no writable+executable section"] = ("W+X: %s" % wx) if wx else None

    results["SectionAlignment 0x1000"] = (None if opt.SectionAlignment == 0x1000
                                          else "SectionAlignment %#x" % opt.SectionAlignment)

    checksum = pe.generate_checksum()
    results["valid checksum"] = (None if opt.CheckSum != 0 and opt.CheckSum == checksum
                                 else "CheckSum %#x, computed %#x" % (opt.CheckSum, checksum))

    missing = [name for name, bit in REQUIRED_DLL_CHARACTERISTICS.items()
               if not opt.DllCharacteristics & bit]
    results["DYNAMIC_BASE, NX_COMPAT, FORCE_INTEGRITY"] = ("missing %s" % missing) if missing else None
    return results


def patched(data, change, fix_checksum=True):
    """A copy of `data` with `change(pe)` applied, checksum recomputed."""
    pe = pefile.PE(data=data)
    change(pe)
    if fix_checksum:
        pe.OPTIONAL_HEADER.CheckSum = pe.generate_checksum()
    return bytes(pe.write())


def rename(old, new):
    """Replace an import name string in place (same length)."""
    def change(pe):
        at = pe.__data__.find(old + b"\0")
        assert at > 0 and len(old) == len(new), old
        pe.set_bytes_at_offset(at, new)
    return change


def set_section_flags(name, flags):
    def change(pe):
        section = next(s for s in pe.sections if s.Name.rstrip(b"\0") == name)
        section.Characteristics |= flags
    return change


def clear_dll_characteristic(bit):
    def change(pe):
        pe.OPTIONAL_HEADER.DllCharacteristics &= ~bit
    return change


def setter(path, value):
    def change(pe):
        header, attr = path
        setattr(getattr(pe, header), attr, value(getattr(getattr(pe, header), attr)))
    return change


# Each breaks one rule; the name is the rule that must then fail.
BREAKS = [
    ("machine AMD64", setter(("FILE_HEADER", "Machine"), lambda _: 0x14C)),
    ("subsystem NATIVE", setter(("OPTIONAL_HEADER", "Subsystem"), lambda _: 2)),
    ("entry point is DriverEntry", setter(("OPTIONAL_HEADER", "AddressOfEntryPoint"), lambda v: v + 0x10)),
    ("imports only the allow-list from ntoskrnl.exe", rename(b"ntoskrnl.exe", b"hal.dll\0\0\0\0\0")),
    ("imports only the allow-list from ntoskrnl.exe", rename(b"ExFreePoolWithTag", b"ExFreePoolWithTaX")),
    ("no writable+executable section", set_section_flags(b".text", SCN_WRITE)),
    # 0x200 (the file alignment): below a page, as HVCI forbids. A larger value
    # would make pefile move the sections and misread the exports as well.
    ("SectionAlignment 0x1000", setter(("OPTIONAL_HEADER", "SectionAlignment"), lambda _: 0x200)),
    ("DYNAMIC_BASE, NX_COMPAT, FORCE_INTEGRITY", clear_dll_characteristic(0x40)),
    ("DYNAMIC_BASE, NX_COMPAT, FORCE_INTEGRITY", clear_dll_characteristic(0x80)),
    ("DYNAMIC_BASE, NX_COMPAT, FORCE_INTEGRITY", clear_dll_characteristic(0x100)),
]


def self_test(data):
    """Every break is caught, by its rule only; returns (passed, failed)."""
    cases = [(rule, lambda c=change: patched(data, c)) for rule, change in BREAKS]
    cases.append(("valid checksum", lambda: patched(
        data, setter(("OPTIONAL_HEADER", "CheckSum"), lambda v: v ^ 1), fix_checksum=False)))
    passed = failed = 0
    for rule, make in cases:
        failing = sorted(name for name, problem in check(make()).items() if problem)
        ok = failing == [rule]
        passed += ok
        failed += not ok
        print("image-check self-test: breaking %r is caught %s%s"
              % (rule, "by that rule only" if ok else "WRONGLY: failing rules ", "" if ok else failing))
    return passed, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sys", help="path of vmwalk.sys")
    parser.add_argument("--self-test", action="store_true", help="also check that broken copies fail")
    args = parser.parse_args()
    with open(args.sys, "rb") as f:
        data = f.read()

    results = check(data)
    for rule, problem in results.items():
        print("image-check: %s: %s" % (rule, "ok" if problem is None else "FAILED (%s)" % problem))
    passed = sum(problem is None for problem in results.values())
    failed = len(results) - passed
    if args.self_test:
        more_passed, more_failed = self_test(data)
        passed, failed = passed + more_passed, failed + more_failed
    print("image-checks: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
