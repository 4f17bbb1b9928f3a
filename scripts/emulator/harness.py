"""Run vmwalk.sys under speakeasy-emulator: DriverEntry, then DriverUnload.

The harness implements every ntoskrnl call the driver makes (speakeasy lacks
ExAllocatePool2, MmBuildMdlForNonPagedPool and MmUnmapLockedPages, and its
MmMapLockedPagesSpecifyCache returns fresh memory, not an alias). It tracks
every pool allocation, MDL and mapping, and fails when anything is left at
unload, when a rule Driver Verifier enforces is broken, when the driver calls
an API nobody handles, or when DriverEntry fails. The driver's DbgPrintEx
lines are printed as the debugger shows them.

The driver also walks its own page tables: the harness gives it a paging
world (world.py) with the image, stack, pool and mapping mapped, answers its
CR3/CR4/EFER/CPUID reads, MmCopyMemory and MmGetPhysicalAddress from that
world, and checks every address the driver prints against it.

--fail CALL makes one kernel call fail; --fault-injection makes each fail in
turn and checks that DriverEntry returns the matching error status, logs it,
and leaves nothing allocated. --corrupt KIND breaks one entry on the walk of
the page's first address; --corruption-tests runs each corruption, in 4- and
5-level worlds.

--verifier models Driver Verifier: the MDL rules it enforces (flags each call
requires and sets, mapping twice, freeing a mapped MDL, IRQL) stop the run
with bug check 0xC4 and its subcode, and MmIsDriverVerifying says TRUE.
--seed-sequence sets the service's Parameters\MappingMethod to
NonPagedPoolMdl; with --verifier as well, the driver's refusal is bypassed
(MmIsDriverVerifying says FALSE) so the model meets the sequence itself.
"""

import argparse
import itertools
import ctypes
import mmap
import random
import re
import struct
import sys
from dataclasses import dataclass, field

import pefile
import speakeasy
from speakeasy.winenv import arch as e_arch

import world as paging
from walk_check import ENTRY_LINE, WALK_LINE, check_world

PAGE = 0x1000
POOL_FLAG_NON_PAGED = 0x40
MDL_MAPPED_TO_SYSTEM_VA = 0x1
MDL_PAGES_LOCKED = 0x2
MDL_SOURCE_IS_NONPAGED_POOL = 0x4
MDL_ALLOCATED_FIXED_SIZE = 0x8
MDL_PARTIAL = 0x10
MDL_PARTIAL_HAS_BEEN_MAPPED = 0x20
MDL_IO_PAGE_READ = 0x40
MDL_ALLOCATED_MUST_SUCCEED = 0x4000
MM_ALLOCATE_FULLY_REQUIRED = 0x4
OBJ_KERNEL_HANDLE = 0x200
KEY_VALUE_PARTIAL_INFORMATION = 2
REG_SZ = 1
REG_DWORD = 4
REG_MULTI_SZ = 7
STATUS_INVALID_PARAMETER = 0xC000000D
PROCESS_ID = 6732  # the world's user process, when addresses are named
PROCESS_IMAGE = "\\Device\\HarddiskVolume3\\Windows\\System32\\notepad.exe"  # its image file
NAMED_LINE = re.compile(r"vmwalk: \d+ address\(es\) named")
ALIAS_START = re.compile(r"vmwalk: (MmAllocatePagesForMdlEx|ExAllocatePool2)\b")
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
STATUS_BUFFER_OVERFLOW = 0x80000005
DRIVER_VERIFIER_DETECTED_VIOLATION = 0xC4
MDL_HEADER = 0x30  # sizeof(MDL) on x64; the PFN array follows
MM_COPY_MEMORY_PHYSICAL = 0x1
KERNEL_MODE, MM_CACHED, NX_NORMAL_PRIORITY = 0, 1, 0x4000_0000 | 16
DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL = 77, 0
PROT_RW = 3  # unicorn UC_PROT_READ | UC_PROT_WRITE: data, never executable
STATUS_SUCCESS = 0
STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
STATUS_INTERNAL_ERROR = 0xC00000E5
SCN_EXECUTE = 0x2000_0000

# Where the harness puts the driver, its stack and ntoskrnl's variables:
# kernel addresses, as on Windows (speakeasy's defaults are user addresses).
IMAGE_BASE = 0xFFFF_F806_1A20_0000  # 2 MiB-aligned: the world maps it with a large page
STACK_BASE, KERNEL_STACK_SIZE = 0xFFFF_A58C_2E4D_0000, 0x6000
NT_DATA = 0xFFFF_F806_1F46_3000
KUSER_SHARED_DATA = 0xFFFF_F780_0000_0000  # speakeasy maps it there
# ntoskrnl's exported variables: the IAT slot holds the variable's address.
DATA_IMPORTS = {"MmHighestUserAddress": paging.HIGHEST_USER_ADDRESS,
                "MmSystemRangeStart": paging.SYSTEM_RANGE_START}
# Paging-register reads the harness answers (unicorn's own are not
# consistent with the world: `mov rax, cr3` reads 0).
REGISTER_READS = {"mov rax, cr3": b"\x0f\x20\xd8", "mov rax, cr4": b"\x0f\x20\xe0",
                  "rdmsr": b"\x0f\x32", "cpuid": b"\x0f\xa2"}
IA32_EFER = 0xC000_0080

# Kernel calls that can fail, how the driver must react (status, first words
# of its error line), and the kernels that break their contract (a second
# mapping that does not alias, that is the first address, or page tables
# that disagree with the memory behind them). Each applies to the default
# method, the seed's sequence (--seed-sequence), or both.
FAULTS = {
    "MmAllocatePagesForMdlEx": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: MmAllocatePagesForMdlEx failed"),
    "short-page-allocation": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: MmAllocatePagesForMdlEx: MDL"),
    "ExAllocatePool2": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: ExAllocatePool2 failed"),
    "IoAllocateMdl": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: IoAllocateMdl failed"),
    "MmBuildMdlForNonPagedPool": (STATUS_INTERNAL_ERROR, "vmwalk: MmBuildMdlForNonPagedPool failed"),
    "MmMapLockedPagesSpecifyCache": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: MmMapLockedPagesSpecifyCache failed"),
    "second-mapping": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: MmMapLockedPagesSpecifyCache failed"),
    "same-address": (STATUS_INTERNAL_ERROR, "vmwalk: alias check failed: the second address"),
    "not-aliased": (STATUS_INTERNAL_ERROR, "vmwalk: alias check failed: word"),
    "walk-contradicts": (STATUS_INTERNAL_ERROR, None),  # "<first> and <second> do not share a page"
    # These do not fail the load: the driver logs them and goes on.
    "ZwOpenKey": (STATUS_SUCCESS, "vmwalk: opening the service key failed"),
    "ZwQueryValueKey": (STATUS_SUCCESS, "vmwalk: reading MappingMethod failed"),
    "PsLookupProcessByProcessId": (STATUS_SUCCESS, "vmwalk: PsLookupProcessByProcessId(%d) failed" % PROCESS_ID),
    "MmCopyMemory": (STATUS_SUCCESS, None),  # "walk of <first> ... failed"
    "MmGetPhysicalAddress": (STATUS_SUCCESS, None),  # "disagreement for <first>"
}
DEFAULT_ONLY = {"MmAllocatePagesForMdlEx", "short-page-allocation", "second-mapping"}
SEED_ONLY = {"ExAllocatePool2", "MmBuildMdlForNonPagedPool"}
# Calls that return nothing, so they have no failure to inject.
RELEASES = {"ExFreePoolWithTag", "IoFreeMdl", "MmUnmapLockedPages", "MmFreePagesFromMdl", "IoBuildPartialMdl",
            "ZwClose", "MmIsDriverVerifying", "ObfDereferenceObject", "KeStackAttachProcess",
            "KeUnstackDetachProcess"}


class HostPages:
    """Host memory that backs guest pages; mapping it twice makes an alias."""

    def __init__(self, size):
        self.size = size
        self.buffer = mmap.mmap(-1, size)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))


@dataclass
class Pool:
    size: int
    tag: int
    pages: HostPages
    pfn: int
    live: bool = True


@dataclass
class Mdl:
    va: int
    length: int
    live: bool = True
    built: bool = False
    pages: HostPages | None = None  # what its PFN array names, once built
    pfn: int = 0
    kind: str = "allocated"  # or "pages" (MmAllocatePagesForMdlEx)
    pages_live: bool = False
    source: int | None = None  # a partial MDL's source


