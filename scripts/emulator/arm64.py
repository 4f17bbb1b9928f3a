"""Run the ARM64 vmwalk.sys under unicorn's AArch64 CPU: DriverEntry, then
DriverUnload (speakeasy, which runs the x64 image, emulates x86 only).

The image is loaded and relocated with pefile; each ntoskrnl import points at
a stub the harness answers (arguments in X0-X7, the result in X0, as the
ARM64 calling convention passes them); the driver's `mrs` of TTBR0_EL1,
TTBR1_EL1 and TCR_EL1 are answered with a world laid out as Windows on ARM64
lays it out (one 512-entry top-level page, TTBR1 at its upper half, TCR_EL1
0x615b5513511, the self-map at 0x151), whose tables map the image, the stack,
the MDLs and the two mappings. MmMapLockedPagesSpecifyCache maps one host
buffer at each address, a real alias; MmCopyMemory and MmGetPhysicalAddress
answer from the world.

The emulated CPU runs with its MMU off, so every address is an identity-mapped
low one (the lower range, through TTBR0_EL1); the world's tables describe
those addresses. Only the default mapping method, without named addresses,
is run: the x64 harness covers fault injection, the Verifier model and named
addresses, with the same driver logic.

Checks: DriverEntry returns STATUS_SUCCESS, DriverUnload frees everything,
every DbgPrintEx line begins with `vmwalk: `, and the log says what the world
says: the registers, the self-map, both addresses translating to the page's
frame through two different level 3 descriptors, and MmGetPhysicalAddress
agreeing.

--self-test also runs with the harness broken on purpose (no alias, no self-map,
an MDL leaked, Windows disagreeing) and requires each to be caught.

Usage: arm64.py [--self-test] VMWALK.SYS     Exit: 0 all checks pass, 1 otherwise.
"""

import ctypes
import mmap
import re
import struct
import sys

import pefile
from unicorn import UC_ARCH_ARM64, UC_HOOK_CODE, UC_MODE_ARM, Uc, UcError
from unicorn.arm64_const import (UC_ARM64_REG_CPACR_EL1, UC_ARM64_REG_LR, UC_ARM64_REG_PC,
                                 UC_ARM64_REG_SP, UC_ARM64_REG_X0)
# The x64 check's !pte layout and log levels: the ARM64 block keeps x64's columns.
from walk_check import DPFLTR_ERROR_LEVEL, PTE_BLOCK_LINE, columns

PAGE = 0x1000
IMAGE_BASE = 0x1_4000_0000
STUBS = 0x1_3000_0000        # one 4-byte `ret` per import
NT_DATA = 0x1_3010_0000      # ntoskrnl's exported variables
HEAP = 0x1_2000_0000         # driver object, registry path, MDLs
STACK, STACK_SIZE = 0x1_1000_0000, 0x10000
MAPPINGS = 0x2_0000_0000     # where MmMapLockedPagesSpecifyCache maps
RETURN = 0x1_3020_0000       # DriverEntry/DriverUnload return here
RET = 0xD65F03C0
MDL_HEADER = 0x30
MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED, MDL_ALLOCATED_FIXED_SIZE, MDL_PARTIAL = 0x1, 0x2, 0x8, 0x10
MDL_PARTIAL_HAS_BEEN_MAPPED = 0x20
STATUS_SUCCESS, STATUS_OBJECT_NAME_NOT_FOUND = 0, 0xC0000034
# Windows on ARM64 (C. McGarr, "ARM64 Windows internals: the basics", 2025).
TCR_EL1 = 0x0000_0615_B551_3511
ASID = 0x2A << 48
SELF_MAP = 0x151
# MRS Xt, <register> (Arm ARM C6.2), Rt masked.
MRS = {0xD5382000: "TTBR0_EL1", 0xD5382020: "TTBR1_EL1", 0xD5382040: "TCR_EL1"}
# Imported for named addresses, which this run does not set.
NOT_CALLED = {"PsLookupProcessByProcessId", "SeLocateProcessImageName", "ObfDereferenceObject",
              "KeStackAttachProcess", "KeUnstackDetachProcess"}
