"""Writes seed inputs for a fuzz target: `seeds.py DIR` for `walk`, small
images holding a full chain of tables (4- and 5-level) with 4K, 2M and 1G
leaves, so libFuzzer starts from deep walks instead of having to discover the
layout; `seeds.py --aarch64 DIR` for `walk_aarch64`, the same idea with
AArch64 descriptors through both TTBRs; `seeds.py --images DIR` for `images`: the same tables as a raw image,
an ELF core, a QEMU ELF core with two vCPUs' notes (layout: see
tests/qemu_core/mod.rs), full and bitmap crash dumps of x64 and ARM64
machines (layouts: see tests/crash_dump/mod.rs), each after the target's
options byte; and one file of each kind ptwalk refuses (src/bin/ptwalk/format.rs)."""

import random
import struct
import sys
from pathlib import Path

PAGES = 8


def seed(rng, levels):
    image = bytearray(PAGES * 4096)

    def put(table_page, index, value):
        struct.pack_into("<Q", image, table_page * 4096 + index * 8, value)

    flags = lambda: 1 | rng.choice([0, 2]) | rng.choice([0, 4]) | rng.choice([0, 1 << 63]) | rng.choice([0, 0x100, 0x60])
    # Tables in pages 1..levels, top first; every chain goes through index i.
    i = [rng.randrange(512) for _ in range(levels)]
    for depth in range(levels - 1):
        put(1 + depth, i[depth], ((2 + depth) << 12) | flags())
    put(levels, i[-1], (7 << 12) | flags())                      # 4K leaf
    put(levels, (i[-1] + 1) % 512, rng.getrandbits(64) & ~1)    # not present
    put(levels - 1, (i[-2] + 1) % 512, (1 << 21) | 0x80 | flags())   # 2M leaf
    put(levels - 2, (i[-3] + 1) % 512, (1 << 30) | 0x80 | flags())   # 1G leaf
    def va_of(indices):
        va = sum(x << (12 + 9 * (levels - 1 - d)) for d, x in enumerate(indices))
        top = 1 << (12 + 9 * levels - 1)
        return va | (-(top << 1) & (2**64 - 1)) if va & top else va

    bump = lambda d: i[:d] + [(i[d] + 1) % 512] + i[d + 1:]
    va = va_of(i)
    vas = [va | rng.randrange(4096), va_of(bump(levels - 1)), va_of(bump(levels - 2)), va_of(bump(levels - 3))]
    header = bytes([(levels == 5) | 2 | 4, 20]) + struct.pack("<Q", 0x1000)
    header += b"".join(struct.pack("<Q", v) for v in vas)
    header += struct.pack("<QQ", va & ((1 << (12 + 9 * levels)) - 1) & ~0xFFFFF, 3 << 20)
    return header + bytes(image)


def seed_aarch64(rng, t0sz, t1sz):
    """Options byte 0 (sanitised TCR), TTBR0, TTBR1, TCR, four addresses, an
    image whose tables map through both TTBRs: 4K pages, 2M and 1G blocks."""
    image = bytearray(PAGES * 4096)

    def put(table_page, index, value):
        struct.pack_into("<Q", image, table_page * 4096 + index * 8, value)

    attrs = lambda: (1 << 10) | rng.choice([0, 1 << 6, 1 << 7, 3 << 6]) | rng.choice([0, 1 << 53, 1 << 54]) | (rng.randrange(8) << 2)
    vas = []
    for upper, txsz, first_table in ((False, t0sz, 1), (True, t1sz, 4)):
        bits = 64 - txsz
        start = 3 - (bits - 13) // 9
        i = [rng.randrange(512 if level > start else 1 << (bits - 12 - 9 * (3 - level))) for level in range(start, 4)]
        tables = [first_table + k for k in range(4 - start)]
        tables[-1] = 7 if upper else 6                            # the level 3 table
        for k in range(len(tables) - 1):
            put(tables[k], i[k], (tables[k + 1] << 12) | 0b11 | rng.choice([0, 1 << 61, 1 << 62, 1 << 60]))
        put(tables[-1], i[-1], (0x5000 + (rng.randrange(64) << 12)) | attrs() | 0b11)      # 4K page
        put(tables[-2], (i[-2] + 1) % 512, (rng.randrange(64) << 21) | attrs() | 0b01)   # 2M block
        ia = sum(x << (12 + 9 * (3 - level)) for level, x in zip(range(start, 4), i))
        high = ((1 << 64) - (1 << bits)) if upper else 0
        vas += [high | ia | rng.randrange(4096), high | (ia + (1 << 21))]
    tcr = t0sz | (t1sz << 16) | (0b10 << 30) | (0b101 << 32) | rng.choice([0, 1 << 37, 1 << 38])
    header = bytes([0]) + struct.pack("<QQQ", 0x1000, 0x4000 | (rng.randrange(1 << 16) << 48), tcr)
    return header + b"".join(struct.pack("<Q", v) for v in vas) + bytes(image)


def elf_core(memory):
    """An ELF64 core with one PT_LOAD of `memory` at physical address 0."""
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 6, 120, 0, 0, len(memory), len(memory), 4096)
    return header + load + memory