@dataclass
class Mapping:
    mdl: int
    size: int
    pages: HostPages  # kept alive: unicorn reads it while mapped
    live: bool = True
    owns_va: bool = True  # False: an address the kernel had already handed out


@dataclass
class World:
    """Everything the driver holds, and the rules it broke."""

    fault: str | None
    echo: bool
    paging: paging.PagingWorld
    corrupt: str | None = None
    verifier: bool = False  # the Driver Verifier model
    verifying: bool = False  # what MmIsDriverVerifying answers
    parameters: dict | None = None  # Parameters values: name -> (type, bytes); None: no key
    bug_check: tuple | None = None
    irql: int = 0
    map_calls: int = 0
    open_keys: list = field(default_factory=list)
    close_nothing: bool = False  # self-test: ZwClose leaves the handle open
    premap: bool = False  # self-test: MmAllocatePagesForMdlEx's MDL says it is mapped already
    process: tuple | None = None  # (top, CR3) of the world's user process
    eprocess: int = 0  # its EPROCESS address in guest memory
    process_references: int = 0
    image_names: dict = field(default_factory=dict)  # address -> live, SeLocateProcessImageName's strings
    attached: tuple | None = None  # (APC state address, the address space left)
    pools: dict = field(default_factory=dict)
    mdls: dict = field(default_factory=dict)
    mappings: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    next_pool_va: int = 0xFFFF_B08A_1C2D_0000
    next_map_va: int = 0xFFFF_F604_7B5E_0000
    # The default method's first address (the pages' own MDL), in another
    # page directory than the partial MDL's mapping: --corrupt breaks its
    # PDE without touching the second address's walk.
    next_first_va: int = 0xFFFF_F605_2C71_0000
    next_mdl_va: int = 0xFFFF_D20C_5E31_0000

    def rule(self, ok, message):
        if not ok:
            self.violations.append(message)
        return ok

    def live(self):
        return (sum(p.live for p in self.pools.values()),
                sum(m.live for m in self.mdls.values()),
                sum(m.live for m in self.mappings.values()))

    def stop(self, emu, subcode, p2, p3, p4, cause):
        """Driver Verifier stops the machine: bug check 0xC4 with its parameters."""
        if self.bug_check is None:
            self.bug_check = (DRIVER_VERIFIER_DETECTED_VIOLATION, subcode, p2, p3, p4, cause)
            print("*** STOP: 0x%08X (0x%016X, 0x%016X, 0x%016X, 0x%016X)" % self.bug_check[:5])
            print("*** DRIVER_VERIFIER_DETECTED_VIOLATION: %s" % cause)
        emu.stop()

    def check_irql(self, emu, limit, subcode, call):
        if self.verifier and self.irql > limit:
            self.stop(emu, subcode, self.irql, 0, 0, "%s at IRQL %d" % (call, self.irql))
            return False
        return True

    def pool_containing(self, va, length):
        for base, pool in self.pools.items():
            if pool.live and base <= va and va + length <= base + pool.size:
                return base
        return None


def pages_spanned(va, length):
    """How many pages `va..va+length` touches: the length of an MDL's PFN array."""
    return (va % PAGE + length + PAGE - 1) // PAGE


def map_host_pages(emu, world, va, pages, pfn):
    """Map `pages` at guest `va`, read/write and not executable, in unicorn
    and in the paging world (at frames from `pfn`)."""
    emu.mem_reserve(pages.size, base=va, tag="vmwalk.%x" % va)
    emu.emu_eng.emu.mem_map_ptr(va, pages.size, PROT_RW, pages.address)
    world.paging.map(va, pfn * PAGE, pages.size, paging.NX | paging.RW)


def mdl_flags(emu, mdl):
    """MDL.MdlFlags, a CSHORT at offset 0xA."""
    return struct.unpack("<H", emu.mem_read(mdl + 0xA, 2))[0]


def update_mdl_flags(emu, mdl, set_bits=0, clear_bits=0):
    """Set and clear bits of MDL.MdlFlags (a CSHORT at offset 0xA)."""
    flags = struct.unpack("<H", emu.mem_read(mdl + 0xA, 2))[0]
    emu.mem_write(mdl + 0xA, struct.pack("<H", (flags | set_bits) & ~clear_bits))


def format_line(fmt, args, read_string):
    """%p as the debugger prints it (16 upper-case digits), %08X, %s (a C
    string read with `read_string`), %%."""
    def convert(match):
        spec = match.group(0)
        if spec == "%%":
            return "%"
        value = args.pop(0)
        if spec == "%s":
            return read_string(value)
        return "%016X" % value if spec == "%p" else "%08X" % (value & 0xFFFFFFFF)
    return re.sub(r"%%|%p|%08X|%s", convert, fmt)