TABLE = 0b11 | 1 << 10 | 0b11 << 8 | 1 << 11 | 1 << 53 | 1 << 54  # 0x0060000000000F03, as !pte shows tables
PAGE_NX = 0b11 | 1 << 10 | 0b11 << 8 | 1 << 53 | 1 << 54 | 1 << 55  # writable data, never executable
PAGE_CODE = 0b11 | 1 << 10 | 0b11 << 8 | 1 << 7 | 1 << 54  # read-only, executable at EL1


class World:
    """Physical memory: ARM64 tables (Windows' layout) and data frames."""

    def __init__(self):
        self.frames = {}  # pfn -> bytearray or a host buffer (memoryview)
        self.next_pfn = 0x4_1230
        self.root = self.new_table()
        self.write(self.root + 8 * SELF_MAP, self.root | TABLE)

    def new_table(self):
        pfn = self.alloc()
        self.frames[pfn] = bytearray(PAGE)
        return pfn * PAGE

    def alloc(self, count=1):
        pfn = self.next_pfn
        self.next_pfn += count + 0x13  # not contiguous, so a wrong index shows
        return pfn

    def read(self, pa, size):
        frame = self.frames.get(pa // PAGE)
        if frame is None or pa % PAGE + size > PAGE:
            return None
        return bytes(frame[pa % PAGE:pa % PAGE + size])

    def write(self, pa, value):
        self.frames[pa // PAGE][pa % PAGE:pa % PAGE + 8] = struct.pack("<Q", value)

    def slot(self, va, create):
        """The level 3 descriptor's physical address for `va` (index by VA bits 47:39 first)."""
        table = self.root
        for shift in (39, 30, 21):
            at = table + 8 * ((va >> shift) & 0x1FF)
            entry = struct.unpack("<Q", self.read(at, 8))[0]
            if not entry & 1:
                if not create:
                    return None
                self.write(at, self.new_table() | TABLE)
                entry = struct.unpack("<Q", self.read(at, 8))[0]
            table = entry & 0x0000_FFFF_FFFF_F000
        return table + 8 * ((va >> 12) & 0x1FF)

    def map(self, va, pfn, count, bits):
        for page in range(count):
            self.write(self.slot(va + page * PAGE, True), (pfn + page) * PAGE | bits)

    def unmap(self, va, count):
        for page in range(count):
            self.write(self.slot(va + page * PAGE, False), 0)

    def translate(self, va):
        at = self.slot(va, False)
        entry = 0 if at is None else struct.unpack("<Q", self.read(at, 8))[0]
        return (entry & 0x0000_FFFF_FFFF_F000) | va % PAGE if entry & 0b11 == 0b11 else None

    def registers(self):
        return {"TTBR0_EL1": self.root | ASID, "TTBR1_EL1": (self.root + 0x800) | ASID, "TCR_EL1": TCR_EL1}


class HostPages:
    """Host memory behind guest pages; mapped twice, an alias."""

    def __init__(self, size):
        self.buffer = mmap.mmap(-1, size)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))


