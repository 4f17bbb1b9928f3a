#!/usr/bin/env python3
"""The peers of scripts/bench.sh on a Linux guest: volatility3 and MemProcFS.

Rebuilds the 4-level guest's RAM from tests/fixtures/linux-la48.fixture.gz as a
sparse raw file (its page-table pages at their physical addresses: all that
translation and enumeration read), then times, on that file and on the
addresses benches/walker.rs exported (VMWALK_BENCH_EXPORT):
  - volatility3: Intel32e over a raw FileLayer, page_map_offset = CR3;
    `mapping` over the whole address space, and `translate` of each address;
  - MemProcFS: `-device FILE -arch x64 -dtb CR3`; the process's PTE map, and
    `virt2phys` of each address.
Each is timed in-process, best of --repeat. It checks they say what the
walker says (pages mapped, and each address's physical address) and prints
key=value lines for scripts/bench_report.py.

Usage: .venv-bench/bin/python scripts/bench_peers.py --export DIR [--repeat N]
"""

import argparse
import gzip
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "linux-la48.fixture.gz"
LOW_HALF = 1 << 47


def fixture_pages(path):
    """CR3 and {physical address: 4096 bytes} (format: tests/linux_fixtures.rs)."""
    data = gzip.decompress(path.read_bytes())
    pos = 0

    def line():
        nonlocal pos
        end = data.index(b"\n", pos)
        text, pos = data[pos:end].decode(), end + 1
        return text

    assert line() == "vmwalk-linux-fixture 1"
    header = dict(line().split(" ", 1) for _ in range(6))
    pages = {}
    for _ in range(int(header["pages"])):
        record = struct.unpack_from("<513Q", data, pos)
        pos += 4104
        entries, value = [], 0
        for delta in record[1:]:
            value = (value + delta) % (1 << 64)
            entries.append(value)
        pages[record[0]] = struct.pack("<512Q", *entries)
    return int(header["cr3"], 16), pages


def write_raw(path, pages, size):
    """A sparse raw image: the tables at their addresses, zeros elsewhere."""
    with open(path, "wb") as f:
        for pa, data in sorted(pages.items()):
            f.seek(pa)
            f.write(data)
        f.truncate(size)


def best_of(repeat, run):
    """Best wall time of `run()` (seconds) and its last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def volatility3(raw, cr3, addresses, repeat):
    from volatility3.framework import contexts
    from volatility3.framework.layers import intel, physical

    ctx = contexts.Context()
    ctx.config["physical.location"] = raw.resolve().as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "physical", "physical"))
    ctx.config["virtual.memory_layer"] = "physical"
    ctx.config["virtual.page_map_offset"] = cr3
    layer = intel.Intel32e(ctx, "virtual", "virtual")
    ctx.add_layer(layer)

    def enumerate_pages():
        # Its per-page cache would make the repeats free; tables stay cached.
        intel.Intel._translate_entry.cache_clear()
        mapped = sum(size for _, size, _, _, _ in layer.mapping(0, layer.maximum_address + 1, ignore_errors=True))
        return mapped // 4096

    def translate_all():
        intel.Intel._translate_entry.cache_clear()
        answers = []
        for va in addresses:
            pa, _ = layer.translate(layer.decanonicalize(va), ignore_errors=True)
            answers.append(pa)
        return answers

    enumerate_s, pages = best_of(repeat, enumerate_pages)
    translate_s, answers = best_of(repeat, translate_all)
    return enumerate_s, pages, translate_s, answers


def memprocfs(raw, cr3, addresses, repeat):
    import memprocfs as mp

    def open_vmm():
        return mp.Vmm(["-device", str(raw), "-arch", "x64", "-dtb", f"0x{cr3:x}"])

    def enumerate_pages():
        # A fresh instance each time: it keeps the map it built.
        vmm = open_vmm()
        process = vmm.process_list()[0]
        start = time.perf_counter()
        pages = sum(entry["pages"] for entry in process.maps.pte())
        elapsed = time.perf_counter() - start
        vmm.close()
        return elapsed, pages

    runs = [enumerate_pages() for _ in range(repeat)]
    enumerate_s, pages = min(runs)
    vmm = open_vmm()
    process = vmm.process_list()[0]

    def translate_all():
        answers = []
        for va in addresses:
            try:
                answers.append(process.memory.virt2phys(va))
            except Exception:  # noqa: BLE001 - it raises a bare Exception when unmapped
                answers.append(None)
        return answers

    translate_s, answers = best_of(repeat, translate_all)
    vmm.close()
    return enumerate_s, pages, translate_s, answers


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export", type=Path, required=True, help="VMWALK_BENCH_EXPORT directory")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    summary = dict(line.split("=", 1) for line in (args.export / "linux_la48.summary").read_text().split())
    ours = [tuple(int(x, 16) for x in line.split()) for line in (args.export / "linux_la48.translations").read_text().splitlines()]
    addresses = [va for va, _ in ours]
    cr3, pages = fixture_pages(FIXTURE)
    assert cr3 & ~0xFFF == int(summary["cr3"], 16), "the export is of another fixture"
    raw = args.export / "linux_la48.raw"
    # As large as every frame a leaf maps: both peers check a page is in the file.
    write_raw(raw, pages, int(summary["phys_end"], 16))

    out = {"linux_leaves": summary["leaves"], "linux_pages_4k": summary["pages_4k"], "addresses": len(addresses)}
    # volatility3 reads a table whose 512 entries are all equal as unmapped
    # (Linux's espfix area): it must see exactly the other pages.
    expected = {
        "vol3": int(summary["pages_4k"]) - int(summary["pages_4k_in_uniform_tables"]),
        "memprocfs": int(summary["pages_4k"]),
    }
    for name, run in (("vol3", volatility3), ("memprocfs", memprocfs)):
        enumerate_s, pages_seen, translate_s, answers = run(raw, cr3, addresses, args.repeat)
        agree = sum(pa == want for pa, (_, want) in zip(answers, ours, strict=True))
        out[f"{name}_enumerate_s"] = f"{enumerate_s:.6f}"
        out[f"{name}_pages"] = pages_seen
        out[f"{name}_pages_expected"] = expected[name]
        out[f"{name}_translate_s"] = f"{translate_s / len(addresses):.9f}"
        out[f"{name}_translations_agree"] = agree
    raw.unlink()
    for key, value in out.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
