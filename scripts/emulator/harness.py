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
and leaves nothing allocated. --corrupt KIND breaks one entry on the pool's
walk; --corruption-tests runs each corruption, in 4- and 5-level worlds.
"""

import argparse
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
from walk_check import check_world

PAGE = 0x1000
POOL_FLAG_NON_PAGED = 0x40
MDL_MAPPED_TO_SYSTEM_VA = 0x1
MDL_SOURCE_IS_NONPAGED_POOL = 0x4
MDL_ALLOCATED_FIXED_SIZE = 0x8
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
# of its error line), and the mapping that does not alias the buffer.
FAULTS = {
    "ExAllocatePool2": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: ExAllocatePool2 failed"),
    "IoAllocateMdl": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: IoAllocateMdl failed"),
    "MmBuildMdlForNonPagedPool": (STATUS_INTERNAL_ERROR, "vmwalk: MmBuildMdlForNonPagedPool failed"),
    "MmMapLockedPagesSpecifyCache": (STATUS_INSUFFICIENT_RESOURCES, "vmwalk: MmMapLockedPagesSpecifyCache failed"),
    "not-aliased": (STATUS_INTERNAL_ERROR, "vmwalk: alias check failed"),
    # These do not fail the load: the walk logs them and DriverEntry succeeds.
    "MmCopyMemory": (STATUS_SUCCESS, "vmwalk: walk of pool"),
    "MmGetPhysicalAddress": (STATUS_SUCCESS, "vmwalk: disagreement for pool"),
}
# Calls that return nothing, so they have no failure to inject.
RELEASES = {"ExFreePoolWithTag", "IoFreeMdl", "MmUnmapLockedPages"}


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


@dataclass
class Mapping:
    mdl: int
    size: int
    pages: HostPages  # kept alive: unicorn reads it while mapped
    live: bool = True


@dataclass
class World:
    """Everything the driver holds, and the rules it broke."""

    fault: str | None
    echo: bool
    paging: paging.PagingWorld
    corrupt: str | None = None
    pools: dict = field(default_factory=dict)
    mdls: dict = field(default_factory=dict)
    mappings: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    next_pool_va: int = 0xFFFF_B08A_1C2D_0000
    next_map_va: int = 0xFFFF_F604_7B5E_0000
    next_mdl_va: int = 0xFFFF_D20C_5E31_0000

    def rule(self, ok, message):
        if not ok:
            self.violations.append(message)
        return ok

    def live(self):
        return (sum(p.live for p in self.pools.values()),
                sum(m.live for m in self.mdls.values()),
                sum(m.live for m in self.mappings.values()))

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
        if world.corrupt:
            world.paging.corrupt(va, world.corrupt)
            level, slot, old, new = world.paging.corrupted
            if world.echo:
                print("harness: corrupted the pool's %s at phys %#x: %#018x -> %#018x (%s)"
                      % (level, slot, old, new, paging.CORRUPTIONS[world.corrupt]))
        return va

    @hook("ExFreePoolWithTag", 2)
    def ex_free_pool_with_tag(emu, argv):
        va, tag = argv
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

    @hook("IoAllocateMdl", 5)
    def io_allocate_mdl(emu, argv):
        va, length, secondary, quota, irp = argv
        world.rule((secondary & 0xFF, quota & 0xFF, irp) == (0, 0, 0),
                   "IoAllocateMdl without an IRP needs SecondaryBuffer, ChargeQuota FALSE and Irp NULL")
        if not world.rule(world.pool_containing(va, length) is not None,
                          "IoAllocateMdl(%#x, %#x): not live pool (use after free?)" % (va, length)):
            return 0
        if world.fault == "IoAllocateMdl":
            return 0
        pages = pages_spanned(va, length)
        mdl = emu.mem_map(PAGE, base=world.next_mdl_va, tag="vmwalk.mdl")
        world.paging.map(mdl, world.paging.alloc_frame() * PAGE, PAGE, paging.NX | paging.RW)
        world.next_mdl_va += 0x10 * PAGE
        header = struct.pack("<QhhQQQII", 0, MDL_HEADER + 8 * pages, MDL_ALLOCATED_FIXED_SIZE,
                             0, 0, va & ~(PAGE - 1), length, va % PAGE)
        emu.mem_write(mdl, header)
        world.mdls[mdl] = Mdl(va, length)
        return mdl

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
        record.built = True
        return 0

    @hook("MmMapLockedPagesSpecifyCache", 6)
    def mm_map_locked_pages_specify_cache(emu, argv):
        mdl, mode, cache, requested, bugcheck, priority = argv
        world.rule((mode & 0xFF, cache & 0xFFFFFFFF, requested, bugcheck & 0xFFFFFFFF)
                   == (KERNEL_MODE, MM_CACHED, 0, 0),
                   "MmMapLockedPagesSpecifyCache needs KernelMode, MmCached, NULL, FALSE")
        world.rule(priority & 0xFFFFFFFF == NX_NORMAL_PRIORITY,
                   "priority %#x, not NormalPagePriority | MdlMappingNoExecute" % priority)
        record = world.mdls.get(mdl)
        if not world.rule(record is not None and record.live and record.built,
                          "MmMapLockedPagesSpecifyCache(%#x): not a live, built MDL" % mdl):
            return 0
        if world.fault == "MmMapLockedPagesSpecifyCache":
            return 0
        pool = world.pools[world.pool_containing(record.va, record.length)]
        pages, pfn = pool.pages, pool.pfn
        if world.fault == "not-aliased":
            pages, pfn = HostPages(pool.size), world.paging.alloc_frame(pool.size // PAGE)
        va = world.next_map_va
        world.next_map_va += pool.size + 0x10 * PAGE
        map_host_pages(emu, world, va, pages, pfn)
        world.mappings[va] = Mapping(mdl, pool.size, pages)
        update_mdl_flags(emu, mdl, set_bits=MDL_MAPPED_TO_SYSTEM_VA)
        emu.mem_write(mdl + 0x18, struct.pack("<Q", va + record.va % PAGE))
        return va + record.va % PAGE

    @hook("MmUnmapLockedPages", 2)
    def mm_unmap_locked_pages(emu, argv):
        va, mdl = argv
        mapping = world.mappings.get(va & ~(PAGE - 1))
        if not world.rule(mapping is not None and mapping.live, "MmUnmapLockedPages(%#x): not mapped (twice?)" % va):
            return 0
        world.rule(mapping.mdl == mdl, "MmUnmapLockedPages(%#x) with MDL %#x, mapped with %#x" % (va, mdl, mapping.mdl))
        mapping.live = False
        emu.emu_eng.emu.mem_unmap(va & ~(PAGE - 1), mapping.size)
        world.paging.unmap(va & ~(PAGE - 1), mapping.size)
        update_mdl_flags(emu, mdl, clear_bits=MDL_MAPPED_TO_SYSTEM_VA)
        return 0

    @hook("IoFreeMdl", 1)
    def io_free_mdl(emu, argv):
        (mdl,) = argv
        record = world.mdls.get(mdl)
        if not world.rule(record is not None and record.live, "IoFreeMdl(%#x): not a live MDL (double free?)" % mdl):
            return 0
        world.rule(not any(m.live and m.mdl == mdl for m in world.mappings.values()),
                   "IoFreeMdl(%#x) while it is still mapped" % mdl)
        record.live = False
        emu.mem_free(mdl)
        world.paging.unmap(mdl, PAGE)
        return 0

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
    world.paging.map(IMAGE_BASE, world.paging.alloc_frame(512) * PAGE, paging.LARGE_PAGE, paging.RW)
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


def emulate(path, fault=None, quiet=False, missing=(), forget=None, tamper=None, la57=False, corrupt=None,
            seed=None):
    """Run DriverEntry (and DriverUnload if it succeeded); return the World,
    the entry status and the list of failures. `missing`, `forget` and
    `tamper` (applied to the world before its check) break the harness on
    purpose, for the self-test; `corrupt` breaks the pool's walk; `seed`
    makes the world's random choices repeatable."""
    seed = random.randrange(1 << 32) if seed is None else seed
    world = World(fault, echo=not quiet, corrupt=corrupt, paging=paging.PagingWorld(
        random.Random(seed), la57, avoid=[IMAGE_BASE, STACK_BASE, NT_DATA, KUSER_SHARED_DATA,
                                          World.next_pool_va, World.next_map_va, World.next_mdl_va]))
    se = speakeasy.Speakeasy()
    handled = install(se, world, missing)
    if forget:
        se.add_api_hook(lambda emu, api, func, argv: forget(world), "ntoskrnl", "IoFreeMdl", argc=1)
    module = se.load_module(data=rebased(path, IMAGE_BASE))
    failures = prepare(se.emu, module, world, handled, missing)
    say = (lambda *a: None) if quiet else print
    say("harness: world: %s, seed %d" % (world.paging.describe(), seed))
    say("harness: DriverEntry%s" % ("" if fault is None else " (failing %s)" % fault))
    before = set(world.paging.truth)
    se.run_module(module, all_entrypoints=False)
    entry = se.emu.runs[0]
    entry_errors = run_errors(entry)
    failures += entry_errors
    status = (entry.ret_val or 0) & 0xFFFFFFFF
    say("harness: DriverEntry returned NTSTATUS 0x%08X" % status)
    if status == STATUS_SUCCESS and world.pools and world.mappings:
        (pool, record), (mapping, mapped) = next(iter(world.pools.items())), next(iter(world.mappings.items()))
        landmarks = {"pool": (pool, pool + record.size), "mapping": (mapping, mapping + mapped.size),
                     "DriverEntry": (module.base + module.ep, module.base + module.ep + 1),
                     "stack": (STACK_BASE, STACK_BASE + KERNEL_STACK_SIZE)}
        expect = None if fault else corrupt or "clean"
        if tamper:
            tamper(world)
        world_failures, summary = check_world(world.lines, world.paging, landmarks, world.pools[pool].pfn, expect)
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
    pools, mdls, mappings = world.live()
    say("harness: made %d pool allocation(s), %d MDL(s), %d mapping(s); left: %d, %d, %d"
        % (len(world.pools), len(world.mdls), len(world.mappings), pools, mdls, mappings))
    if pools or mdls or mappings:
        failures.append("leak: %d pool allocation(s), %d MDL(s), %d mapping(s) left" % (pools, mdls, mappings))
    elif set(world.paging.truth) != before:
        failures.append("the world still maps %d page(s) the driver had" % len(set(world.paging.truth) - before))
    return world, status, failures + ["rule broken: " + v for v in world.violations]


