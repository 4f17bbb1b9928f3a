"""Writes samples/tiny.raw and samples/tiny.dmp: the same small, Windows-like
x64 address space as a raw physical image and as a bitmap kernel crash dump
(layout: tests/crash_dump/mod.rs); samples/tiny-kernel.dmp, the same dump
without the user pages (0x5000-0x7000, 0x9000), as a kernel dump leaves them
out; samples/tiny-arm64.raw, the same mappings as Windows on ARM64 lays
them out, and samples/tiny-arm64.dmp, that image as an ARM64 bitmap dump; for
the `ptwalk` examples of the README and docs/walker.md.
Deterministic; run from the repository root. It prints what each example
address must translate to, from the tables it wrote (the README's oracle).

Physical memory, 11 pages (CR3 = 0x1000, 4-level):
  0x1000 PML4: entry 0x1a3 maps the PML4 itself (the self-map, as Windows
         has one at a random index); 0x1f0 -> 0x2000; 0xff -> 0x5000
  0x2000 PDPT (kernel)   entry 0 -> 0x3000
  0x3000 PD   (kernel)   entry 1: a 2 MiB page at 0x23ea00000 (kernel code,
                         global, executable); entry 2 -> PT 0x4000
  0x4000 PT   (kernel)   entry 5: 0x8000 (pool-like data, global, NX);
                         entry 6: a Windows transition PTE (frame 0x1234,
                         protection 4, ReadWrite): not present to the CPU
  0x5000 PDPT (user)     entry 0x1db -> 0x6000
  0x6000 PD   (user)     entry 0 -> PT 0x7000
  0x7000 PT   (user)     entry 1: 0x9000 (user, writable, NX)
  0x8000, 0x9000 data; 0x0000 unused
  0xA000 the low stub (PROCESSOR_START_BLOCK): a jump and the completion
         flag at 0, the kernel entry point at 0x70, CR3 0x1000 at 0xA0, as
         MemProcFS and memflow-win32 find it (`ptwalk spaces`)

tiny-arm64.raw, the same tables as ARM64 descriptors (TTBR0_EL1 = 0x1000,
TTBR1_EL1 = 0x1800: the two halves of one top-level page, as Windows sets
them; TCR_EL1 = 0x615b5513511, a Windows 11 ARM64 machine's): the self-map at
index 0x151 (a real ARM64 dump's), descriptor values in the style of the
published WinDbg transcripts (tables ...0F03; 0x00E0... writable data; the
code block with PXN clear); L3 entry 6 is 0 (invalid) instead of a transition.
"""

import struct
from pathlib import Path

PAGE = 4096
P, RW, US, A, D, PS, G = 1, 2, 4, 0x20, 0x40, 0x80, 0x100
NX = 1 << 63
TABLE = P | RW | A  # what Windows writes in a non-leaf kernel entry (----A--KWEV)

memory = bytearray(11 * PAGE)


def put(table, index, value):
    struct.pack_into("<Q", memory, table + 8 * index, value)


put(0x1000, 0x1A3, 0x1000 | TABLE | NX)
put(0x1000, 0x1F0, 0x2000 | TABLE)
put(0x1000, 0x0FF, 0x5000 | TABLE | US)
put(0x2000, 0, 0x3000 | TABLE)
put(0x3000, 1, 0x23EA00000 | P | RW | A | D | PS | G)
put(0x3000, 2, 0x4000 | TABLE)
put(0x4000, 5, 0x8000 | P | RW | A | D | G | NX)
put(0x4000, 6, 0x1234 << 12 | 1 << 11 | 4 << 5)
put(0x5000, 0x1DB, 0x6000 | TABLE | US)
put(0x6000, 0, 0x7000 | TABLE | US)
put(0x7000, 1, 0x9000 | P | RW | US | A | D | NX)
memory[0x8000:0x8010] = b"vmwalk sample   "
struct.pack_into("<Q", memory, 0xA000, 0x00000001000600E9)   # jmp; CompletionFlag
struct.pack_into("<Q", memory, 0xA070, 0xFFFFF80000203000)   # LmTarget
struct.pack_into("<Q", memory, 0xA0A0, 0x1000)               # Cr3

# ARM64: valid + table/page (0b11) or block (0b01); AF, SH inner, nG; AP[2]
# (Windows' NotDirty), AP[1] (Owner); PXN, UXN; Writable (bit 55, software).
V_TABLE, V_BLOCK, AF, ISH, NG, AP_RO, AP_EL0 = 0b11, 0b01, 1 << 10, 0b11 << 8, 1 << 11, 1 << 7, 1 << 6
PXN, UXN, WRITABLE = 1 << 53, 1 << 54, 1 << 55
arm64 = bytearray(10 * PAGE)