def install(se, world, missing=()):
    """Register a handler for every ntoskrnl call the driver makes, except
    the `missing` ones (for the self-test); returns the names handled."""
    handled = set()

    def hook(name, argc):
        def register(handler):
            def wrapper(emu, api_name, func, argv):
                world.calls.append(name)
                return handler(emu, argv)
            if name not in missing:
                se.add_api_hook(wrapper, "ntoskrnl", name, argc=argc)
                handled.add(name)
            return handler
        return register

    def corrupt_first_address(va):
        """Break the walk of the page's first address (--corrupt)."""
        if world.corrupt:
            world.paging.corrupt(va, world.corrupt)
            level, slot, old, new = world.paging.corrupted
            if world.echo:
                print("harness: corrupted the first address's %s at phys %#x: %#018x -> %#018x (%s)"
                      % (level, slot, old, new, paging.CORRUPTIONS[world.corrupt]))

    def new_mdl(emu, va, length, flags, pfn_first=None):
        """An MDL in guest memory: header, then the PFN array."""
        pages = pages_spanned(va, length)
        mdl = emu.mem_map(PAGE, base=world.next_mdl_va, tag="vmwalk.mdl")
        world.paging.map(mdl, world.paging.alloc_frame() * PAGE, PAGE, paging.NX | paging.RW)
        world.next_mdl_va += 0x10 * PAGE
        header = struct.pack("<QhhxxxxQQQII", 0, MDL_HEADER + 8 * pages, flags, 0, 0, va & ~(PAGE - 1), length, va % PAGE)
        emu.mem_write(mdl, header)
        if pfn_first is not None:
            emu.mem_write(mdl + MDL_HEADER, struct.pack("<%dQ" % pages, *range(pfn_first, pfn_first + pages)))
        return mdl

    @hook("ExAllocatePool2", 3)
    def ex_allocate_pool2(emu, argv):
        flags, size, tag = argv
        world.rule(flags == POOL_FLAG_NON_PAGED, "pool flags %#x, not POOL_FLAG_NON_PAGED (NX)" % flags)
        world.rule(tag != 0 and all(0x20 <= b <= 0x7E for b in tag.to_bytes(4, "little")),
                   "pool tag %#x is not printable ASCII" % tag)
        if world.fault == "ExAllocatePool2" or size == 0:
            return 0
        size = (size + PAGE - 1) & ~(PAGE - 1)
        va = world.next_pool_va
        world.next_pool_va += size + 0x10 * PAGE  # a guard gap after each allocation
        pool = world.pools[va] = Pool(size, tag, HostPages(size), world.paging.alloc_frame(size // PAGE))
        map_host_pages(emu, world, va, pool.pages, pool.pfn)
        view = memoryview(pool.pages.buffer)
        for page in range(size // PAGE):  # the pool's frames hold the pool's bytes
            world.paging.memory.back(pool.pfn + page, view[page * PAGE:(page + 1) * PAGE])
        corrupt_first_address(va)
        return va

    @hook("ExFreePoolWithTag", 2)
    def ex_free_pool_with_tag(emu, argv):
        va, tag = argv
        if world.image_names.get(va):  # SeLocateProcessImageName's string, freed with ExFreePool
            world.rule(tag == 0, "ExFreePoolWithTag(image name %#x, %#x): ExFreePool passes tag 0" % (va, tag))
            world.image_names[va] = False
            emu.mem_free(va)
            return 0
        record = world.mdls.get(va)
        if record is not None and record.live:  # ExFreePool of an MmAllocatePagesForMdlEx MDL
            world.rule(record.kind == "pages" and not record.pages_live,
                       "ExFreePool(%#x): an MDL whose pages are not freed, or not from MmAllocatePagesForMdlEx" % va)
            world.rule(tag == 0, "ExFreePoolWithTag(MDL %#x, %#x): ExFreePool passes tag 0" % (va, tag))
            record.live = False
            emu.mem_free(va)
            world.paging.unmap(va, PAGE)
            return 0
        pool = world.pools.get(va)
        if not world.rule(pool is not None and pool.live, "ExFreePoolWithTag(%#x): not live pool (double free?)" % va):
            return 0
        world.rule(tag == pool.tag, "ExFreePoolWithTag(%#x): tag %#x, allocated with %#x" % (va, tag, pool.tag))
        world.rule(not any(m.live and va <= m.va < va + pool.size for m in world.mdls.values()),
                   "ExFreePoolWithTag(%#x) while an MDL still describes it" % va)
        pool.live = False
        emu.emu_eng.emu.mem_unmap(va, pool.size)  # later use faults; the range stays reserved
        world.paging.unmap(va, pool.size)
        return 0

    @hook("MmAllocatePagesForMdlEx", 6)
    def mm_allocate_pages_for_mdl_ex(emu, argv):
        low, high, skip, total, cache, flags = argv
        if not world.check_irql(emu, 2, 0x7E, "MmAllocatePagesForMdlEx"):
            return 0
        world.rule((low, high, skip) == (0, (1 << 64) - 1, 0),
                   "MmAllocatePagesForMdlEx(%#x, %#x, %#x): want any page (0, ~0, 0)" % (low, high, skip))
        world.rule((cache & 0xFFFFFFFF, flags & 0xFFFFFFFF) == (MM_CACHED, MM_ALLOCATE_FULLY_REQUIRED),
                   "MmAllocatePagesForMdlEx needs MmCached and MM_ALLOCATE_FULLY_REQUIRED")
        if world.fault == "MmAllocatePagesForMdlEx" or total == 0 or total % PAGE:
            return 0
        pages, pfn = HostPages(total), world.paging.alloc_frame(total // PAGE)
        view = memoryview(pages.buffer)
        for page in range(total // PAGE):
            world.paging.memory.back(pfn + page, view[page * PAGE:(page + 1) * PAGE])
        length = total // 2 if world.fault == "short-page-allocation" else total
        mapped = MDL_MAPPED_TO_SYSTEM_VA if world.premap else 0
        mdl = new_mdl(emu, 0, length, MDL_PAGES_LOCKED | mapped, pfn)  # no virtual address: StartVa 0
        world.mdls[mdl] = Mdl(0, length, built=True, pages=pages, pfn=pfn, kind="pages", pages_live=True)
        return mdl

    @hook("MmFreePagesFromMdl", 1)
    def mm_free_pages_from_mdl(emu, argv):
        (mdl,) = argv
        record = world.mdls.get(mdl)
        if not world.rule(record is not None and record.live and record.kind == "pages" and record.pages_live,
                          "MmFreePagesFromMdl(%#x): not an MDL with pages of its own (twice?)" % mdl):
            return 0
        world.rule(not any(m.live and m.mdl == mdl for m in world.mappings.values()),
                   "MmFreePagesFromMdl(%#x) while its pages are mapped" % mdl)
        world.rule(not any(m.live and m.source == mdl for m in world.mdls.values()),
                   "MmFreePagesFromMdl(%#x) while a partial MDL describes its pages" % mdl)
        record.pages_live = False
        for page in range(record.pages.size // PAGE):  # the frames are free RAM again
            world.paging.memory.frames.pop(record.pfn + page, None)
        return 0

    @hook("IoAllocateMdl", 5)
    def io_allocate_mdl(emu, argv):
        va, length, secondary, quota, irp = argv
        world.rule((secondary & 0xFF, quota & 0xFF, irp) == (0, 0, 0),
                   "IoAllocateMdl without an IRP needs SecondaryBuffer, ChargeQuota FALSE and Irp NULL")
        length &= 0xFFFFFFFF
        pages_mdl = any(m.live and m.kind == "pages" and m.pages_live and m.va <= va and va + length <= m.va + m.pages.size
                        for m in world.mdls.values())
        if not world.rule(world.pool_containing(va, length) is not None or pages_mdl,
                          "IoAllocateMdl(%#x, %#x): neither live pool nor live MDL pages (use after free?)" % (va, length)):
            return 0
        if world.fault == "IoAllocateMdl":
            return 0
        mdl = new_mdl(emu, va, length, MDL_ALLOCATED_FIXED_SIZE)
        world.mdls[mdl] = Mdl(va, length)
        return mdl

    @hook("IoBuildPartialMdl", 4)
    def io_build_partial_mdl(emu, argv):
        source, target, va, length = argv
        length &= 0xFFFFFFFF
        record, partial = world.mdls.get(source), world.mdls.get(target)
        if not world.rule(record is not None and record.live and record.built and partial is not None and partial.live,
                          "IoBuildPartialMdl(%#x, %#x): not a live, built source and a live target" % (source, target)):
            return 0
        world.rule(record.va <= va and va + length <= record.va + record.length and length > 0,
                   "IoBuildPartialMdl outside its source")
        world.rule(pages_spanned(va, length) <= pages_spanned(partial.va, partial.length),
                   "IoBuildPartialMdl: the target MDL is too small (TARGET_MDL_TOO_SMALL)")
        # As IoBuildPartialMdl does (WRK, ReactOS): keep the allocation bits,
        # inherit nonpaged-pool, mapped and page-read, and mark it partial.
        flags = (mdl_flags(emu, target) & (MDL_ALLOCATED_FIXED_SIZE | MDL_ALLOCATED_MUST_SUCCEED)) \
            | (mdl_flags(emu, source) & (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA | MDL_IO_PAGE_READ)) \
            | MDL_PARTIAL
        update_mdl_flags(emu, target, set_bits=flags, clear_bits=0xFFFF & ~flags)
        mapped = struct.unpack("<Q", emu.mem_read(source + 0x18, 8))[0]
        emu.mem_write(target + 0x18, struct.pack("<Q", (mapped + va - record.va) & ((1 << 64) - 1)))
        first = record.pfn + ((va & ~(PAGE - 1)) - (record.va & ~(PAGE - 1))) // PAGE
        pages = pages_spanned(va, length)
        emu.mem_write(target + MDL_HEADER, struct.pack("<%dQ" % pages, *range(first, first + pages)))
        partial.built, partial.pages, partial.pfn, partial.source = True, record.pages, first, source
        return 0

    @hook("MmBuildMdlForNonPagedPool", 1)
    def mm_build_mdl_for_non_paged_pool(emu, argv):
        (mdl,) = argv
        record = world.mdls.get(mdl)
        if not world.rule(record is not None and record.live, "MmBuildMdlForNonPagedPool(%#x): not a live MDL" % mdl):
            return 0
        base = world.pool_containing(record.va, record.length)
        if not world.rule(base is not None, "MmBuildMdlForNonPagedPool over freed pool"):
            return 0
        if world.fault == "MmBuildMdlForNonPagedPool":
            return 0
        update_mdl_flags(emu, mdl, set_bits=MDL_SOURCE_IS_NONPAGED_POOL)
        emu.mem_write(mdl + 0x18, struct.pack("<Q", record.va))  # MappedSystemVa
        first = world.pools[base].pfn + (record.va - base) // PAGE
        pages = pages_spanned(record.va, record.length)
        emu.mem_write(mdl + MDL_HEADER, struct.pack("<%dQ" % pages, *range(first, first + pages)))
        record.built, record.pages, record.pfn = True, world.pools[base].pages, first
        return 0

    @hook("MmMapLockedPagesSpecifyCache", 6)
    def mm_map_locked_pages_specify_cache(emu, argv):
        mdl, mode, cache, requested, bugcheck, priority = argv
        if not world.check_irql(emu, 2, 0x76, "MmMapLockedPagesSpecifyCache(KernelMode)"):
            return 0
        if world.verifier and bugcheck & 0xFFFFFFFF:
            world.stop(emu, 0x82, mdl, mdl_flags(emu, mdl), 0, "MmMapLockedPagesSpecifyCache with BugCheckOnFailure TRUE")
            return 0
        world.rule((mode & 0xFF, cache & 0xFFFFFFFF, requested, bugcheck & 0xFFFFFFFF)
                   == (KERNEL_MODE, MM_CACHED, 0, 0),
                   "MmMapLockedPagesSpecifyCache needs KernelMode, MmCached, NULL, FALSE")
        world.rule(priority & 0xFFFFFFFF == NX_NORMAL_PRIORITY,
                   "priority %#x, not NormalPagePriority | MdlMappingNoExecute" % priority)
        record = world.mdls.get(mdl)
        if not world.rule(record is not None and record.live and record.built,
                          "MmMapLockedPagesSpecifyCache(%#x): not a live, built MDL" % mdl):
            return 0
        flags = mdl_flags(emu, mdl)
        if world.verifier:  # the WRK's ASSERTs, which Verifier enforces on retail kernels
            already = flags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL_HAS_BEEN_MAPPED)
            if already:
                world.stop(emu, 0xB2, mdl, flags, already, "MmMapLockedPages of an MDL already mapped to a system address")
                return 0
            if not flags & (MDL_PAGES_LOCKED | MDL_PARTIAL):
                world.stop(emu, 0xB3, mdl, flags, MDL_PAGES_LOCKED | MDL_PARTIAL,
                           "MmMapLockedPages of an MDL whose pages are not locked")
                return 0
        world.map_calls += 1
        if world.fault == "MmMapLockedPagesSpecifyCache" and world.map_calls == 1 \
                or world.fault == "second-mapping" and world.map_calls == 2:
            return 0
        # The call that makes the second address: the seed's only one, the default's second.
        second = world.map_calls == 2 or flags & MDL_SOURCE_IS_NONPAGED_POOL
        size = pages_spanned(record.va, record.length) * PAGE
        if second and world.fault == "same-address":
            live = [va for (va, _), m in world.mappings.items() if m.live]
            va = live[0] if live else next(base for base, p in world.pools.items() if p.live)
            world.mappings[(va, mdl)] = Mapping(mdl, size, record.pages, owns_va=False)
        else:
            pages, pfn = record.pages, record.pfn
            if second and world.fault in ("not-aliased", "walk-contradicts"):
                pfn = world.paging.alloc_frame(size // PAGE)  # the page tables say another frame
                if world.fault == "not-aliased":
                    pages = HostPages(size)  # and the memory really is another page
            if record.kind == "pages":
                va = world.next_first_va
                world.next_first_va += size + 0x10 * PAGE
            else:
                va = world.next_map_va
                world.next_map_va += size + 0x10 * PAGE
            map_host_pages(emu, world, va, pages, pfn)
            world.mappings[(va, mdl)] = Mapping(mdl, size, pages)
            if record.kind == "pages":  # the default method's first address
                corrupt_first_address(va)
        update_mdl_flags(emu, mdl, set_bits=MDL_MAPPED_TO_SYSTEM_VA | (MDL_PARTIAL_HAS_BEEN_MAPPED if flags & MDL_PARTIAL else 0))
        emu.mem_write(mdl + 0x18, struct.pack("<Q", va + record.va % PAGE))
        return va + record.va % PAGE

    @hook("MmUnmapLockedPages", 2)
    def mm_unmap_locked_pages(emu, argv):
        va, mdl = argv
        mapping = world.mappings.get((va & ~(PAGE - 1), mdl))
        if not world.rule(mapping is not None and mapping.live,
                          "MmUnmapLockedPages(%#x, %#x): not mapped with that MDL (twice?)" % (va, mdl)):
            return 0
        mapping.live = False
        if mapping.owns_va:
            emu.emu_eng.emu.mem_unmap(va & ~(PAGE - 1), mapping.size)
            world.paging.unmap(va & ~(PAGE - 1), mapping.size)
        update_mdl_flags(emu, mdl, clear_bits=MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED)
        return 0

    @hook("IoFreeMdl", 1)
    def io_free_mdl(emu, argv):
        (mdl,) = argv
        record = world.mdls.get(mdl)
        if not world.rule(record is not None and record.live, "IoFreeMdl(%#x): not a live MDL (double free?)" % mdl):
            return 0
        world.rule(record.kind == "allocated",
                   "IoFreeMdl(%#x): an MmAllocatePagesForMdlEx MDL (MmFreePagesFromMdl, then ExFreePool)" % mdl)
        flags = mdl_flags(emu, mdl)
        # A partial MDL may carry MAPPED_TO_SYSTEM_VA from its source; only its own mapping counts.
        own = not flags & MDL_PARTIAL or flags & MDL_PARTIAL_HAS_BEEN_MAPPED
        if world.verifier and flags & MDL_MAPPED_TO_SYSTEM_VA and not flags & MDL_SOURCE_IS_NONPAGED_POOL and own:
            world.stop(emu, 0xB8, mdl, flags, 0, "IoFreeMdl of an MDL whose pages are still mapped")
            return 0
        world.rule(not any(m.live and m.mdl == mdl for m in world.mappings.values()),
                   "IoFreeMdl(%#x) while it is still mapped" % mdl)
        record.live = False
        emu.mem_free(mdl)
        world.paging.unmap(mdl, PAGE)
        return 0

    @hook("MmIsDriverVerifying", 1)
    def mm_is_driver_verifying(emu, argv):
        (driver,) = argv
        world.rule(driver != 0, "MmIsDriverVerifying(NULL)")
        return int(world.verifying)

    def read_unicode(emu, address):
        length, _, buffer = struct.unpack("<HHxxxxQ", emu.mem_read(address, 16))
        return emu.mem_read(buffer, length).decode("utf-16-le")

    @hook("ZwOpenKey", 3)
    def zw_open_key(emu, argv):
        handle_out, access, attributes = argv
        size, root, name, flags = struct.unpack("<IxxxxQQI", emu.mem_read(attributes, 28))
        world.rule(size == 0x30, "OBJECT_ATTRIBUTES.Length %#x, not 0x30" % size)
        world.rule(flags & OBJ_KERNEL_HANDLE, "ZwOpenKey without OBJ_KERNEL_HANDLE: a user-mode process could use the handle")
        world.rule(access & 1, "ZwOpenKey without KEY_QUERY_VALUE")
        if world.fault == "ZwOpenKey":
            return STATUS_INSUFFICIENT_RESOURCES
        text = read_unicode(emu, name)
        if root == 0:
            handle = 0x80  # the service key, RegistryPath
        elif not world.rule(root in world.open_keys, "ZwOpenKey relative to a handle that is not open"):
            return STATUS_INTERNAL_ERROR
        elif text.lower() != "parameters" or world.parameters is None:
            return STATUS_OBJECT_NAME_NOT_FOUND
        else:
            handle = 0x84
        world.open_keys.append(handle)
        emu.mem_write(handle_out, struct.pack("<Q", handle))
        return STATUS_SUCCESS

    @hook("ZwQueryValueKey", 6)
    def zw_query_value_key(emu, argv):
        handle, name, information_class, buffer, length, result = argv
        world.rule(handle == 0x84 and handle in world.open_keys, "ZwQueryValueKey on %#x, not the open Parameters key" % handle)
        world.rule(information_class & 0xFFFFFFFF == KEY_VALUE_PARTIAL_INFORMATION, "ZwQueryValueKey class %d" % information_class)
        if world.fault == "ZwQueryValueKey":
            return STATUS_INSUFFICIENT_RESOURCES
        value = (world.parameters or {}).get(read_unicode(emu, name).lower())
        if value is None:
            return STATUS_OBJECT_NAME_NOT_FOUND
        value_type, data = value
        answer = struct.pack("<III", 0, value_type, len(data)) + data
        emu.mem_write(buffer, answer[:length & 0xFFFFFFFF])
        emu.mem_write(result, struct.pack("<I", len(answer)))
        return STATUS_BUFFER_OVERFLOW if len(answer) > length & 0xFFFFFFFF else STATUS_SUCCESS

    @hook("PsLookupProcessByProcessId", 2)
    def ps_lookup_process_by_process_id(emu, argv):
        pid, out = argv
        if world.fault == "PsLookupProcessByProcessId" or world.process is None or pid != PROCESS_ID:
            return STATUS_INVALID_PARAMETER
        if not world.eprocess:
            world.eprocess = emu.mem_map(PAGE, tag="vmwalk.eprocess")
        world.process_references += 1
        emu.mem_write(out, struct.pack("<Q", world.eprocess))
        return STATUS_SUCCESS

    # ProcessName makes the driver look up every candidate process id
    # (65,536 calls): speakeasy spends ~10 ms per call, so no mode here names
    # a process by name (the fake kernel's tests do); the hook is for the import.
    @hook("SeLocateProcessImageName", 2)
    def se_locate_process_image_name(emu, argv):
        process, out = argv
        if not world.rule(process == world.eprocess and world.process_references > 0,
                          "SeLocateProcessImageName(%#x): not a referenced process" % process):
            return STATUS_INVALID_PARAMETER
        text = PROCESS_IMAGE.encode("utf-16-le")
        string = emu.mem_map(PAGE, tag="vmwalk.imagename")  # pool the caller frees with ExFreePool
        emu.mem_write(string, struct.pack("<HHxxxxQ", len(text), len(text), string + 16) + text)
        world.image_names[string] = True
        emu.mem_write(out, struct.pack("<Q", string))
        return STATUS_SUCCESS

    @hook("ObfDereferenceObject", 1)
    def ob_dereference_object(emu, argv):
        (obj,) = argv
        if world.rule(obj == world.eprocess and world.process_references > 0,
                      "ObDereferenceObject(%#x): not a referenced process (twice?)" % obj):
            world.process_references -= 1
        return 0

    @hook("KeStackAttachProcess", 2)
    def ke_stack_attach_process(emu, argv):
        process, apc_state = argv
        if world.rule(world.attached is None, "KeStackAttachProcess while already attached") and \
                world.rule(process == world.eprocess and world.process_references > 0,
                           "KeStackAttachProcess(%#x): not a referenced process" % process):
            world.attached = (apc_state, world.paging.enter(*world.process))
        return 0

    @hook("KeUnstackDetachProcess", 1)
    def ke_unstack_detach_process(emu, argv):
        (apc_state,) = argv
        if world.rule(world.attached is not None and world.attached[0] == apc_state,
                      "KeUnstackDetachProcess(%#x): not the APC state of the attach" % apc_state):
            world.paging.enter(*world.attached[1])
            world.attached = None
        return 0

    @hook("ZwClose", 1)
    def zw_close(emu, argv):
        (handle,) = argv
        if world.rule(handle in world.open_keys, "ZwClose(%#x): not open (twice?)" % handle) \
                and not world.close_nothing:
            world.open_keys.remove(handle)
        return STATUS_SUCCESS

    @hook("MmCopyMemory", 5)
    def mm_copy_memory(emu, argv):
        target, source, size, flags, transferred = argv
        world.rule(flags & 0xFFFFFFFF == MM_COPY_MEMORY_PHYSICAL,
                   "MmCopyMemory flags %#x, not MM_COPY_MEMORY_PHYSICAL" % flags)
        data = None if world.fault == "MmCopyMemory" else world.paging.memory.read(source, size)
        if data is not None:
            emu.mem_write(target, data)
        emu.mem_write(transferred, struct.pack("<Q", 0 if data is None else size))
        return STATUS_SUCCESS if data is not None else paging.STATUS_INVALID_ADDRESS

    @hook("MmGetPhysicalAddress", 1)
    def mm_get_physical_address(emu, argv):
        (va,) = argv
        if world.fault == "MmGetPhysicalAddress":
            return 0
        return world.paging.translate(va) or 0

    @hook("DbgPrintEx", e_arch.VAR_ARGS)
    def dbg_print_ex(emu, argv):
        component, level, fmt, first, second = emu.get_func_argv(e_arch.CALL_CONV_CDECL, 5)
        text = emu.read_mem_string(fmt)
        world.rule(component & 0xFFFFFFFF == DPFLTR_IHVDRIVER_ID, "DbgPrintEx component %d" % component)
        line = format_line(text, [first, second], emu.read_mem_string)
        world.rule(line.startswith("vmwalk: ") and line.endswith("\n"), "DbgPrintEx line %r" % line)
        world.lines.append((level & 0xFFFFFFFF, line))
        if world.echo:
            sys.stdout.write(line)
        return STATUS_SUCCESS

    return handled


def rebased(path, base):
    """The image at `path`, relocated to `base`."""
    pe = pefile.PE(path)
    pe.relocate_image(base)
    pe.OPTIONAL_HEADER.ImageBase = base
    return bytes(pe.write())


def prepare(emu, module, world, handled, missing):
    """Give the loaded driver a kernel stack, ntoskrnl's variables and a
    world that maps them; returns the failures (imports nobody handles)."""
    emu.mem_map(KERNEL_STACK_SIZE, base=STACK_BASE, tag="vmwalk.stack")
    emu.stack_base = STACK_BASE + KERNEL_STACK_SIZE  # later runs start their RSP here
    emu.reset_stack(emu.stack_base)  # and so does DriverEntry's
    for page in range(STACK_BASE, STACK_BASE + KERNEL_STACK_SIZE, PAGE):
        world.paging.map(page, world.paging.alloc_frame() * PAGE, PAGE, paging.NX | paging.RW)
    image_frame = world.paging.alloc_frame(512) * PAGE
    world.paging.map(IMAGE_BASE, image_frame, paging.LARGE_PAGE, paging.RW)
    # The large page starts as `nt`'s does, with an MZ header, where the would-be
    # PTEs below it would lie: WinDbg shows 0 there, so must the driver.
    world.paging.memory.write_u64(image_frame, 0x0000_0003_0090_5A4D)
    for offset in range(8, PAGE, 8):
        world.paging.memory.write_u64(image_frame + offset, 0xCCCC_CCCC_CCCC_CCCC)
    emu.mem_map(PAGE, base=NT_DATA, tag="vmwalk.ntoskrnl.data")
    world.paging.map(NT_DATA, world.paging.alloc_frame() * PAGE, PAGE, paging.NX | paging.RW)

    failures = []
    variables = NT_DATA
    for slot, (dll, name) in module.imports.items():
        if name in DATA_IMPORTS and name not in missing:
            emu.mem_write(variables, struct.pack("<Q", DATA_IMPORTS[name]))
            emu.mem_write(slot, struct.pack("<Q", variables))
            variables += 8
        elif name not in handled and not emu.api.get_export_func_handler(dll, name)[1] \
                and not emu.api.get_data_export_handler(dll, name)[1]:
            failures.append("unhandled import %s.%s" % (dll, name))
    return failures + hook_register_reads(emu, module, world)


def hook_register_reads(emu, module, world):
    """Answer each paging-register read in the image's code from the world:
    a code hook at the instruction sets the registers and steps over it.
    Returns the failures (an instruction the driver should contain is not there)."""
    sites = {}
    for section in module.sections:
        if section.Characteristics & SCN_EXECUTE:
            code = section.get_data()
            for name, pattern in REGISTER_READS.items():
                at = code.find(pattern)
                while at >= 0:
                    sites[module.base + section.VirtualAddress + at] = name
                    at = code.find(pattern, at + 1)

    def answer(emu, addr, size, ctx):
        name, w = sites[addr], world.paging
        if name == "mov rax, cr3":
            emu.reg_write(e_arch.AMD64_REG_RAX, w.cr3)
        elif name == "mov rax, cr4":
            emu.reg_write(e_arch.AMD64_REG_RAX, w.cr4)
        elif name == "rdmsr":
            msr = emu.reg_read(e_arch.AMD64_REG_RCX) & 0xFFFFFFFF
            world.rule(msr == IA32_EFER, "rdmsr of MSR %#x, which the harness does not model" % msr)
            emu.reg_write(e_arch.AMD64_REG_RAX, paging.EFER if msr == IA32_EFER else 0)
            emu.reg_write(e_arch.AMD64_REG_RDX, 0)
        else:
            leaf = emu.reg_read(e_arch.AMD64_REG_RAX) & 0xFFFFFFFF
            values = w.cpuid(leaf, emu.reg_read(e_arch.AMD64_REG_RCX) & 0xFFFFFFFF)
            for reg, value in zip((e_arch.AMD64_REG_RAX, e_arch.AMD64_REG_RBX,
                                   e_arch.AMD64_REG_RCX, e_arch.AMD64_REG_RDX), values):
                emu.reg_write(reg, value)
        emu.set_pc(addr + len(REGISTER_READS[name]))
        return True

    for addr in sites:
        emu.add_code_hook(answer, begin=addr, end=addr)
    return ["the image has no `%s` (did the driver change?)" % name
            for name in REGISTER_READS if name not in sites.values()]


def run_errors(run):
    """What went wrong in one emulator run, if anything."""
    if not run.error:
        return []
    if run.error.get("type") == "unsupported_api":
        return ["unhandled API %s" % run.error.get("api_name")]
    return ["emulation error: %s" % run.error]


def seed_registry(value="NonPagedPoolMdl"):
    """The Parameters key with MappingMethod set, as regedit writes a REG_SZ."""
    return {"mappingmethod": (REG_SZ, (value + "\0").encode("utf-16-le"))}


def the_two_addresses(world):
    """The driver's names for its page's two addresses, where they are, and
    the page's frame: (names, {name: (first, end)}, pfn)."""
    live = {key: m for key, m in world.mappings.items() if m.live}
    pool = next(((va, p) for va, p in world.pools.items() if p.live), None)
    if pool is not None:  # the seed's sequence
        (mapped, _), mapping = next(iter(live.items()))
        return (("pool", "mapping"), {"pool": (pool[0], pool[0] + pool[1].size),
                                     "mapping": (mapped, mapped + mapping.size)}, pool[1].pfn)
    by_kind = {world.mdls[m.mdl].kind: (va, m) for (va, _), m in live.items()}
    (first, mapping), (second, partial) = by_kind["pages"], by_kind["allocated"]
    return (("mdl-mapping", "partial-mapping"), {"mdl-mapping": (first, first + mapping.size),
                                                 "partial-mapping": (second, second + partial.size)},
            world.mdls[mapping.mdl].pfn)


def emulate(path, fault=None, quiet=False, missing=(), forget=None, tamper=None, la57=False, corrupt=None,
            seed=None, verifier=False, parameters=None, force=False, forget_close=False, premap=False):
    """Run DriverEntry (and DriverUnload if it succeeded); return the World,
    the entry status and the list of failures. `missing`, `forget` and
    `tamper` (applied to the world before its check) break the harness on
    purpose, for the self-test; `corrupt` breaks the walk of the page's
    first address; `seed` makes the world's random choices repeatable.
    `verifier` turns the Driver Verifier model on; `parameters` are the
    values under the service's Parameters key; `force` makes
    MmIsDriverVerifying answer FALSE even with the model on."""
    seed = random.randrange(1 << 32) if seed is None else seed
    world = World(fault, echo=not quiet, corrupt=corrupt, verifier=verifier, verifying=verifier and not force,
                  parameters=parameters, paging=paging.PagingWorld(
                      random.Random(seed), la57, avoid=[IMAGE_BASE, STACK_BASE, NT_DATA, KUSER_SHARED_DATA,
                                                        World.next_pool_va, World.next_map_va, World.next_mdl_va,
                                                        World.next_first_va]))
    se = speakeasy.Speakeasy()
    handled = install(se, world, missing)
    if forget:
        se.add_api_hook(lambda emu, api, func, argv: forget(world), "ntoskrnl", "IoFreeMdl", argc=1)
    world.close_nothing = forget_close  # a ZwClose that closes nothing: the handle leaks
    world.premap = premap
    module = se.load_module(data=rebased(path, IMAGE_BASE))
    failures = prepare(se.emu, module, world, handled, missing)
    if parameters and "addresses" in parameters:
        world.process = world.paging.add_process()
    say = (lambda *a: None) if quiet else print
    say("harness: world: %s, seed %d%s" % (world.paging.describe(), seed,
                                           ", Driver Verifier model on" if verifier else ""))
    say("harness: DriverEntry%s" % ("" if fault is None else " (failing %s)" % fault))
    before = set(world.paging.truth)
    se.run_module(module, all_entrypoints=False)
    entry = se.emu.runs[0]
    if world.bug_check is not None:  # the machine stopped: nothing after counts
        code, subcode = world.bug_check[:2]
        return world, None, ["bug check %#x (DRIVER_VERIFIER_DETECTED_VIOLATION), subcode %#x: %s"
                             % (code, subcode, world.bug_check[5])]
    entry_errors = run_errors(entry)
    failures += entry_errors
    status = (entry.ret_val or 0) & 0xFFFFFFFF
    say("harness: DriverEntry returned NTSTATUS 0x%08X" % status)
    if status == STATUS_SUCCESS and len([m for m in world.mappings.values() if m.live]) == (
            1 if any(p.live for p in world.pools.values()) else 2):
        names, landmarks, pfn = the_two_addresses(world)
        landmarks.update({"DriverEntry": (module.base + module.ep, module.base + module.ep + 1),
                          "stack": (STACK_BASE, STACK_BASE + KERNEL_STACK_SIZE)})
        expect = None if fault else corrupt or "clean"
        if tamper:
            tamper(world)
        # The alias and its walks: after the parameters' lines, before the named addresses'.
        first = next((i for i, (_, t) in enumerate(world.lines) if ALIAS_START.match(t)), 0)
        own_lines = list(itertools.takewhile(lambda line: not NAMED_LINE.match(line[1]), world.lines[first:]))
        world_failures, summary = check_world(own_lines, world.paging, landmarks, pfn, expect, names)
        failures += world_failures
        say("harness: world check: %s: %s" % (summary, "FAILED" if world_failures else "all match"))
    driver = next(d for d in se.emu.drivers if d.address == entry.args[0])
    driver.read_back()
    if status == STATUS_SUCCESS and not entry_errors:
        if not driver.on_unload:
            failures.append("DriverEntry succeeded without setting DriverUnload")
        else:
            say("harness: DriverUnload")
            se.call(driver.on_unload, [driver.address])
            failures += run_errors(se.emu.runs[-1])
            if world.bug_check is not None:
                return world, status, ["bug check %#x at unload, subcode %#x: %s"
                                       % (world.bug_check[0], world.bug_check[1], world.bug_check[5])]
    pools, mdls, mappings = world.live()
    say("harness: made %d pool allocation(s), %d MDL(s), %d mapping(s); left: %d, %d, %d"
        % (len(world.pools), len(world.mdls), len(world.mappings), pools, mdls, mappings))
    if pools or mdls or mappings:
        failures.append("leak: %d pool allocation(s), %d MDL(s), %d mapping(s) left" % (pools, mdls, mappings))
    elif set(world.paging.truth) != before:
        failures.append("the world still maps %d page(s) the driver had" % len(set(world.paging.truth) - before))
    if world.open_keys:
        failures.append("leak: registry handle(s) %s left open" % ", ".join("%#x" % h for h in world.open_keys))
    if any(world.image_names.values()):
        failures.append("leak: %d SeLocateProcessImageName string(s) not freed" % sum(world.image_names.values()))
    if world.process_references or world.attached:
        failures.append("leak: %d process reference(s), %s" % (world.process_references,
                                                               "still attached" if world.attached else "detached"))
    if status == STATUS_SUCCESS and parameters and "addresses" in parameters and not fault:
        failures += check_named(world, parameters)
    return world, status, failures + ["rule broken: " + v for v in world.violations]


def named_parameters(addresses, process_id=PROCESS_ID, process_name=None):
    """Parameters\\Addresses (REG_MULTI_SZ) and ProcessId (REG_DWORD)."""
    data = "".join(a + "\0" for a in addresses) + "\0"
    values = {"addresses": (REG_MULTI_SZ, data.encode("utf-16-le"))}
    if process_name is not None:
        values["processname"] = (REG_SZ, (process_name + "\0").encode("utf-16-le"))
    elif process_id is not None:
        values["processid"] = (REG_DWORD, struct.pack("<I", process_id))
    return values


def check_named(world, parameters):
    """The driver's walks of the named addresses, against the world: each
    kernel one where the driver runs, each user one in the process (its CR3,
    entries, !pte block, physical address or failure)."""
    lines = world.lines
    texts = [text for _, text in lines]
    start = next((i for i, t in enumerate(texts) if NAMED_LINE.match(t)), None)
    if start is None:
        return ["named addresses: no `N address(es) named` line"] if named_values(parameters) else []
    attach = next((i for i, t in enumerate(texts) if t.startswith("vmwalk: attached to process")), None)
    detach = next((i for i, t in enumerate(texts) if t.startswith("vmwalk: detached from process")), len(texts))
    everything = {"address": (0, 1 << 64)}
    failures, summary = check_world(lines[start + 1:attach or len(texts)], world.paging, everything, 0, None, ("-", "-"))
    if attach is not None:
        own = world.paging.enter(*world.process)
        more, _ = check_world(lines[attach + 1:detach], world.paging, everything, 0, None, ("-", "-"))
        world.paging.enter(*own)
        failures += more
        cr3 = next((t for t in texts[attach:detach] if t.startswith("vmwalk: paging: CR3 ")), "")
        if not cr3.startswith("vmwalk: paging: CR3 %#x " % world.process[1]):
            failures.append("named addresses: the walk inside the process must read its CR3 %#x, got %r"
                            % (world.process[1], cr3))
    walked = set(int(m[2], 16) for t in texts[start:] for m in [WALK_LINE.match(t)] if m and m[1] == "address")
    return ["named addresses: " + f for f in failures] + [
        "named addresses: %#x was not walked" % va for va in named_values(parameters) if va not in walked]


def named_values(parameters):
    """The addresses in `parameters` the driver must walk: the first 16 that
    parse, and only those a process is there for."""
    kind, data = parameters["addresses"]
    if kind != REG_MULTI_SZ:
        return []
    values = []
    for text in data.decode("utf-16-le").split("\0"):
        if not text:
            break
        try:
            values.append(int(text.replace("`", "").replace("_", ""), 16))
        except ValueError:
            continue
    values = [v for v in values if v < 1 << 64][:16]
    image = PROCESS_IMAGE.rsplit("\\", 1)[1]
    has_process = ("processid" in parameters and parameters["processid"][1] == struct.pack("<I", PROCESS_ID)
                   or "processname" in parameters
                   and parameters["processname"][1].decode("utf-16-le").rstrip("\0").lower() == image)
    return [v for v in values if v > paging.HIGHEST_USER_ADDRESS or has_process]


def run_fault(path, fault, parameters=None, quiet=True):
    """One fault-injection run (the seed's sequence when `parameters` ask
    for it); returns the failures."""
    if fault == "ZwQueryValueKey" and parameters is None:
        parameters = {}  # a Parameters key, so that the value is read
    if fault == "PsLookupProcessByProcessId":  # a user address to walk in the process
        parameters = (parameters or {}) | named_parameters(["%x" % paging.USER_PAGES[0][0]])
    world, status, failures = emulate(path, fault, quiet=quiet, parameters=parameters)
    want_status, want_line = FAULTS[fault]
    names = ("pool", "mapping") if parameters and "mappingmethod" in parameters else ("mdl-mapping", "partial-mapping")
    want_line = want_line or {"walk-contradicts": "vmwalk: %s and %s do not share a page" % names,
                              "MmCopyMemory": "vmwalk: walk of %s" % names[0],
                              "MmGetPhysicalAddress": "vmwalk: disagreement for %s" % names[0]}[fault]
    if status != want_status:
        failures.append("%s: DriverEntry returned 0x%08X, want 0x%08X" % (fault, status, want_status))
    errors = [line for level, line in world.lines if level == DPFLTR_ERROR_LEVEL]
    if want_status == STATUS_SUCCESS:  # the load goes on; the walk logs the failure
        if not any(line.startswith(want_line) for line in errors):
            failures.append("%s: no error line starting %r (got %r)" % (fault, want_line, errors))
    elif not any(line.startswith(want_line) for line in errors):
        failures.append("%s: no error line starting %r (got %r)" % (fault, want_line, errors))
    elif "0x%08X" % want_status not in errors[-1]:
        failures.append("%s: the status is not logged (got %r)" % (fault, errors))
    return failures


def self_test(path):
    """The harness must catch a leak, an unhandled API or data import, and a
    driver line that disagrees with the world; (passed, failed)."""
    def revive_mdls(world):  # an IoFreeMdl that frees nothing: the MDL leaks
        for record in world.mdls.values():
            record.live = True
        return 0

    def first_address(world):
        names, landmarks, _ = the_two_addresses(world)
        return landmarks[names[0]][0]

    def move_pool(world):  # the world believes the first address is one page further
        first = first_address(world)
        pa, size = world.paging.truth[first]
        world.paging.truth[first] = (pa + PAGE, size)

    def move_self_map(world):
        world.paging.self_index ^= 1

    def flip_pool_tag(world):  # the free's tag no longer matches: World.rule must say so
        world.pools[next(iter(world.pools))].tag ^= 1

    def move_user_page(world):  # the world believes the process's page is one page further
        va = paging.USER_PAGES[0][0]
        pa, size = world.paging.truth[va]
        world.paging.truth[va] = (pa + PAGE, size)

    def drop_share_line(world):  # the driver "forgot" its proof line: the missing-line check
        world.lines[:] = [(level, line) for level, line in world.lines if "share PFN" not in line]

    def shift_entry_addresses(world):  # the driver shows each entry 8 bytes off through the self-map
        def shift(match):
            return match[0].replace("at 0x" + match[2], "at %#x" % (int(match[2], 16) + 8))
        world.lines[:] = [(level, ENTRY_LINE.sub(shift, line)) for level, line in world.lines]

    def flip_pool_pte_bit(world):  # same translation, one entry differs: the per-entry check
        level, slot, entry = world.paging.walk(first_address(world))[-1]
        world.paging.memory.write_u64(slot, entry ^ paging.RW)
    cases = [
        ("a leaked MDL", dict(forget=revive_mdls), "leak: 0 pool allocation(s), 1 MDL(s)"),
        ("an unhandled API", dict(missing={"MmUnmapLockedPages"}),
         "unhandled API ntoskrnl.MmUnmapLockedPages"),
        ("an unhandled data import", dict(missing={"MmSystemRangeStart"}),
         "unhandled import ntoskrnl.MmSystemRangeStart"),
        ("a wrong physical address", dict(tamper=move_pool), "-> physical 0x"),
        ("a wrong self-map index", dict(tamper=move_self_map), "the world's self-map is entry"),
        ("a wrong pool tag at the free", dict(tamper=flip_pool_tag, parameters=seed_registry()),
         "rule broken: ExFreePoolWithTag("),
        ("one bit of the first address's PTE", dict(tamper=flip_pool_pte_bit), "the world's entry is at phys"),
        ("entries shown at the wrong self-map address", dict(tamper=shift_entry_addresses), ", seen at 0x"),
        ("an MDL already mapped, under the Verifier model", dict(verifier=True, premap=True),
         "bug check 0xc4 (DRIVER_VERIFIER_DETECTED_VIOLATION), subcode 0xb2"),
        ("the seed's sequence under the Verifier model", dict(verifier=True, force=True, parameters=seed_registry()),
         "bug check 0xc4 (DRIVER_VERIFIER_DETECTED_VIOLATION), subcode 0xb2"),
        ("a registry handle left open", dict(forget_close=True), "leak: registry handle(s) 0x80 left open"),
        ("a missing proof line", dict(tamper=drop_share_line), "share PFN` line, got 0"),
        ("a wrong physical address for a named user address",
         dict(tamper=move_user_page, parameters=named_parameters(["%x" % paging.USER_PAGES[0][0]])),
         "named addresses: 'vmwalk: address 0x7ff6c0001000 -> physical"),
    ]
    passed = 0
    for name, breakage, expected in cases:
        _, _, failures = emulate(path, quiet=True, **breakage)
        ok = any(expected in failure for failure in failures)
        passed += ok
        print("harness self-test: %s is %s" % (name, "caught" if ok else "MISSED (%r)" % failures))
    # The fault-injection checks: a driver that returned another status, or
    # logged no error line, must fail the fault run.
    fault_cases = [
        ("a wrong status after a failed call", ("IoAllocateMdl", STATUS_INTERNAL_ERROR, "vmwalk: IoAllocateMdl failed"),
         "DriverEntry returned 0xC000009A, want 0xC00000E5"),
        ("a missing error line after a failed call",
         ("IoAllocateMdl", STATUS_INSUFFICIENT_RESOURCES, "vmwalk: no such line"), "no error line starting"),
    ]
    for name, (fault, status, line), expected in fault_cases:
        saved = FAULTS[fault]
        FAULTS[fault] = (status, line)
        try:
            failures = run_fault(path, fault)
        finally:
            FAULTS[fault] = saved
        ok = any(expected in failure for failure in failures)
        passed += ok
        print("harness self-test: %s is %s" % (name, "caught" if ok else "MISSED (%r)" % failures))
    return passed, len(cases) + len(fault_cases) - passed


def corruption_tests(path):
    """Each corruption in a 4- and a 5-level world, and a clean 5-level
    world; returns (passed, failed)."""
    cases = [("5-level world", dict(la57=True))]
    cases += [("%s, %d-level" % (kind, 5 if la57 else 4), dict(corrupt=kind, la57=la57))
              for kind in paging.CORRUPTIONS for la57 in (False, True)]
    passed = 0
    for name, options in cases:
        _, status, failures = emulate(path, quiet=True, **options)
        if status != STATUS_SUCCESS:
            failures.append("DriverEntry failed with 0x%08X" % status)
        passed += not failures
        print("harness: %s: %s" % (name, "ok" if not failures else "FAILED"))
        for failure in failures:
            print("harness: FAIL: %s: %s" % (name, failure), file=sys.stderr)
    return passed, len(cases) - passed


def named_address_tests(path):
    """Good and bad named addresses; each run must load, walk what it can,
    say why not for the rest, and leak nothing. (passed, failed)."""
    user = ["%x" % va for va, _ in paging.USER_PAGES]
    large = "%x" % (paging.USER_PAGES[-1][0] + 0x12345)
    code = "%x`%08x" % (IMAGE_BASE >> 32, (IMAGE_BASE & 0xFFFFFFFF) + 0x1234)  # WinDbg's form
    cases = [
        ("kernel and user addresses, every kind of user PTE, a 2 MiB page",
         named_parameters([code] + user + [large, "0x0000800000000000", "zz"]),
         ["vmwalk: Addresses entry 9 ('zz') is not a 64-bit hex address; skipped",
          "vmwalk: walk of address 0x800000000000 failed: the address is not canonical"]),
        ("no process given", named_parameters([user[0]], None),
         ["vmwalk: user address %#x needs a process: set ProcessId or ProcessName under Parameters; not walked" % paging.USER_PAGES[0][0]]),
        ("a process that does not exist", named_parameters([user[0]], 77),
         ["vmwalk: PsLookupProcessByProcessId(77) failed with NTSTATUS 0xc000000d"]),
        ("Addresses as REG_SZ", {"addresses": (REG_SZ, (code + "\0").encode("utf-16-le"))},
         ["vmwalk: Addresses has type 1, not REG_MULTI_SZ (7); ignored"]),
    ]
    passed = 0
    for name, parameters, wanted in cases:
        world, status, failures = emulate(path, quiet=True, parameters=parameters)
        if status != STATUS_SUCCESS:
            failures.append("DriverEntry failed with 0x%08X" % (status or 0))
        errors = [text for level, text in world.lines if level == DPFLTR_ERROR_LEVEL]
        failures += ["no error line starting %r (got %r)" % (w, errors) for w in wanted
                     if not any(e.startswith(w) for e in errors)]
        passed += not failures
        print("harness: %s: %s" % (name, "ok" if not failures else "FAILED"))
        for failure in failures:
            print("harness: FAIL: %s: %s" % (name, failure), file=sys.stderr)
    return passed, len(cases) - passed


def main():
    parser = argparse.ArgumentParser(prog="emulate.sh", description=__doc__.splitlines()[0])

    def one_line_error(message):
        sys.exit("emulate.sh: %s" % message)  # exit 1, one line, before any build

    parser.error = one_line_error
    parser.add_argument("sys", help="path of vmwalk.sys")
    parser.add_argument("--parse-only", action="store_true", help=argparse.SUPPRESS)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fail", choices=sorted(FAULTS), help="make this kernel call fail")
    mode.add_argument("--fault-injection", action="store_true", help="make each kernel call fail in turn")
    mode.add_argument("--self-test", action="store_true", help="check that the harness catches a leak, unhandled imports and wrong addresses")
    mode.add_argument("--corrupt", choices=sorted(paging.CORRUPTIONS), help="break one entry of the first address's walk")
    mode.add_argument("--corruption-tests", action="store_true", help="run each corruption, and a 5-level world")
    parser.add_argument("--la57", action="store_true", help="5-level paging")
    parser.add_argument("--seed", type=int, help="seed of the world's random choices")
    parser.add_argument("--verifier", action="store_true", help="model Driver Verifier's MDL rules (bug check 0xC4)")
    parser.add_argument("--seed-sequence", action="store_true",
                        help="set Parameters\\MappingMethod to NonPagedPoolMdl; with --verifier, bypass the refusal")
    parser.add_argument("--registry", action="append", default=[], metavar="NAME=VALUE",
                        help="a REG_SZ value under the service's Parameters key")
    parser.add_argument("--addresses", metavar="ADDR,...",
                        help="Parameters\\Addresses: hex addresses for the driver to walk; the world gains a user "
                             "process %d" % PROCESS_ID)
    parser.add_argument("--process-id", type=int, metavar="N", help="Parameters\\ProcessId (%d: the world's)" % PROCESS_ID)
    mode.add_argument("--named-addresses", action="store_true",
                      help="named addresses, good and bad, kernel and user, checked against the world")
    args = parser.parse_args()
    parameters = None
    for setting in args.registry:
        name, equals, value = setting.partition("=")
        if not equals or not name:
            one_line_error("--registry wants NAME=VALUE, got %r" % setting)
        parameters = (parameters or {}) | {name.lower(): seed_registry(value)["mappingmethod"]}
    if args.parse_only:
        return 0
    if args.seed_sequence:
        parameters = (parameters or {}) | seed_registry()
    if args.addresses is not None:
        parameters = (parameters or {}) | named_parameters(args.addresses.split(","), args.process_id)
    elif args.process_id is not None:
        one_line_error("--process-id needs --addresses")
    if args.self_test:
        passed, failed = self_test(args.sys)
        print("harness-self-test: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    if args.corruption_tests:
        passed, failed = corruption_tests(args.sys)
        print("corruption: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    if args.named_addresses:
        passed, failed = named_address_tests(args.sys)
        print("named-addresses: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    if args.fail:
        failures = run_fault(args.sys, args.fail, parameters, quiet=False)
        want_status = FAULTS[args.fail][0]
        print("harness: --fail %s: %s" % (args.fail, (
            "FAILED (see below)" if failures else
            "DriverEntry returned 0x%08X, as it must: %s" % (want_status, (
                "this failure does not stop the load; the driver logged it and went on"
                if want_status == STATUS_SUCCESS else
                "the load fails with this status, the failing step is logged, nothing is left allocated")))))
    elif args.fault_injection:
        failures, passed, runs = [], 0, 0
        for method, parameters, skip in (("default", None, SEED_ONLY), ("seed sequence", seed_registry(), DEFAULT_ONLY)):
            # Every call made: a Parameters key with a user address in the world's process.
            everything = (parameters or {}) | named_parameters(["%x" % paging.USER_PAGES[0][0]])
            world, status, clean = emulate(args.sys, quiet=True, parameters=everything)
            failures += clean
            made = set(world.calls)
            uncovered = made - set(FAULTS) - RELEASES - {"DbgPrintEx"}
            if uncovered:
                failures.append("%s: no fault injected into %s" % (method, sorted(uncovered)))
            for fault in FAULTS:
                if fault in skip:
                    continue
                if fault[0].isupper() and fault not in made:
                    failures.append("%s: %s is never called" % (method, fault))
                fault_failures = run_fault(args.sys, fault, parameters)
                failures += fault_failures
                passed += not fault_failures
                runs += 1
                print("harness: %s, %s: %s" % (method, fault, "ok" if not fault_failures else "FAILED"))
        print("fault-injection: %d passed, %d failed" % (passed, runs - passed))
    else:
        _, status, failures = emulate(args.sys, la57=args.la57, corrupt=args.corrupt, seed=args.seed,
                                      verifier=args.verifier, parameters=parameters,
                                      force=args.verifier and args.seed_sequence)
        if status is not None and status != STATUS_SUCCESS:
            failures.append("DriverEntry failed with 0x%08X" % status)

    for failure in failures:
        print("harness: FAIL: %s" % failure, file=sys.stderr)
    if args.verifier and args.seed_sequence and any("subcode 0xb2" in f for f in failures):
        # The demonstration worked: say so, and keep the exit status a stop deserves.
        print("harness: expected: the design's sequence stops here under Driver Verifier "
              "(MmMapLockedPagesSpecifyCache of an MDL built from nonpaged pool, bug check 0xC4 subcode 0xB2); "
              "the driver refuses it when Verifier is on, and uses the default method", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