class Harness:
    def __init__(self, path, echo=True):
        self.echo = echo
        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self.uc.reg_write(UC_ARM64_REG_CPACR_EL1, 0b11 << 20)  # FP/SIMD on: memcpy uses q registers
        self.world = World()
        self.lines, self.problems, self.calls = [], [], []
        self.mdls, self.mappings = {}, {}  # mdl -> record; va -> (mdl, pages)
        self.heap = HEAP
        self.next_mapping = MAPPINGS
        self.load(path)

    def problem(self, text):
        self.problems.append(text)

    # -- memory ---------------------------------------------------------------
    def read(self, address, size):
        return bytes(self.uc.mem_read(address, size))

    def u64(self, address):
        return struct.unpack("<Q", self.read(address, 8))[0]

    def string(self, address):
        data = b""
        while not data.endswith(b"\0"):
            data += self.read(address + len(data), 1)
        return data[:-1].decode("latin-1")

    def alloc(self, size):
        """Heap memory, mapped in unicorn and in the world (zeroed)."""
        address, self.heap = self.heap, self.heap + (size + PAGE - 1) // PAGE * PAGE + PAGE
        pages = (size + PAGE - 1) // PAGE
        self.uc.mem_map(address, pages * PAGE)
        pfn = self.world.alloc(pages)
        for page in range(pages):
            self.world.frames[pfn + page] = bytearray(PAGE)
        self.world.map(address, pfn, pages, PAGE_NX)
        return address

    # -- loading --------------------------------------------------------------
    def load(self, path):
        pe = pefile.PE(path)
        if pe.FILE_HEADER.Machine != 0xAA64:
            sys.exit("arm64.py: %s is not an ARM64 image (machine %#x)" % (path, pe.FILE_HEADER.Machine))
        pe.relocate_image(IMAGE_BASE)
        image = pe.get_memory_mapped_image(ImageBase=IMAGE_BASE)
        size = (len(image) + PAGE - 1) // PAGE * PAGE
        self.uc.mem_map(IMAGE_BASE, size)
        self.uc.mem_write(IMAGE_BASE, image)
        pfn = self.world.alloc(size // PAGE)
        for page in range(size // PAGE):
            self.world.frames[pfn + page] = bytearray(image[page * PAGE:(page + 1) * PAGE].ljust(PAGE, b"\0"))
        self.world.map(IMAGE_BASE, pfn, size // PAGE, PAGE_CODE)
        self.entry = IMAGE_BASE + pe.OPTIONAL_HEADER.AddressOfEntryPoint
        self.uc.mem_map(STUBS, 0x10000)
        self.uc.mem_map(NT_DATA, PAGE)
        self.uc.mem_map(RETURN, PAGE)
        self.uc.mem_write(RETURN, struct.pack("<I", RET))
        variables = {"MmHighestUserAddress": 0x7FFF_FFFE_FFFF, "MmSystemRangeStart": 0xFFFF_8000_0000_0000}
        self.stubs = {}
        for n, imp in enumerate(i for d in pe.DIRECTORY_ENTRY_IMPORT for i in d.imports):
            name = imp.name.decode()
            if name in variables:
                at = NT_DATA + 8 * len(self.stubs)
                self.uc.mem_write(at, struct.pack("<Q", variables[name]))
                self.uc.mem_write(imp.address, struct.pack("<Q", at))
                self.stubs[at] = name
                continue
            if name not in NOT_CALLED and getattr(self, name, None) is None:
                self.problem("unhandled import %s" % name)
                continue
            stub = STUBS + 4 * n
            self.uc.mem_write(stub, struct.pack("<I", RET))
            self.uc.mem_write(imp.address, struct.pack("<Q", stub))
            self.stubs[stub] = name
        self.uc.hook_add(UC_HOOK_CODE, self.on_stub, begin=STUBS, end=STUBS + 0xFFFF)
        # Each `mrs` of a paging register: answered from the world, then stepped over.
        sites = 0
        for section in pe.sections:
            if section.Characteristics & 0x2000_0000:
                data = section.get_data()
                for at in range(0, len(data) - 3, 4):
                    word = struct.unpack_from("<I", data, at)[0]
                    if word & ~0x1F in MRS:
                        address = IMAGE_BASE + section.VirtualAddress + at
                        self.uc.hook_add(UC_HOOK_CODE, self.on_mrs, begin=address, end=address)
                        sites += 1
        if sites == 0:
            self.problem("the image has no mrs of TTBR0_EL1, TTBR1_EL1 or TCR_EL1")
        self.uc.mem_map(STACK, STACK_SIZE)
        pfn = self.world.alloc(STACK_SIZE // PAGE)
        for page in range(STACK_SIZE // PAGE):
            self.world.frames[pfn + page] = bytearray(PAGE)
        self.world.map(STACK, pfn, STACK_SIZE // PAGE, PAGE_NX)

    def on_mrs(self, uc, address, size, _):
        word = struct.unpack("<I", self.read(address, 4))[0]
        rt = word & 0x1F
        value = self.world.registers()[MRS[word & ~0x1F]]
        if rt != 31:  # XZR
            uc.reg_write(UC_ARM64_REG_X0 + rt, value)
        uc.reg_write(UC_ARM64_REG_PC, address + 4)

    def on_stub(self, uc, address, size, _):
        name = self.stubs.get(address)
        args = [uc.reg_read(UC_ARM64_REG_X0 + i) for i in range(8)]
        self.calls.append(name)
        if name in NOT_CALLED:
            self.problem("%s called: no process was named" % name)
            return
        result = getattr(self, name)(*args)
        uc.reg_write(UC_ARM64_REG_X0, (result or 0) & ((1 << 64) - 1))

    def call(self, function, *args):
        for i, value in enumerate(args):
            self.uc.reg_write(UC_ARM64_REG_X0 + i, value)
        self.uc.reg_write(UC_ARM64_REG_SP, STACK + STACK_SIZE - 0x100)
        self.uc.reg_write(UC_ARM64_REG_LR, RETURN)
        try:
            self.uc.emu_start(function, RETURN, count=50_000_000)
        except UcError as error:
            self.problem("emulation stopped at %#x: %s" % (self.uc.reg_read(UC_ARM64_REG_PC), error))
            return None
        return self.uc.reg_read(UC_ARM64_REG_X0) & 0xFFFFFFFF

    # -- ntoskrnl ----------------------------------------------------------------
    def new_mdl(self, va, length, flags, pfn=None):
        pages = ((va % PAGE) + length + PAGE - 1) // PAGE
        mdl = self.alloc(MDL_HEADER + 8 * pages)
        self.uc.mem_write(mdl, struct.pack("<QhhxxxxQQQII", 0, MDL_HEADER + 8 * pages, flags, 0, 0,
                                           va & ~(PAGE - 1), length, va % PAGE))
        if pfn is not None:
            self.uc.mem_write(mdl + MDL_HEADER, struct.pack("<Q", pfn))
        self.mdls[mdl] = {"live": True, "pfn": pfn, "pages": None}
        return mdl

    def flags(self, mdl, set_bits=0, clear_bits=0):
        flags = (struct.unpack("<H", self.read(mdl + 0xA, 2))[0] | set_bits) & ~clear_bits
        self.uc.mem_write(mdl + 0xA, struct.pack("<H", flags))
        return flags

    def MmAllocatePagesForMdlEx(self, low, high, skip, total, cache, flags, *_):
        if (low, high, skip, total) != (0, (1 << 64) - 1, 0, PAGE):
            self.problem("MmAllocatePagesForMdlEx(%#x, %#x, %#x, %#x)" % (low, high, skip, total))
        pages = HostPages(PAGE)
        pfn = self.world.alloc()
        self.world.frames[pfn] = memoryview(pages.buffer)
        mdl = self.new_mdl(0, total, MDL_PAGES_LOCKED, pfn)
        self.mdls[mdl].update(pages=pages, kind="pages", pages_live=True)
        return mdl

    def IoAllocateMdl(self, va, length, secondary, quota, irp, *_):
        return self.new_mdl(va, length & 0xFFFFFFFF, MDL_ALLOCATED_FIXED_SIZE)

    def IoBuildPartialMdl(self, source, target, va, length, *_):
        record = self.mdls[source]
        self.flags(target, set_bits=MDL_PARTIAL)
        self.uc.mem_write(target + MDL_HEADER, struct.pack("<Q", record["pfn"]))
        self.mdls[target].update(pfn=record["pfn"], pages=record["pages"], kind="partial")

    def MmMapLockedPagesSpecifyCache(self, mdl, mode, cache, requested, bugcheck, priority, *_):
        if (mode & 0xFF, cache & 0xFFFFFFFF, requested, bugcheck & 0xFFFFFFFF, priority & 0xFFFFFFFF) \
                != (0, 1, 0, 0, 0x4000_0000 | 16):
            self.problem("MmMapLockedPagesSpecifyCache arguments %s" % [mode, cache, requested, bugcheck, priority])
        record = self.mdls[mdl]
        va, self.next_mapping = self.next_mapping, self.next_mapping + 0x10 * PAGE
        self.uc.mem_map_ptr(va, PAGE, 3, record["pages"].address)
        self.world.map(va, record["pfn"], 1, PAGE_NX)
        self.mappings[va] = mdl
        partial = MDL_PARTIAL_HAS_BEEN_MAPPED if self.flags(mdl) & MDL_PARTIAL else 0
        self.flags(mdl, set_bits=MDL_MAPPED_TO_SYSTEM_VA | partial)
        self.uc.mem_write(mdl + 0x18, struct.pack("<Q", va))
        return va

    def MmUnmapLockedPages(self, va, mdl, *_):
        if self.mappings.pop(va, None) != mdl:
            self.problem("MmUnmapLockedPages(%#x, %#x): not mapped with that MDL" % (va, mdl))
            return
        self.uc.mem_unmap(va, PAGE)
        self.world.unmap(va, 1)
        self.flags(mdl, clear_bits=MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED)

    def IoFreeMdl(self, mdl, *_):
        record = self.mdls.get(mdl)
        if not record or not record["live"] or record.get("kind") == "pages" or mdl in self.mappings.values():
            self.problem("IoFreeMdl(%#x): not a live, unmapped IoAllocateMdl MDL" % mdl)
            return
        record["live"] = False

    def MmFreePagesFromMdl(self, mdl, *_):
        record = self.mdls.get(mdl)
        if not record or not record.get("pages_live") or mdl in self.mappings.values() \
                or any(r["live"] and r.get("kind") == "partial" for r in self.mdls.values()):
            self.problem("MmFreePagesFromMdl(%#x) while mapped or described, or twice" % mdl)
            return
        record["pages_live"] = False
        self.world.frames.pop(record["pfn"])

    def ExFreePoolWithTag(self, address, tag, *_):
        record = self.mdls.get(address)
        if not record or record.get("kind") != "pages" or record.get("pages_live") or tag:
            self.problem("ExFreePoolWithTag(%#x, %#x): not a freed-pages MDL with tag 0" % (address, tag))
            return
        record["live"] = False

    def ExAllocatePool2(self, *_):
        self.problem("ExAllocatePool2 called: the default method allocates no pool")
        return 0

    def MmBuildMdlForNonPagedPool(self, *_):
        self.problem("MmBuildMdlForNonPagedPool called by the default method")

    def MmIsDriverVerifying(self, driver, *_):
        return 0

    def ZwOpenKey(self, *_):
        return STATUS_OBJECT_NAME_NOT_FOUND  # no Parameters key: the defaults

    def ZwQueryValueKey(self, *_):
        self.problem("ZwQueryValueKey without an open key")
        return STATUS_OBJECT_NAME_NOT_FOUND

    def ZwClose(self, *_):
        self.problem("ZwClose without an open key")

    def MmCopyMemory(self, target, source, size, flags, transferred, *_):
        data = self.world.read(source, size) if flags == 1 else None
        if data is not None:
            self.uc.mem_write(target, data)
        self.uc.mem_write(transferred, struct.pack("<Q", 0 if data is None else size))
        return STATUS_SUCCESS if data is not None else 0xC0000141  # STATUS_INVALID_ADDRESS

    def MmGetPhysicalAddress(self, va, *_):
        return self.world.translate(va) or 0

    def DbgPrintEx(self, component, level, fmt, *args):
        values = list(args)

        def convert(match):
            spec = match.group(0)
            if spec == "%%":
                return "%"
            value = values.pop(0)
            if spec == "%s":
                return self.string(value)
            return "%016X" % value if spec == "%p" else "%08X" % (value & 0xFFFFFFFF)

        line = re.sub(r"%%|%p|%08X|%s", convert, self.string(fmt))
        if component & 0xFFFFFFFF != 77 or not line.startswith("vmwalk: ") or not line.endswith("\n"):
            self.problem("DbgPrintEx(%d, ..., %r)" % (component, line))
        self.lines.append((level & 0xFFFFFFFF, line))
        self.say(line)
        return STATUS_SUCCESS

    def say(self, text):
        if self.echo:
            sys.stdout.write(text)



ENTRY_NAMES = ("PXE", "PPE", "PDE", "PTE")  # x64's names, which !pte keeps on ARM64


def entry_va(va, level):
    """Where the self-map shows `va`'s level (0-3) descriptor: Windows' recursive
    arithmetic, the PTE base being the self-map index at bits 47:39."""
    pte_base = 0xFFFF_0000_0000_0000 | SELF_MAP << 39
    pde_base = pte_base + (SELF_MAP << 30)
    ppe_base = pde_base + (SELF_MAP << 21)
    pxe_base = ppe_base + (SELF_MAP << 12)
    base = (pxe_base, ppe_base, pde_base, pte_base)[level]
    return base + ((va & 0xFFFF_FFFF_FFFF) >> (39 - 9 * level)) * 8


def arm64_flags(descriptor, level, kernel):
    """The ten letters of a valid descriptor, read from the published ARM64
    transcripts (tests/windbg/arm64/), written here independently of the driver."""
    block = level < 3 and descriptor & 0b11 == 0b01
    no_execute = descriptor >> (53 if kernel else 54) & 1
    return "".join(["-", "W" if descriptor >> 55 & 1 else "R", "-" if no_execute else "X",
                     "-" if descriptor >> 11 & 1 else "G", "A" if descriptor >> 10 & 1 else "-",
                     "-" if descriptor >> 7 & 1 else "D", "U" if descriptor >> 6 & 1 else "K",
                     "-", "L" if block else "-", "V" if descriptor & 1 else "-"])


def expected_pte_block(world, va):
    """The four rows WinDbg's !pte prints on ARM64 for `va` in the world: x64's
    columns, the ten flags right-aligned in x64's 11-character field."""
    descriptors, table = [], world.root
    for level in range(4):
        at = table + 8 * ((va >> (39 - 9 * level)) & 0x1FF)
        descriptor = struct.unpack("<Q", world.read(at, 8))[0]
        descriptors.append(descriptor)
        if descriptor & 0b11 != 0b11:
            break
        table = descriptor & 0x0000_FFFF_FFFF_F000
    status = []
    for level, descriptor in enumerate(descriptors):
        if not descriptor & 1:
            status.append("not valid")
            break
        status.append("pfn %-10x %s" % ((descriptor & 0x0000_FFFF_FFFF_F000) >> 12,
                                         arm64_flags(descriptor, level, va >> 55 & 1)))
    return [" " * 43 + "VA %016x" % va,
            columns(["%s at %016X" % (ENTRY_NAMES[level], entry_va(va, level)) for level in range(4)]),
            columns(["contains %016X" % d for d in descriptors]),
            columns(status)]


def check_pte_blocks(world, lines):
    """Every !pte block the driver logged, row for row; and how many there were."""
    problems, blocks = [], 0
    for at, line in enumerate(lines):
        m = PTE_BLOCK_LINE.match(line)
        if not m:
            continue
        blocks += 1
        want = expected_pte_block(world, int(m[1], 16))
        got = [l[len("vmwalk: "):].rstrip("\n") for l in lines[at + 1:at + 1 + len(want)]]
        for row, (g, w) in enumerate(zip(got + [None] * len(want), want)):
            if g != w:
                problems.append("!pte %s row %d: %r, WinDbg prints %r" % (m[1], row, g, w))
    return problems, blocks


WALK_RESULT = re.compile(r"vmwalk: (\S+) 0x([0-9a-f]+) -> physical 0x([0-9a-f]+) \(")
WALKS = ("mdl-mapping", "partial-mapping", "DriverEntry", "stack")  # the driver's own addresses


def check_log(harness, mappings):
    """What the log must say, from the world."""
    world, text = harness.world, "".join(line for _, line in harness.lines)
    regs = world.registers()
    wanted = [
        "vmwalk: paging: TTBR0_EL1 %#x TTBR1_EL1 %#x TCR_EL1 %#x, 47-bit lower and 47-bit upper range, 48-bit output, 4 KiB granule\n"
        % (regs["TTBR0_EL1"], regs["TTBR1_EL1"], TCR_EL1),
        "vmwalk: self-map: TTBR1_EL1's level 0 entry %#x (%d) maps the page it is in; PTE base 0xffffa88000000000\n"
        % (SELF_MAP, SELF_MAP),
    ]
    (first, first_pa), (second, second_pa) = mappings
    pfn = first_pa >> 12
    slots = [world.slot(va, False) for va in (first, second)]
    wanted.append("vmwalk: mdl-mapping and partial-mapping share PFN %#x through two PTEs, at phys %#x and %#x\n"
                  % (pfn, slots[0], slots[1]))
    for va, pa in mappings:
        wanted.append("%#x -> physical %#x (4K page at %#x, EL1 rw, EL0 -, EL1 nx, EL0 nx, ISH, AttrIndx 0)\n" % (va, pa, pa))
        wanted.append("%#x: MmGetPhysicalAddress %#x and MDL PFN %#x agree with the walk\n" % (va, pa, pfn))
    missing = [w for w in wanted if w not in text]
    # Every walk the driver makes, and each one's answer the world's.
    walked = {}
    for m in WALK_RESULT.finditer(text):
        name, va, pa = m[1], int(m[2], 16), int(m[3], 16)
        walked[name] = va
        if world.translate(va) != pa:
            missing.append("%s %#x -> physical %#x (the world's)" % (name, va, world.translate(va) or 0))
    missing += ["a walk of %s" % name for name in WALKS if name not in walked]
    errors = [line for level, line in harness.lines if level == DPFLTR_ERROR_LEVEL]
    block_problems, blocks = check_pte_blocks(world, [line for _, line in harness.lines])
    if blocks < len(mappings):
        block_problems.append("%d !pte blocks logged, fewer than the %d mappings" % (blocks, len(mappings)))
    return (["the log lacks %r" % m for m in missing] + ["error line: %r" % e for e in errors]
            + block_problems)


def run(path, tamper=None, echo=True):
    """DriverEntry, then DriverUnload; the problems found. `tamper` breaks
    the harness on purpose (the self-test)."""
    harness = Harness(path, echo)
    if tamper:
        tamper(harness)
    driver = harness.alloc(0x150)  # DRIVER_OBJECT
    name = "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\vmwalk".encode("utf-16-le")
    buffer = harness.alloc(len(name) + 2)
    harness.uc.mem_write(buffer, name)
    path_string = harness.alloc(16)
    harness.uc.mem_write(path_string, struct.pack("<HHxxxxQ", len(name), len(name) + 2, buffer))
    harness.say("arm64: the emulated CPU runs with its MMU off, so the driver's pages, code and stack lie at low\n"
                "arm64: identity-mapped addresses: their walks go through TTBR0_EL1 and the driver calls them\n"
                "arm64: user space; on Windows they are kernel addresses, walked through TTBR1_EL1\n")
    harness.say("arm64: DriverEntry\n")
    status = harness.call(harness.entry, driver, path_string)
    # The driver's order: its page's own mapping (mdl-mapping), then the partial MDL's.
    mappings = sorted(((va, harness.world.translate(va)) for va in harness.mappings),
                      key=lambda m: harness.mdls[harness.mappings[m[0]]].get("kind") != "pages")
    if status != STATUS_SUCCESS:
        harness.problem("DriverEntry returned %s" % (None if status is None else "%#010x" % status))
    elif len(mappings) != 2 or mappings[0][1] != mappings[1][1]:
        harness.problem("after DriverEntry: mappings %s, not two of one frame" % mappings)
    else:
        for change in getattr(harness, "after_entry", ()):  # self-test: the world changes under the log
            change()
        harness.problems += check_log(harness, mappings)
        unload = harness.u64(driver + 0x68)  # DRIVER_OBJECT.DriverUnload
        if not unload:
            harness.problem("DriverEntry succeeded but set no DriverUnload")
        else:
            harness.say("arm64: DriverUnload\n")
            harness.call(unload, driver)
    left = [hex(m) for m, r in harness.mdls.items() if r["live"]] + [hex(va) for va in harness.mappings]
    if left:
        harness.problem("left at unload: %s" % ", ".join(left))
    harness.say("arm64: %d kernel calls, %d lines\n" % (len(harness.calls), len(harness.lines)))
    return harness.problems


def second_mapping_elsewhere(harness):
    """The second mapping is another page: no alias."""
    original = harness.MmMapLockedPagesSpecifyCache

    def mapping(mdl, *args):
        if harness.mappings:
            harness.mdls[mdl]["pages"] = HostPages(PAGE)
        return original(mdl, *args)
    harness.MmMapLockedPagesSpecifyCache = mapping


def ttbr1_elsewhere(harness):
    """TTBR1_EL1 a page off: no self-map."""
    registers = harness.world.registers
    harness.world.registers = lambda: dict(registers(), TTBR1_EL1=registers()["TTBR1_EL1"] + PAGE)


def io_free_mdl_frees_nothing(harness):
    harness.IoFreeMdl = lambda mdl, *_: None


def windows_disagrees(harness):
    harness.MmGetPhysicalAddress = lambda va, *_: (harness.world.translate(va) or 0) + PAGE


def stack_unmapped(harness):
    """The world no longer maps the stack: the driver's stack walk fails,
    with an error line."""
    harness.world.unmap(STACK, STACK_SIZE // PAGE)


def flip_ng_after_entry(harness):
    """After DriverEntry the first mapping's level 3 descriptor gains nG: the
    !pte blocks the driver logged no longer match the world."""
    def flip():
        first = min(harness.mappings)
        at = harness.world.slot(first, False)
        harness.world.write(at, struct.unpack("<Q", harness.world.read(at, 8))[0] ^ 1 << 11)
    harness.after_entry = [flip]


# Each break, and a problem it must raise (the check it exercises).
SELF_TEST = {
    "a second mapping of another page": (second_mapping_elsewhere, "DriverEntry returned 0xc00000e5"),
    "TTBR1_EL1 a page off (no self-map)": (ttbr1_elsewhere, "the log lacks \"vmwalk: self-map:"),
    "an IoFreeMdl that frees nothing": (io_free_mdl_frees_nothing, "MmFreePagesFromMdl("),
    "MmGetPhysicalAddress a page off": (windows_disagrees, "MmGetPhysicalAddress"),
    "the stack unmapped (the stack walk fails): its error line": (stack_unmapped, "error line: 'vmwalk: walk of stack"),
    "the stack unmapped (the stack walk fails): no stack walk": (stack_unmapped, "the log lacks 'a walk of stack'"),
    "a descriptor bit that differs from the logged !pte block": (flip_ng_after_entry, " row 2: "),
}


def main():
    args = sys.argv[1:]
    self_test = "--self-test" in args
    paths = [a for a in args if a != "--self-test"]
    if len(paths) != 1:
        sys.exit("usage: arm64.py [--self-test] VMWALK.SYS")
    problems = run(paths[0])
    for problem in problems:
        print("arm64: FAILED: %s" % problem)
    failed = bool(problems)
    if self_test:  # each break must be caught
        for name, (tamper, expected) in SELF_TEST.items():
            problems = run(paths[0], tamper, echo=False)
            caught = [p for p in problems if expected in p]
            print("arm64 self-test: %s: %s" % (name, ("caught (%s)" % caught[0]) if caught
                                               else "NOT CAUGHT (%r)" % problems))
            failed |= not caught
    print("arm64: %s" % ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