def put_arm64(table, index, value):
    struct.pack_into("<Q", arm64, table + 8 * index, value)


ARM64_TABLE = V_TABLE | AF | ISH | NG | PXN | UXN  # 0x0060000000000F03, as WinDbg shows tables
put_arm64(0x1000, 0x151, 0x1000 | ARM64_TABLE)
put_arm64(0x1000, 0x1F0, 0x2000 | ARM64_TABLE)
put_arm64(0x1000, 0x0FF, 0x5000 | ARM64_TABLE | WRITABLE)
put_arm64(0x2000, 0, 0x3000 | ARM64_TABLE)
put_arm64(0x3000, 1, 0x23EA00000 | V_BLOCK | AF | ISH | AP_RO | UXN)  # code: -RXGA-K-LV
put_arm64(0x3000, 2, 0x4000 | ARM64_TABLE)
put_arm64(0x4000, 5, 0x8000 | V_TABLE | AF | ISH | PXN | UXN | WRITABLE)  # data: -W-GADK--V
put_arm64(0x5000, 0x1DB, 0x6000 | ARM64_TABLE | WRITABLE)
put_arm64(0x6000, 0, 0x7000 | ARM64_TABLE | WRITABLE)
put_arm64(0x7000, 1, 0x9000 | V_TABLE | AF | ISH | NG | AP_EL0 | PXN | UXN | WRITABLE)  # user: -W--ADU--V
arm64[0x8000:0x8010] = b"vmwalk sample   "

EXPECTED = [
    (0xFFFFF80000203450, 0x23EA03450),  # in the 2 MiB page
    (0xFFFFF80000405008, 0x8008),       # the 4 KiB pool-like page
    (0x00007FF6C0001234, 0x9234),       # a user page
    (0xFFFFF80000406000, None),         # the transition PTE: not present
    (0xFFFFF80000000000, None),         # PD entry 0: not present
]


def dump(raw, present=None, machine=0x8664):
    """A bitmap kernel crash dump (DumpType 5) holding the pages of `raw`
    numbered in `present` (default: every page), of an x64 (MachineImageType
    0x8664) or ARM64 (0xAA64) machine; DirectoryTableBase is 0x1000 for both
    (on ARM64, TTBR0_EL1 without its ASID; TTBR1_EL1 is 0x800 above it)."""
    header = bytearray(b"PAGE" * (0x2000 // 4))
    header[4:8] = b"DU64"
    struct.pack_into("<II", header, 8, 0xF, 19041)
    struct.pack_into("<QQQ", header, 0x10, 0x1000, 0, 0)  # DirectoryTableBase, PfnDataBase, PsLoadedModuleList
    struct.pack_into("<QQ", header, 0x20, 0, 0)            # PsLoadedModuleList, PsActiveProcessHead
    struct.pack_into("<II", header, 0x30, machine, 1)      # MachineImageType; NumberProcessors
    struct.pack_into("<Q", header, 0x80, 0)                # KdDebuggerDataBlock
    struct.pack_into("<I", header, 0xF98, 5)               # DumpType: bitmap
    pages = len(raw) // PAGE
    present = range(pages) if present is None else sorted(present)
    bitmap = sum(1 << page for page in present).to_bytes((pages + 7) // 8, "little")
    first_page = 0x3000
    bmp = b"SDMPDUMP" + bytes(0x18) + struct.pack("<QQQ", first_page, len(present), pages) + bitmap
    body = b"".join(raw[page * PAGE:(page + 1) * PAGE] for page in present)
    return bytes(header) + bmp + bytes(first_page - 0x2000 - len(bmp)) + body


def main():
    out = Path("samples")
    out.mkdir(exist_ok=True)
    (out / "tiny.raw").write_bytes(memory)
    (out / "tiny.dmp").write_bytes(dump(memory))
    (out / "tiny-kernel.dmp").write_bytes(dump(memory, present=[1, 2, 3, 4, 8]))
    (out / "tiny-arm64.raw").write_bytes(arm64)
    (out / "tiny-arm64.dmp").write_bytes(dump(arm64, machine=0xAA64))
    for va, pa in EXPECTED:
        print("0x%x %s" % (va, "0x%x" % pa if pa is not None else "-"))


main()