def qemu_core(memory, vcpus):
    """An x86-64 ELF core as QEMU writes it: a PT_NOTE of one CORE note per
    vCPU, then one QEMU note (QEMUCPUState version 1) per vCPU, then a
    PT_LOAD of `memory` at physical 0. `vcpus`: (cr3, cr4, cs selector)."""
    def note(name, n_type, desc):
        name = name + b"\0"
        pad = lambda b: b + bytes(-len(b) % 4)
        return struct.pack("<III", len(name), len(desc), n_type) + pad(name) + pad(desc)

    notes = b"".join(note(b"CORE", 1, struct.pack("<32xI", i + 1) + bytes(0x150 - 36)) for i in range(len(vcpus)))
    for cr3, cr4, cs in vcpus:
        state = bytearray(0x1B8)
        struct.pack_into("<II", state, 0, 1, 0x1B8)
        struct.pack_into("<I", state, 0x98, cs)
        struct.pack_into("<5Q", state, 0x188, 0x80050033, 0, 0, cr3, cr4)
        notes += note(b"QEMU", 0, bytes(state))
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    notes_at = 64 + 2 * 56
    load_at = notes_at + len(notes)
    phdrs = struct.pack("<IIQQQQQQ", 4, 0, notes_at, 0, 0, len(notes), len(notes), 0)
    phdrs += struct.pack("<IIQQQQQQ", 1, 7, load_at, 0, 0, len(memory), len(memory), 0)
    return header + phdrs + notes + memory


def refused():
    """One file of each kind ptwalk names and refuses."""
    elf_exec = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, 0, 0, 64, 56, 0, 0, 0, 0)
    triage = bytearray(dump_header(4))
    return {
        "minidump": b"MDMP" + struct.pack("<III", 0xA793, 3, 0x20) + bytes(4080),
        "dump32": b"PAGEDUMP" + bytes(0x1000),
        "triage": bytes(triage) + bytes(0x1000),
        "i386-dump": dump_header(1, [(0, 1)], machine=0x14C) + bytes(4096),
        "elf-exec": elf_exec + bytes(4096),
        "hibr": b"HIBR" + bytes(4092),
        "vmss": struct.pack("<III", 0xBED3BED3, 0, 1) + b"memory".ljust(64, b"\0") + bytes(16),
    }


def dump_header(dump_type, runs=(), machine=0x8664):
    """A DUMP_HEADER64 with DirectoryTableBase 0x1000 of `machine`
    (MachineImageType 0x8664 or 0xAA64); `runs` for a full dump."""
    header = bytearray(b"PAGE" * (0x2000 // 4))
    header[4:8] = b"DU64"
    struct.pack_into("<QQQ", header, 0x10, 0x1000, 0, 0)
    struct.pack_into("<II", header, 0x30, machine, 1)
    struct.pack_into("<Q", header, 0x80, 0)
    struct.pack_into("<IQ", header, 0x88, len(runs), sum(count for _, count in runs))
    for n, (base, count) in enumerate(runs):
        struct.pack_into("<QQ", header, 0x98 + 16 * n, base, count)
    struct.pack_into("<I", header, 0xF98, dump_type)
    return bytes(header)


def full_dump(memory, machine=0x8664):
    pages = len(memory) // 4096
    return dump_header(1, [(0, pages)], machine) + memory


def bitmap_dump(memory, machine=0x8664):
    pages = len(memory) // 4096
    bitmap = bytes([0xFF]) * (pages // 8) + (bytes([(1 << (pages % 8)) - 1]) if pages % 8 else b"")
    first_page = 0x2000 + 0x38 + len(bitmap)
    first_page = (first_page + 4095) & ~4095
    bmp = b"SDMPDUMP" + bytes(0x18) + struct.pack("<QQQ", first_page, pages, pages) + bitmap
    return dump_header(5, (), machine) + bmp + bytes(first_page - 0x2000 - len(bmp)) + memory


def main():
    images = sys.argv[1] == "--images"
    if sys.argv[1] == "--aarch64":
        out = Path(sys.argv[-1])
        out.mkdir(parents=True, exist_ok=True)
        rng = random.Random(1)
        for n, (t0sz, t1sz) in enumerate([(16, 16), (25, 25), (16, 25), (34, 20)] * 4):
            (out / f"seed-{n}").write_bytes(seed_aarch64(rng, t0sz, t1sz))
        return
    out = Path(sys.argv[-1])
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    for n in range(16):
        walk_seed = seed(rng, 4 if n % 2 else 5)
        if not images:
            (out / f"seed-{n}").write_bytes(walk_seed)
            continue
        memory = walk_seed[-PAGES * 4096:]
        la57 = walk_seed[0] & 1
        options = bytes([la57 | (n % 4) << 1])  # bits 1-2: no vCPU asked, or vCPU 0, 1, 2
        cr4 = 0x6F0 | la57 << 12
        vcpus = [(0x1000, cr4, 0x10), (0x2000 | rng.randrange(4096), cr4, 0x33)]
        for kind, file in (("raw", memory), ("elf", elf_core(memory)), ("qemu", qemu_core(memory, vcpus)),
                           ("full", full_dump(memory)), ("bitmap", bitmap_dump(memory)),
                           ("full-arm64", full_dump(memory, 0xAA64)), ("bitmap-arm64", bitmap_dump(memory, 0xAA64))):
            (out / f"seed-{kind}-{n}").write_bytes(options + file)
    if images:
        for kind, file in refused().items():
            (out / f"seed-refused-{kind}").write_bytes(bytes([0]) + file)


main()
