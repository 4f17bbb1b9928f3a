"""Writes seed inputs for the `walk` fuzz target: small images holding a full
chain of tables (4- and 5-level) with 4K, 2M and 1G leaves, so libFuzzer
starts from deep walks instead of having to discover the layout."""

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


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    for n in range(16):
        (out / f"seed-{n}").write_bytes(seed(rng, 4 if n % 2 else 5))


main()
