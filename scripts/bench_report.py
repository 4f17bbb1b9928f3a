#!/usr/bin/env python3
"""The table of scripts/bench.sh, from one run's results.

Reads Criterion's estimates (target/criterion/*/new), the interleaved
medians (DIR/paired.txt and DIR/dumps.txt: `name nanoseconds`), the callgrind counts
(DIR/callgrind.txt: `name instructions operations`) and the peers' key=value
lines (DIR/peers.txt); prints the table, the agreement checks, and last a
machine-readable line of ratios (x86_64, limit and range from the interleaved
medians; the ARM64 walker's against the pointer chase, its ranged walk, and
aarch64-paging). Criterion's time per operation is its median for a batch divided by
the batch's elements.

Usage: scripts/bench_report.py DIR
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def criterion_times():
    """{full id: nanoseconds per element}."""
    times = {}
    for bench in (ROOT / "target" / "criterion").glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        elements = (meta.get("throughput") or {}).get("Elements", 1)
        times[meta["full_id"]] = estimates["median"]["point_estimate"] / elements
    return times


def ns(value):
    return f"{value:,.1f} ns" if value < 10_000 else f"{value / 1e6:,.3f} ms"


def memflow_rows(table, ratios, m):
    """benches/memflow.rs: batches and the page map against memflow, and
    enumeration against reading the tables it visits (ours / theirs: below
    1.0 we are faster)."""
    batch = []
    for arch in ("x86_64", "aarch64"):
        for n in (1, 64, 4096):
            for order in ("shuffled", "sorted"):
                key = f"memflow/{arch}/batch/{n}/{order}"
                if f"{key}/vmwalk" not in m:
                    continue
                label = f"{arch}: batch of {n}, {order}, per address" if (n, order) == (1, "shuffled") else f"{arch}: batch of {n}, {order}"
                batch.append(pair_rows(table, (label, "vmwalk", m[f"{key}/vmwalk"]),
                                       ("memflow virt_to_phys_iter", m[f"{key}/memflow"]), "ours/memflow", 3))
    ratios["memflow_batch_ratio"] = max(batch)
    ratios["memflow_map_ratio"] = max(
        pair_rows(table, (f"{arch}: every mapping, as runs", "vmwalk leaves().runs()", m[f"memflow/{arch}/map/vmwalk"]),
                  ("memflow virt_translation_map", m[f"memflow/{arch}/map/memflow"]), "ours/memflow", 2)
        for arch in ("x86_64", "aarch64"))
    ratios["scan_limit_ratio"] = max(
        pair_rows(table, (f"{image}: scan limit, enumerate", "vmwalk", m[f"scan/{image}/enumerate"]),
                  (f"read its {m[f'scan/{image}/tables']:.0f} table pages", m[f"scan/{image}/read_tables"]), "ours/limit", 2)
        for image in ("linux_la48", "windows_like"))


def pair_rows(table, ours, theirs, ratio_label, digits):
    """Two rows of `table`: `ours` (row label, who, nanoseconds) and `theirs`
    (who, nanoseconds) with the ratio of ours to theirs, which it returns."""
    (label, who, ours_ns), (their_who, their_ns) = ours, theirs
    ratio = ours_ns / their_ns
    table.append((label, who, ns(ours_ns), "", ""))
    table.append(("", their_who, ns(their_ns), ratio_label, f"{ratio:.{digits}f}"))
    return ratio


def dump_rows(table, ratios, dumps):
    """benches/dumps.rs: `ptwalk translate` on crash dumps over the raw image
    (whole commands, per address), then the walks alone through ptwalk's
    image reader."""
    for what, label in (("ptwalk_translate", "linux_la48: `ptwalk translate`, per address"),
                        ("image_translate", "linux_la48: ptwalk's reader, one walk")):
        raw = dumps[f"{what}/raw"]
        table.append((label, "raw image", ns(raw), "", ""))
        for kind in ("full_dump", "bitmap_dump"):
            ours = dumps[f"{what}/{kind}"]
            table.append(("", kind.replace("_", " "), ns(ours), "dump/raw", f"{ours / raw:.2f}"))
    gbps = dumps["ptwalk_spaces/gbps"]
    table.append(("`ptwalk spaces`, page-cached capture", "scan", f"{gbps:.2f} GB/s", "", ""))
    ratios["spaces_gbps"] = gbps
    map_ms, map_bytes = dumps["ptwalk_map/ms"], dumps["ptwalk_map/svg_bytes"]
    table.append(("`ptwalk map`, 4 GiB capture, ~100k runs", "SVG", f"{map_ms:.1f} ms", "bytes", f"{map_bytes:.0f}"))
    ratios["map_ms"] = map_ms
    ratios["map_svg_bytes"] = map_bytes
    ratios["dump_ratio"] = max(dumps[f"ptwalk_translate/{kind}"] for kind in ("full_dump", "bitmap_dump")) / dumps["ptwalk_translate/raw"]


def main():
    out = Path(sys.argv[1])
    t = criterion_times()
    calls = {}
    for line in (out / "callgrind.txt").read_text().splitlines():
        name, instructions, operations = line.split()
        calls[name] = int(instructions) / int(operations)
    peers = dict(line.split("=", 1) for line in (out / "peers.txt").read_text().split())
    paired = {name: float(value) for name, value in (line.split() for line in (out / "paired.txt").read_text().splitlines())}
    dumps = {name: float(value) for name, value in (line.split() for line in (out / "dumps.txt").read_text().splitlines())}
    memflow = {name: float(value) for name, value in (line.split() for line in (out / "memflow.txt").read_text().splitlines())}

    ratios = {}
    table = []
    # The headline ratios: interleaved rounds on the mixed image.
    ours, x86, chase = (paired[f"translate/{who}"] for who in ("vmwalk", "x86_64", "pointer_chase"))
    ranged, independent = paired["range/ranged/4k"], paired["range/independent/4k"]
    ratios["x86_64_ratio"], ratios["limit_ratio"] = ours / x86, ours / chase
    ratios["range_ratio"] = ranged / independent
    table.append(("mixed, interleaved: translate", "vmwalk", ns(ours), "", ""))
    table.append(("", "x86_64 OffsetPageTable", ns(x86), "ours/x86_64", f"{ours / x86:.2f}"))
    table.append(("", "pointer chase (limit)", ns(chase), "ours/limit", f"{ours / chase:.2f}"))
    table.append(("mixed, interleaved: 1024 pages", "ranged, per 4 KiB page", ns(ranged), "", ""))
    table.append(("", "independent walks, per page", ns(independent), "ranged/indep.", f"{ranged / independent:.2f}"))
    # ARM64: the mixed image as AArch64 descriptors, interleaved the same way.
    ours, peer, chase = (paired[f"arm64/translate/{who}"] for who in ("vmwalk", "aarch64_paging", "pointer_chase"))
    ranged, independent = paired["arm64/range/ranged/4k"], paired["arm64/range/independent/4k"]
    ratios["arm64_paging_ratio"], ratios["arm64_limit_ratio"] = ours / peer, ours / chase
    ratios["arm64_range_ratio"] = ranged / independent
    table.append(("mixed as ARM64, interleaved: translate", "vmwalk (walker::aarch64)", ns(ours), "", ""))
    table.append(("", "aarch64-paging walk_range", ns(peer), "ours/aarch64-paging", f"{ours / peer:.2f}"))
    table.append(("", "pointer chase (limit)", ns(chase), "ours/limit", f"{ours / chase:.2f}"))
    table.append(("mixed as ARM64, interleaved: 1024 pages", "ranged, per 4 KiB page", ns(ranged), "", ""))
    table.append(("", "independent walks, per page", ns(independent), "ranged/indep.", f"{ranged / independent:.2f}"))
    # Criterion, one benchmark after the other.
    for image in ("mixed", "linux_la48", "linux_la57"):
        ours = t[f"{image}/translate/vmwalk"]
        chase = t[f"{image}/translate/pointer_chase"]
        x86 = t.get(f"{image}/translate/x86_64")
        table.append((f"{image}: translate one address", "vmwalk", ns(ours), "", ""))
        if x86 is not None:
            table.append(("", "x86_64 OffsetPageTable", ns(x86), "ours/x86_64", f"{ours / x86:.2f}"))
        table.append(("", "pointer chase (limit)", ns(chase), "ours/limit", f"{ours / chase:.2f}"))
    for kind in ("4k", "2m"):
        ranged, independent = t[f"mixed/range/ranged/{kind}"], t[f"mixed/range/independent/{kind}"]
        pages = "4 KiB pages (2 PTs)" if kind == "4k" else "2 MiB pages"
        table.append((f"mixed: 1024 pages of {pages}", "ranged, per page", ns(ranged), "", ""))
        table.append(("", "independent walks, per page", ns(independent), "ranged/indep.", f"{ranged / independent:.2f}"))
    for image in ("mixed", "linux_la48", "linux_la57"):
        per_leaf = t[f"{image}/enumerate/vmwalk"]
        table.append((f"{image}: enumerate every leaf", "vmwalk, per leaf", ns(per_leaf), "", ""))

    leaves = int(peers["linux_leaves"])
    ours_enum = t["linux_la48/enumerate/vmwalk"] * leaves  # ns for the whole image
    ours_tr = t["linux_la48/translate/vmwalk"]
    table.append(("linux_la48: enumerate the image", "vmwalk", ns(ours_enum), "", ""))
    for peer, label in (("vol3", "volatility3 Intel32e"), ("memprocfs", "MemProcFS maps.pte()")):
        theirs = float(peers[f"{peer}_enumerate_s"]) * 1e9
        ratios[f"{peer}_speedup"] = theirs / ours_enum
        table.append(("", label, ns(theirs), "speedup", f"{theirs / ours_enum:,.0f}x"))
    table.append(("linux_la48: translate one address", "vmwalk", ns(ours_tr), "", ""))
    for peer, label in (("vol3", "volatility3 translate()"), ("memprocfs", "MemProcFS virt2phys()")):
        theirs = float(peers[f"{peer}_translate_s"]) * 1e9
        table.append(("", label, ns(theirs), "speedup", f"{theirs / ours_tr:,.0f}x"))

    dump_rows(table, ratios, dumps)
    memflow_rows(table, ratios, memflow)

    table.append(("callgrind, instructions per op", "vmwalk translate", f"{calls['vmwalk']:.1f}", "", ""))
    table.append(("(mixed image)", "x86_64 translate", f"{calls['x86_64']:.1f}", "ours/x86_64", f"{calls['vmwalk'] / calls['x86_64']:.2f}"))
    table.append(("", "pointer chase", f"{calls['pointer_chase']:.1f}", "ours/chase", f"{calls['vmwalk'] / calls['pointer_chase']:.2f}"))
    table.append(("", "ranged, per 4 KiB page", f"{calls['range']:.1f}", "range/translate", f"{calls['range'] / calls['vmwalk']:.2f}"))
    table.append(("", "enumerate, per leaf", f"{calls['enumerate']:.1f}", "", ""))
    table.append(("", "ARM64 translate", f"{calls['arm64']:.1f}", "ours ARM64/x86", f"{calls['arm64'] / calls['vmwalk']:.2f}"))
    table.append(("", "ARM64 ranged, per 4 KiB page", f"{calls['arm64_range']:.1f}", "range/translate", f"{calls['arm64_range'] / calls['arm64']:.2f}"))

    widths = [max(len(r[i]) for r in table) for i in range(5)]
    header = ("what", "who", "time / count", "ratio", "")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print()

    n = int(peers["addresses"])
    checks = [
        ("volatility3 pages mapped", peers["vol3_pages"], peers["vol3_pages_expected"]),
        ("MemProcFS pages mapped", peers["memprocfs_pages"], peers["memprocfs_pages_expected"]),
        ("volatility3 translations", peers["vol3_translations_agree"], str(n)),
        ("MemProcFS translations", peers["memprocfs_translations_agree"], str(n)),
    ]
    for what, got, want in checks:
        verdict = "same output" if got == want else "DIFFERENT"
        print(f"{what}: {got} of {want} expected: {verdict}")
    print(
        f"(linux_la48: {leaves} leaves, {peers['linux_pages_4k']} 4 KiB-equivalent pages; volatility3 is "
        f"expected to miss the pages under all-equal tables, Linux's espfix area)"
    )
    print(" ".join(f"{k}={ratios[k]:.2f}" for k in ("x86_64_ratio", "limit_ratio", "range_ratio"))
          + f" vol3_speedup={ratios['vol3_speedup']:.0f} memprocfs_speedup={ratios['memprocfs_speedup']:.0f}"
          + f" dump_ratio={ratios['dump_ratio']:.2f}"
          + " " + " ".join(f"{k}={ratios[k]:.2f}" for k in ("arm64_limit_ratio", "arm64_range_ratio", "arm64_paging_ratio"))
          + f" spaces_gbps={ratios['spaces_gbps']:.2f}"
          + " " + " ".join(f"{k}={ratios[k]:.2f}" for k in ("memflow_batch_ratio", "memflow_map_ratio", "scan_limit_ratio"))
          + f" map_ms={ratios['map_ms']:.1f} map_svg_bytes={ratios['map_svg_bytes']:.0f}")
    return 0 if all(got == want for _, got, want in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
