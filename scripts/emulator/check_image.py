"""Check that vmwalk.sys is a driver image Windows (with HVCI) will load.

Rules: machine AMD64 (or, with --machine arm64, ARM64), subsystem NATIVE, entry point = DriverEntry, imports only
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
MACHINES = {"amd64": 0x8664, "arm64": 0xAA64}
IMAGE_SUBSYSTEM_NATIVE = 1
SCN_EXECUTE, SCN_WRITE = 0x2000_0000, 0x8000_0000
# MRS Xt, <register> (Arm ARM C6.2: 0xD5300000 | o0<<19 | op1<<16 | CRn<<12 |
# CRm<<8 | op2<<5 | Rt), Rt masked: what the ARM64 driver must execute.
MRS = {"TTBR0_EL1": 0xD5382000, "TTBR1_EL1": 0xD5382020, "TCR_EL1": 0xD5382040}
NOP = 0xD503201F
REQUIRED_DLL_CHARACTERISTICS = {"DYNAMIC_BASE": 0x40, "FORCE_INTEGRITY": 0x80, "NX_COMPAT": 0x100}


def check(data, machine="amd64"):
    """{rule: problem or None} for the image in `data`, built for `machine`."""
    pe = pefile.PE(data=data)
    opt = pe.OPTIONAL_HEADER
    results = {}

    results["machine"] = (None if pe.FILE_HEADER.Machine == MACHINES[machine]
                          else "machine %#x, not %s's %#x" % (pe.FILE_HEADER.Machine, machine.upper(), MACHINES[machine]))
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
    if machine == "arm64":
        words = set(code_words(pe))
        missing = [name for name, encoding in MRS.items()
                   if not any(word & ~0x1F == encoding for word in words)]
        results["reads TTBR0_EL1, TTBR1_EL1, TCR_EL1 (mrs)"] = ("no mrs of %s" % missing) if missing else None
    return results


def code_words(pe):
    """The 32-bit words of every executable section."""
    for section in pe.sections:
        if section.Characteristics & SCN_EXECUTE:
            data = section.get_data()
            yield from (int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data) - 3, 4))


def without_mrs(name):
    """Every `mrs Xt, name` replaced by a NOP."""
    def change(pe):
        for section in pe.sections:
            if section.Characteristics & SCN_EXECUTE:
                data = bytearray(section.get_data())
                for i in range(0, len(data) - 3, 4):
                    if int.from_bytes(data[i:i + 4], "little") & ~0x1F == MRS[name]:
                        data[i:i + 4] = NOP.to_bytes(4, "little")
                pe.set_bytes_at_offset(section.PointerToRawData, bytes(data))
    return change


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
    ("machine", setter(("FILE_HEADER", "Machine"), lambda _: 0x14C)),
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


def self_test(data, machine):
    """Every break is caught, by its rule only; returns (passed, failed)."""
    breaks = BREAKS + ([("reads TTBR0_EL1, TTBR1_EL1, TCR_EL1 (mrs)", without_mrs(name)) for name in MRS]
                       if machine == "arm64" else [])
    cases = [(rule, lambda c=change: patched(data, c)) for rule, change in breaks]
    cases.append(("valid checksum", lambda: patched(
        data, setter(("OPTIONAL_HEADER", "CheckSum"), lambda v: v ^ 1), fix_checksum=False)))
    passed = failed = 0
    for rule, make in cases:
        failing = sorted(name for name, problem in check(make(), machine).items() if problem)
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
    parser.add_argument("--machine", choices=sorted(MACHINES), default="amd64",
                        help="the architecture the image must be built for (default amd64)")
    args = parser.parse_args()
    with open(args.sys, "rb") as f:
        data = f.read()

    results = check(data, args.machine)
    for rule, problem in results.items():
        rule = "machine %s" % args.machine.upper() if rule == "machine" else rule
        print("image-check: %s: %s" % (rule, "ok" if problem is None else "FAILED (%s)" % problem))
    passed = sum(problem is None for problem in results.values())
    failed = len(results) - passed
    if args.self_test:
        more_passed, more_failed = self_test(data, args.machine)
        passed, failed = passed + more_passed, failed + more_failed
    print("image-checks: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
