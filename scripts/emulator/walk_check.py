"""The driver's account of its page tables, checked against the world.

After mapping, the driver logs the paging registers, the self-map, and for
each of its addresses (its page's two addresses, DriverEntry, stack) the walk, entry by
entry, and the physical address. Every address in those lines must be the
world's: the registers the harness gave it, the self-map index it chose, the
physical address of each table entry and what it contains, where that entry
appears through the self-map, and where each address really is.
"""

import re

import world as paging

DPFLTR_ERROR_LEVEL = 0
OTHER_WALKS = ("DriverEntry", "stack")

# The lines of the driver's walk (hex is lower-case, with 0x).
PAGING_LINE = re.compile(r"vmwalk: paging: CR3 0x([0-9a-f]+) CR4 0x([0-9a-f]+) EFER 0x([0-9a-f]+), "
                         r"MAXPHYADDR (\d+), ([45])-level")
SELF_MAP_LINE = re.compile(r"vmwalk: self-map: PML([45]) entry 0x([0-9a-f]+) \((\d+)\) maps its own table; "
                           r"PTE base 0x([0-9a-f]{16})")
WALK_LINE = re.compile(r"vmwalk: walk of (\S+) 0x([0-9a-f]+) (?:\(([^)]*)\):|failed: (.*))")
ENTRY_LINE = re.compile(r"vmwalk: +(\S+) at 0x([0-9a-f]+) \(phys 0x([0-9a-f]+)\) contains 0x([0-9a-f]+)")
RESULT_LINE = re.compile(r"vmwalk: (\S+) 0x([0-9a-f]+) -> physical 0x([0-9a-f]+)")
SPLIT_LINE = re.compile(r"vmwalk: MmHighestUserAddress 0x([0-9a-f]+), MmSystemRangeStart 0x([0-9a-f]+)")
SHARE_LINE = re.compile(r"vmwalk: (\S+) and (\S+) share PFN 0x([0-9a-f]+) through two PTEs, "
                        r"at phys 0x([0-9a-f]+) and 0x([0-9a-f]+)")
PTE_BLOCK_LINE = re.compile(r"vmwalk: as !pte 0x([0-9a-f]+) shows it:")
# What the walker says about each corruption.
EXPLANATIONS = {"not-present": "is not present", "reserved": "has a reserved bit set",
                "transition": "is not present", "pagefile": "is not present", "freed": "is not present"}


def side(va):
    if va <= paging.HIGHEST_USER_ADDRESS:
        return "user space"
    return "kernel space" if va >= paging.SYSTEM_RANGE_START else "neither side"


# WinDbg's !pte layout, as published transcripts show it (tests/windbg/):
# 27-character columns, the VA after 43 spaces, flags CGLDANT(U|K)(W|R)(E|-)V.
COLUMN = 27
ENTRY_NAMES = {5: "PML5E", 4: "PXE", 3: "PPE", 2: "PDE", 1: "PTE"}
BIT = {"C": 1 << 9, "G": 1 << 8, "D": 1 << 6, "A": 1 << 5, "N": 1 << 4, "T": 1 << 3,
       "U": 1 << 2, "W": 1 << 1, "V": 1}


def windbg_flags(entry, level):
    large = level in (2, 3) and entry & 0x80
    return "".join([
        "C" if entry & BIT["C"] else "-", "G" if entry & BIT["G"] else "-", "L" if large else "-",
        "D" if entry & BIT["D"] else "-", "A" if entry & BIT["A"] else "-",
        "N" if entry & BIT["N"] else "-", "T" if entry & BIT["T"] else "-",
        "U" if entry & BIT["U"] else "K", "W" if entry & BIT["W"] else "R",
        "-" if entry & paging.NX else "E", "V" if entry & BIT["V"] else "-"])


def columns(cells):
    return "".join(cell.ljust(COLUMN) for cell in cells[:-1]) + cells[-1]


def software_at(w, slot):
    """What WinDbg says under `not valid` for the software PTE the harness
    wrote at `slot`, or None."""
    if w.corrupted and w.software_line and slot == w.corrupted[1]:
        return w.software_line
    return w.software.get(slot)


