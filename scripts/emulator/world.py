"""The emulated machine's paging: x86-64 page tables in a physical memory of
their own, describing the harness's mappings (image, stack, pool, MDL mapping).

unicorn runs the driver on flat virtual memory and knows nothing of paging;
this module is what the driver sees when it reads CR3 and follows the tables
with MmCopyMemory. The top-level table has a self-reference entry at a random
kernel-half index, as Windows does since 1607. `truth` keeps what the harness
meant to map, so the driver's answers can be checked against it; `translate`
walks the tables as they are (after a corruption, the two differ).
"""

import struct

PAGE, LARGE_PAGE = 0x1000, 0x20_0000
P, RW, US, A, D, PS, G = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80, 0x100
NX = 1 << 63
ADDRESS_BITS = 0x000F_FFFF_FFFF_F000  # bits 51:12 of an entry
RAM_SIZE = 8 << 30  # physical addresses at or above are not RAM
STATUS_INVALID_ADDRESS = 0xC0000141

# CR4: DE PSE PAE PGE OSFXSR OSXMMEXCPT FSGSBASE PCIDE OSXSAVE SMEP SMAP, as a
# Windows 10 kernel runs; LA57 (bit 12) added for 5-level paging.
CR4 = 0x0037_06B8
CR4_LA57 = 1 << 12
EFER = 0xD01  # SCE | LME | LMA | NXE
# Windows keeps the 4-level split with 5-level paging too (user space is not
# extended unless a process asks for it).
HIGHEST_USER_ADDRESS = 0x0000_7FFF_FFFE_FFFF
SYSTEM_RANGE_START = 0xFFFF_8000_0000_0000
CORRUPTIONS = {
    "not-present": "clear P in the PTE",
    "reserved": "set bit 51 (above MAXPHYADDR) in the PDE",
    # Non-present entries as Windows writes them since the L1TF mitigation: the
    # highest implemented physical-address bit set, bit 4 (SwizzleBit) clear.
    "transition": "make the PTE a swizzled transition entry (page on a standby list)",
    "pagefile": "make the PTE a swizzled page-file entry",
    "freed": "make the PTE a freed entry (bits 11:0 clear)",
}
# How WinDbg's !pte words each software entry the world writes (_MMPTE_*
# layouts: Protection 9:5, Transition 11, PageFileLow 15:12, PageFileHigh 63:32).
SOFTWARE = ("transition", "pagefile", "freed")
# The user pages of the world's process (add_process): what each address holds.
USER_PAGES = [(0x0000_7FF6_C000_1000, "present"), (0x0000_7FF6_C000_2000, "demand-zero"),
              (0x0000_7FF6_C000_3000, "transition"), (0x0000_7FF6_C000_4000, "pagefile"),
              (0x0000_0210_4A60_0000, "large")]
PROTECT_READWRITE = 4