def run_fault(path, fault):
    """One fault-injection run; returns the failures."""
    world, status, failures = emulate(path, fault)
    want_status, want_line = FAULTS[fault]
    if status != want_status:
        failures.append("%s: DriverEntry returned 0x%08X, want 0x%08X" % (fault, status, want_status))
    errors = [line for level, line in world.lines if level == DPFLTR_ERROR_LEVEL]
    if want_status == STATUS_SUCCESS:  # the load goes on; the walk logs the failure
        if not any(line.startswith(want_line) for line in errors):
            failures.append("%s: no error line starting %r (got %r)" % (fault, want_line, errors))
    elif not errors or not errors[0].startswith(want_line):
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

    def move_pool(world):  # the world believes the pool is one page further
        pool = next(iter(world.pools))
        pa, size = world.paging.truth[pool]
        world.paging.truth[pool] = (pa + PAGE, size)

    def move_self_map(world):
        world.paging.self_index ^= 1

    def flip_pool_tag(world):  # the free's tag no longer matches: World.rule must say so
        world.pools[next(iter(world.pools))].tag ^= 1

    def flip_pool_pte_bit(world):  # same translation, one entry differs: the per-entry check
        level, slot, entry = world.paging.walk(next(iter(world.pools)))[-1]
        world.paging.memory.write_u64(slot, entry ^ paging.RW)
    cases = [
        ("a leaked MDL", dict(forget=revive_mdls), "leak: 0 pool allocation(s), 1 MDL(s)"),
        ("an unhandled API", dict(missing={"MmUnmapLockedPages"}),
         "unhandled API ntoskrnl.MmUnmapLockedPages"),
        ("an unhandled data import", dict(missing={"MmSystemRangeStart"}),
         "unhandled import ntoskrnl.MmSystemRangeStart"),
        ("a wrong physical address", dict(tamper=move_pool), "-> physical 0x"),
        ("a wrong self-map index", dict(tamper=move_self_map), "the world's self-map is entry"),
        ("a wrong pool tag at the free", dict(tamper=flip_pool_tag), "rule broken: ExFreePoolWithTag("),
        ("one bit of the pool's PTE", dict(tamper=flip_pool_pte_bit), "the world's entry is at phys"),
    ]
    passed = 0
    for name, breakage, expected in cases:
        _, _, failures = emulate(path, quiet=True, **breakage)
        ok = any(expected in failure for failure in failures)
        passed += ok
        print("harness self-test: %s is %s" % (name, "caught" if ok else "MISSED (%r)" % failures))
    return passed, len(cases) - passed


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
    mode.add_argument("--corrupt", choices=sorted(paging.CORRUPTIONS), help="break one entry of the pool's walk")
    mode.add_argument("--corruption-tests", action="store_true", help="run each corruption, and a 5-level world")
    parser.add_argument("--la57", action="store_true", help="5-level paging")
    parser.add_argument("--seed", type=int, help="seed of the world's random choices")
    args = parser.parse_args()
    if args.parse_only:
        return 0

    if args.self_test:
        passed, failed = self_test(args.sys)
        print("harness-self-test: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    if args.corruption_tests:
        passed, failed = corruption_tests(args.sys)
        print("corruption: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    if args.fail:
        failures = run_fault(args.sys, args.fail)
    elif args.fault_injection:
        world, status, failures = emulate(args.sys, quiet=True)
        made = set(world.calls)
        uncovered = made - set(FAULTS) - RELEASES - {"DbgPrintEx"}
        if uncovered:
            failures.append("no fault injected into %s" % sorted(uncovered))
        passed = 0
        for fault in FAULTS:
            if fault != "not-aliased" and fault not in made:
                failures.append("%s is never called" % fault)
            fault_failures = run_fault(args.sys, fault)
            failures += fault_failures
            passed += not fault_failures
            print("harness: %s: %s" % (fault, "ok" if not fault_failures else "FAILED"))
        print("fault-injection: %d passed, %d failed" % (passed, len(FAULTS) - passed))
    else:
        _, status, failures = emulate(args.sys, la57=args.la57, corrupt=args.corrupt, seed=args.seed)
        if status != STATUS_SUCCESS:
            failures.append("DriverEntry failed with 0x%08X" % status)

    for failure in failures:
        print("harness: FAIL: %s" % failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