def expected_pte_block(w, va):
    """The rows `!pte va` prints for the world, and the lines under `not
    valid` when the harness wrote a Windows software entry there (None:
    whatever the driver decodes is not checked)."""
    path = w.walk(va)
    values = [entry for _, _, entry in path]
    level, _, last = path[-1]
    if level in (2, 3) and last & 1 and last & 0x80:  # below a large leaf WinDbg reads nothing: 0
        values += [0] * (level - 1)
    status = []
    for level, _, entry in path:
        if not entry & 1:
            status.append("not valid" if level == 1 else "contains %016X" % entry)
        else:
            status.append("pfn %-10x%s" % ((entry & paging.ADDRESS_BITS) >> 12, windbg_flags(entry, level)))
            if level in (2, 3) and entry & 0x80:
                size = 1 << (12 + 9 * (level - 1))
                base = entry & paging.ADDRESS_BITS & ~(size - 1)
                # padded to a whole column, as WinDbg pads it
                status.append(("LARGE PAGE pfn %x" % ((base + va % size) >> 12)).ljust(COLUMN))
    rows = [" " * 43 + "VA %016x" % va,
            columns(["%s at %016X" % (ENTRY_NAMES[level], w.entry_va(va, level))
                     for level in range(w.levels, 0, -1)]),
            columns(["contains %016X" % value for value in values]),
            columns(status)]
    details = None
    software = software_at(w, path[-1][1])
    if software:
        indent = COLUMN * (len(path) - 1) + 1  # one right of `not valid`, every kind alike
        details = [" " * indent + text for text in software.split(", ")]
    return rows, details


def check_world(lines, w, landmarks, pool_pfn, expect, names=("pool", "mapping")):
    """Every address the driver printed in `lines` ([(level, text)]) is the
    world `w`'s; returns the failures and a summary. `landmarks`: {name:
    (first, end)} where each walked address must lie; `names`: what the
    driver calls its page's two addresses (the first is the one corrupted);
    `expect`: "clean" or a corruption (the lines a successful load must print
    then), or None (check only what is printed)."""
    failures = []
    seen = {"walk": {}, "failed": {}, "result": {}, "share": [], "paging": 0, "self-map": 0, "entries": 0,
            "software": 0, "blocks": 0}
    block = []  # the !pte rows the driver has yet to print
    path = []  # the entries the current walk has yet to print
    for line in "".join(text for _, text in lines).splitlines():
        if block:
            want = block.pop(0)
            if want is not None and line != "vmwalk: " + want:
                failures.append("%r: WinDbg's !pte prints %r" % (line, want))
            continue
        if m := PTE_BLOCK_LINE.match(line):
            seen["blocks"] += 1
            rows, details = expected_pte_block(w, int(m[1], 16))
            undecoded = not w.walk(int(m[1], 16))[-1][2] & 1 and details is None
            block = rows + (details or [])
            if undecoded:  # not a software entry of the harness: its lines are not checked
                last = w.walk(int(m[1], 16))[-1]
                block += [None] * count_software_lines(last[0], last[2], w)
            continue
        if m := PAGING_LINE.match(line):
            seen["paging"] += 1
            got = (int(m[1], 16), int(m[2], 16), int(m[3], 16), int(m[4]), int(m[5]))
            want = (w.cr3, w.cr4, paging.EFER, w.max_phys_bits, w.levels)
            if got != want:
                failures.append("%r: the world has CR3 %#x CR4 %#x EFER %#x, MAXPHYADDR %d, %d-level" % ((line,) + want))
        elif m := SELF_MAP_LINE.match(line):
            seen["self-map"] += 1
            if (int(m[1]), int(m[2], 16), int(m[3]), int(m[4], 16)) != (w.levels, w.self_index, w.self_index, w.pte_base()):
                failures.append("%r: the world's self-map is entry %#x, PTE base %#018x" % (line, w.self_index, w.pte_base()))
        elif m := WALK_LINE.match(line):
            name, va = m[1], int(m[2], 16)
            seen["failed" if m[4] is not None else "walk"][name] = m[4] or va
            if m[3] is not None:  # the walk's header: its entries follow
                if m[3] != side(va):
                    failures.append("%r: %#x is in %s" % (line, va, side(va)))
                path = list(w.walk(va))
        elif m := ENTRY_LINE.match(line):
            if not path:
                failures.append("%r: the world's walk has no more entries" % line)
                continue
            level, slot, entry = path.pop(0)
            seen["entries"] += 1
            got = (int(m[3], 16), int(m[4], 16), int(m[2], 16))
            want = (slot, entry, w.entry_va(va, level))
            if got != want:
                failures.append("%r: the world's entry is at phys %#x, contains %#018x, seen at %#x" % ((line,) + want))
            software = software_at(w, slot)
            if software:
                seen["software"] += 1
                if not line.endswith(" not valid: " + software):
                    failures.append("%r: WinDbg says `not valid: %s`" % (line, software))
        elif m := RESULT_LINE.match(line):
            name, va, pa = m[1], int(m[2], 16), int(m[3], 16)
            seen["result"][name] = pa
            if path:
                failures.append("%r: the walk printed %d entries fewer than the world has" % (line, len(path)))
            first, end = landmarks.get(name, (0, 0))
            if not first <= va < end:
                failures.append("%r: the %s is at [%#x, %#x)" % (line, name, first, end))
            if pa != w.true_address(va):
                failures.append("%r: the world maps %#x to %s" % (line, va, "%#x" % w.true_address(va)
                                                                    if w.true_address(va) is not None else "nothing"))
        elif m := SPLIT_LINE.match(line):
            if (int(m[1], 16), int(m[2], 16)) != (paging.HIGHEST_USER_ADDRESS, paging.SYSTEM_RANGE_START):
                failures.append("%r: the harness exports %#x and %#x"
                                % (line, paging.HIGHEST_USER_ADDRESS, paging.SYSTEM_RANGE_START))
        elif m := SHARE_LINE.match(line):
            seen["share"].append(int(m[3], 16))
            if int(m[3], 16) != pool_pfn:
                failures.append("%r: the page's PFN is %#x" % (line, pool_pfn))
            if (m[1], m[2]) != names:
                failures.append("%r: the addresses are %s and %s" % (line, names[0], names[1]))
            slots = tuple(w.walk(landmarks[name][0])[-1][1] for name in names)
            if (int(m[4], 16), int(m[5], 16)) != slots or slots[0] == slots[1]:
                failures.append("%r: the world's PTEs are at phys %#x and %#x" % ((line,) + slots))
    if expect is not None:
        failures += missing_lines(lines, seen, expect, names)
    summary = ("%d translations, %d walks (%d entries), %d-level, self-map index %#x, PFN %s"
               % (len(seen["result"]), len(seen["walk"]), seen["entries"], w.levels, w.self_index,
                  ", ".join("%#x" % pfn for pfn in seen["share"]) or "not shared"))
    return failures, summary