class PhysicalMemory:
    """RAM_SIZE bytes of RAM, zero until written. A frame can be backed by
    host memory (the pool buffer), so the physical and virtual views of it
    are the same bytes."""

    def __init__(self):
        self.frames = {}  # pfn -> writable buffer of PAGE bytes

    def back(self, pfn, buffer):
        self.frames[pfn] = buffer

    def _frame(self, pfn):
        if pfn not in self.frames:
            self.frames[pfn] = bytearray(PAGE)
        return self.frames[pfn]

    def read(self, pa, size):
        """The bytes at `pa`, or None when any of them is not RAM."""
        if pa + size > RAM_SIZE:
            return None
        data = b""
        while size:
            chunk = min(size, PAGE - pa % PAGE)
            frame = self.frames.get(pa // PAGE)
            data += bytes(frame[pa % PAGE:pa % PAGE + chunk]) if frame is not None else bytes(chunk)
            pa, size = pa + chunk, size - chunk
        return data

    def read_u64(self, pa):
        return struct.unpack("<Q", self.read(pa, 8))[0]

    def write_u64(self, pa, value):
        self._frame(pa // PAGE)[pa % PAGE:pa % PAGE + 8] = struct.pack("<Q", value)


def index(va, level):
    """The table index `va` uses at `level` (1 = PT ... 5 = PML5)."""
    return (va >> (12 + 9 * (level - 1))) & 0x1FF


class PagingWorld:
    """Page tables for one address space, and the registers that point at them."""

    def __init__(self, rng, la57, avoid):
        """`avoid`: virtual addresses the harness will map; the self-map index
        is chosen among the kernel-half top-level indices none of them uses."""
        self.rng = rng
        self.levels = 5 if la57 else 4
        self.max_phys_bits = rng.choice([39, 46])
        self.memory = PhysicalMemory()
        self.used = set()  # allocated page frames
        self.truth = {}  # page VA -> (physical address, page size)
        self.corrupted = None  # (name, entry PA, old value, new value)
        self.software_line = None  # what !pte says under "not valid" for a software corruption
        self.software = {}  # entry PA -> what !pte says, for the process's software PTEs
        self.top = self.alloc_frame() * PAGE
        self.cr3 = self.top | rng.randrange(1, 0x1000)  # a PCID the walker must ignore
        self.cr4 = CR4 | (CR4_LA57 if la57 else 0)
        taken = {index(va, self.levels) for va in avoid}
        self.self_index = rng.choice([i for i in range(0x100, 0x200) if i not in taken])
        self.memory.write_u64(self.top + 8 * self.self_index, self.top | NX | D | A | RW | P)

    # Frames and addresses

    def alloc_frame(self, count=1):
        """`count` free contiguous frames, aligned to `count`; the first PFN."""
        while True:
            pfn = self.rng.randrange(0x100, RAM_SIZE // PAGE - count) // count * count
            frames = set(range(pfn, pfn + count))
            if not frames & self.used:
                self.used |= frames
                return pfn

    def canonical(self, va):
        bits = 12 + 9 * self.levels
        va &= (1 << bits) - 1
        return va | (((1 << 64) - (1 << bits)) if va >> (bits - 1) else 0)

    def pte_base(self):
        """Where the PTEs appear through the self-map (nt!MmPteBase)."""
        return self.canonical(self.self_index << (12 + 9 * (self.levels - 1)))

    def entry_va(self, va, level):
        """The virtual address, through the self-map, of the `level` entry of `va`."""
        kept = 9 * (self.levels - level + 1)  # the index bits of levels level..top
        address = ((va >> (12 + 9 * (level - 1))) & ((1 << kept) - 1)) << 3
        for position in range(self.levels - level, self.levels):
            address |= self.self_index << (12 + 9 * position)
        return self.canonical(address)

    # Building

    def map(self, va, pa, size, flags):
        """Map [va, va+size) to [pa, pa+size) with 4 KiB pages, or one 2 MiB
        page when `size` is LARGE_PAGE. Kernel addresses get G; `flags` are
        the leaf's other bits (RW, NX)."""
        step, leaf = (LARGE_PAGE, 2) if size == LARGE_PAGE else (PAGE, 1)
        kernel = va >> 63
        for offset in range(0, size, step):
            page = va + offset
            if index(page, self.levels) == self.self_index:
                raise ValueError("%#x would use the self-map entry %#x" % (page, self.self_index))
            table = self.top
            for level in range(self.levels, leaf, -1):
                slot = table + 8 * index(page, level)
                entry = self.memory.read_u64(slot)
                if not entry & P:
                    entry = self.alloc_frame() * PAGE | A | RW | P | (0 if kernel else US)
                    self.memory.write_u64(slot, entry)
                table = entry & ADDRESS_BITS
            bits = flags | A | D | P | (G if kernel else US) | (PS if leaf == 2 else 0)
            self.memory.write_u64(table + 8 * index(page, leaf), (pa + offset) | bits)
            self.truth[page] = (pa + offset, step)

    def unmap(self, va, size):
        self.repair()
        for page in range(va, va + size, PAGE):
            slot = self.walk(page)[-1][1]
            self.memory.write_u64(slot, 0)
            self.truth.pop(page, None)

    def corrupt(self, va, how):
        """Break one entry on the walk of `va` (see CORRUPTIONS)."""
        path = self.walk(va)
        level, slot, entry = path[-1] if how != "reserved" else next(e for e in path if e[0] == 2)
        mask = 1 << (self.max_phys_bits - 1)  # Windows' InvalidPteMask for this MAXPHYADDR
        pfn = (entry & ADDRESS_BITS) >> 12
        if how == "not-present":
            new = entry & ~P
        elif how == "reserved":
            new = entry | 1 << 51
        elif how == "transition":
            new = mask | pfn << 12 | 1 << 11 | PROTECT_READWRITE << 5
            self.software_line = "Transition: %x, Protect: 4 - ReadWrite" % pfn
        elif how == "pagefile":
            offset = 0x1D2C3 & ~(mask >> 32)
            new = offset << 32 | mask | 2 << 12 | PROTECT_READWRITE << 5
            self.software_line = "PageFile:  2, Offset: %x, Protect: 4 - ReadWrite" % offset
        else:
            new = pfn << 12
            self.software_line = "Page has been freed"
        self.memory.write_u64(slot, new)
        self.corrupted = ("PTE" if level == 1 else "PDE", slot, entry, new)

    def repair(self):
        """Undo the corruption (before the world changes again)."""
        if self.corrupted:
            self.memory.write_u64(self.corrupted[1], self.corrupted[2])
            self.corrupted = None
            self.software_line = None

    # A user process

    def add_process(self):
        """A process's address space, as Windows builds one: its own
        top-level table with a private user half, the kernel half shared and
        its own self-map entry. Maps, in it, the user pages USER_PAGES
        describe (present 4 KiB, demand-zero, transition, page-file, a 2 MiB
        page). Returns its CR3; `self.truth` learns the present pages, and
        `self.software` what WinDbg says of the others."""
        top = self.alloc_frame() * PAGE
        for i in range(256, 512):
            self.memory.write_u64(top + 8 * i, self.memory.read_u64(self.top + 8 * i))
        self.memory.write_u64(top + 8 * self.self_index, top | NX | D | A | RW | P)
        cr3 = top | self.rng.randrange(1, 0x1000)
        own = self.enter(top, cr3)
        mask = 1 << (self.max_phys_bits - 1)
        self.software = {}
        for va, kind in USER_PAGES:
            if kind == "large":
                self.map(va, self.alloc_frame(512) * PAGE, LARGE_PAGE, NX | RW)
                continue
            self.map(va, self.alloc_frame() * PAGE, PAGE, NX | RW)
            if kind == "present":
                continue
            slot = self.walk(va)[-1][1]
            del self.truth[va]
            if kind == "demand-zero":
                new, line = PROTECT_READWRITE << 5, "DemandZero, Protect: 4 - ReadWrite"
            elif kind == "transition":
                new = mask | 0x4D2E1 << 12 | 1 << 11 | PROTECT_READWRITE << 5
                line = "Transition: 4d2e1, Protect: 4 - ReadWrite"
            else:
                offset = 0x2B7 & ~(mask >> 32)
                new = offset << 32 | mask | 3 << 12 | PROTECT_READWRITE << 5
                line = "PageFile:  3, Offset: %x, Protect: 4 - ReadWrite" % offset
            self.memory.write_u64(slot, new)
            self.software[slot] = line
        self.enter(*own)
        return top, cr3

    def enter(self, top, cr3):
        """Switch to the address space of `top` (attach); returns the one left."""
        own = (self.top, self.cr3)
        self.top, self.cr3 = top, cr3
        return own

    # Reading

    def walk(self, va):
        """[(level, entry PA, entry)] from the top down to the leaf or the
        first entry that is not present or has a reserved bit set."""
        path, table = [], self.top
        reserved = ((1 << 52) - 1) & ~((1 << self.max_phys_bits) - 1)
        for level in range(self.levels, 0, -1):
            slot = table + 8 * index(va, level)
            entry = self.memory.read_u64(slot)
            path.append((level, slot, entry))
            if not entry & P or entry & reserved or (level in (2, 3) and entry & PS):
                break
            table = entry & ADDRESS_BITS
        return path

    def translate(self, va):
        """The physical address of `va` through the tables, or None."""
        level, _, entry = self.walk(va)[-1]
        reserved = ((1 << 52) - 1) & ~((1 << self.max_phys_bits) - 1)
        if not entry & P or entry & reserved or (level > 1 and not (level in (2, 3) and entry & PS)):
            return None
        size = PAGE << (9 * (level - 1))
        return (entry & ADDRESS_BITS & ~(size - 1)) | (va & (size - 1))

    def true_address(self, va):
        """What the harness mapped `va` to, or None."""
        for size in (PAGE, LARGE_PAGE):
            page = va & ~(size - 1)
            if self.truth.get(page, (0, 0))[1] == size:
                return self.truth[page][0] + va % size
        return None

    def cpuid(self, leaf, subleaf):
        """(EAX, EBX, ECX, EDX) of a CPU with the world's paging features."""
        if leaf == 0:
            return 0x16, 0x756E_6547, 0x6C65_746E, 0x4965_6E69  # "GenuineIntel"
        if leaf == 1:  # EDX: PSE PAE PGE; ECX: PCID
            return 0x906EA, 0, 1 << 17, (1 << 3) | (1 << 6) | (1 << 13)
        if leaf == 7 and subleaf == 0:  # ECX bit 16: LA57
            return 0, 0, (1 << 16) if self.levels == 5 else 0, 0
        if leaf == 0x8000_0000:
            return 0x8000_0008, 0, 0, 0
        if leaf == 0x8000_0001:  # EDX: SYSCALL, NX, Page1GB, LM
            return 0, 0, 1, (1 << 11) | (1 << 20) | (1 << 26) | (1 << 29)
        if leaf == 0x8000_0008:  # EAX: linear address bits << 8 | MAXPHYADDR
            return (57 if self.levels == 5 else 48) << 8 | self.max_phys_bits, 0, 0, 0
        return 0, 0, 0, 0

    def describe(self):
        return ("%d-level, CR3 %#x, CR4 %#x, EFER %#x, MAXPHYADDR %d, self-map index %#x (%d), PTE base %#018x"
                % (self.levels, self.cr3, self.cr4, EFER, self.max_phys_bits,
                   self.self_index, self.self_index, self.pte_base()))