def count_software_lines(level, entry, w):
    """How many lines the driver prints under a not-valid entry the harness
    did not write as a Windows software entry: one `not valid` line above the
    PTE level, then WinDbg's lines for the kind (not checked here)."""
    mask = 1 << (w.max_phys_bits - 1)
    unswizzled = entry & ~mask if not entry & 0x10 else entry
    if unswizzled == 0:
        kind_lines = 0
    elif entry & (1 << 10) or (not entry & (1 << 11) and not entry & 0xFFF):
        kind_lines = 1  # prototype; freed
    elif entry & (1 << 11) or not unswizzled >> 32:
        kind_lines = 2  # transition; demand zero
    else:
        kind_lines = 3  # page file
    return kind_lines + (level != 1)


def missing_lines(lines, seen, expect, names):
    """What a successful load must print but did not (or must not but did)."""
    failures = []
    first = names[0]
    walks = names + OTHER_WALKS
    if seen["blocks"] != len(walks):
        failures.append("want a !pte block for each of %d walks, got %d" % (len(walks), seen["blocks"]))
    if seen["paging"] != 1 or seen["self-map"] != 1:
        failures.append("want one paging line and one self-map line, got %d and %d" % (seen["paging"], seen["self-map"]))
    walked = [name for name in walks if not (expect != "clean" and name == first)]
    failures += ["no walk of %s" % name for name in walked if name not in seen["walk"]]
    failures += ["no `%s ... -> physical` line" % name for name in walked if name not in seen["result"]]
    errors = [text for level, text in lines if level == DPFLTR_ERROR_LEVEL]
    if expect == "clean":
        if len(seen["share"]) != 1:
            failures.append("want one `%s and %s share PFN` line, got %d" % (names + (len(seen["share"]),)))
        failures += ["error line %r" % line for line in errors]
    else:
        explanation = seen["failed"].get(first, "")
        if EXPLANATIONS[expect] not in explanation:
            failures.append("%s: want `walk of %s ... failed: ...%s...`, got %r"
                            % (expect, first, EXPLANATIONS[expect], explanation or None))
        if expect in paging.SOFTWARE and seen["software"] == 0:
            failures.append("%s: the %s's software PTE was not printed" % (expect, first))
        if seen["share"] or first in seen["result"]:
            failures.append("%s: the %s's corrupted walk still gave a result or a shared PFN" % (expect, first))
    return failures
