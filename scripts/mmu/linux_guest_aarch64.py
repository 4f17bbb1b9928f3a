#!/usr/bin/env python3
"""Real-MMU check of the AArch64 walker: a real arm64 Linux guest under QEMU (TCG) is the oracle.

Boots Debian's arm64 installer kernel (`-M virt -cpu cortex-a57`) with a small
initramfs (the installer's own busybox and libc) twice: with KASLR, so KPTI is
on and TTBR1_EL1 at EL0 is the trampoline table; and with `nokaslr rodata=off`
in 2 GiB, so KPTI is off and the linear map has 2 MiB and 1 GiB blocks. It
stops the CPU through the gdbstub at EL0 and at EL1 with a user process's
TTBR0_EL1, reads TTBR0_EL1, TTBR1_EL1, TCR_EL1 and CPSR there, and asks
`gva2gpa` for a few thousand addresses as EL1, as EL1 with PSTATE.PAN set and
as EL0 (CPSR written through the gdbstub: QEMU translates as a data load at
that EL, permissions included, though its debug walk ignores the access flag).
`ptwalk translate --arch aarch64 --json` on QEMU's ELF core of the guest must
give the same physical address where the view allows the load and none where
it does not; `ptwalk dump --arch aarch64` must list exactly the leaves a
separate walk here finds. With --write-fixtures it also writes
tests/fixtures/linux-aarch64-*.fixture.gz (only the table pages reachable from
the TTBRs, plus ~500 of the answers).

Usage: scripts/mmu/linux_guest_aarch64.py [--write-fixtures] [--ptwalk PATH] [--guest kpti|nokpti]
Exit: 0 all agree, 1 a disagreement, 77 skipped (QEMU or the installer unobtainable).
"""

import argparse
import gzip
import json
import mmap
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import linux_guest  # noqa: E402
from gdbstub import Gdb  # noqa: E402
from linux_guest import FIXTURES, PTWALK_BUILD, ROOT, fixture_subset, gva2gpa, log, ptwalk, skip  # noqa: E402

CACHE = ROOT / "build" / "linux-guest-aarch64"
PACKAGE = "debian-installer-12-netboot-arm64"
IMAGES = "./usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64"
# What busybox needs from the installer's initrd (it is dynamically linked).
ROOTFS = ["bin/busybox", "lib/ld-linux-aarch64.so.1",
          "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "lib/aarch64-linux-gnu/libc.so.6"]
RAM_BASE = 0x4000_0000  # physical address of RAM on `virt`
OA_MASK = 0x0000_FFFF_FFFF_F000  # bits 47:12 of a descriptor

# cortex-a57 has no E0PD, so a kernel with KASLR forces KPTI on: at EL0 TTBR1
# holds the trampoline table. Without KASLR KPTI stays off. rodata=off lets
# the linear map use blocks (with it, arm64 maps it page by page); 2 GiB puts
# a whole aligned GiB of RAM away from the kernel image, so one is a 1 GiB block.
GUESTS = {
    "kpti": dict(mem_mib=1024, append="", states=("el1", "el0"), gbpage=False),
    "nokpti": dict(mem_mib=2048, append="nokaslr rodata=off", states=("el0",), gbpage=True),
}

# How gva2gpa is asked: CPSR's M[3:0] (EL0t or EL1h) and PAN (bit 22).
VIEWS = {"el1": 0b0101, "el1-pan": 0b0101 | 1 << 22, "el0": 0b0000}

# /init: a process busy in the kernel (dd: clearing its user buffer) and one busy
# at EL0 (a shell loop), so a stop finds a user address space current at either EL.
# Once both run, clear_refs clears AF in all their pages (no hardware AF on
# cortex-a57): those not touched again stay AF-clear, so every state has some.
INIT = """#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B dd if=/dev/zero of=/dev/null bs=1M 2>/dev/null &
dd=$!
while :; do :; done &
loop=$!
$B sleep 1
echo 1 > /proc/$dd/clear_refs
echo 1 > /proc/$loop/clear_refs
echo VMWALK-READY > /dev/ttyAMA0
wait
"""


def ensure_packages():
    need = []
    if not shutil.which("qemu-system-aarch64"):
        need.append("qemu-system-arm")
    if not shutil.which("cpio"):
        need.append("cpio")
    if need:
        log(f"installing {' '.join(need)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0
        if not ok or subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need], env=env).returncode:
            skip(f"cannot install {' '.join(need)}")


def installer():
    """The installer's kernel and the busybox root taken from its initrd,
    downloaded and unpacked once into build/ (the package is 128 MB)."""
    show = subprocess.run(["apt-cache", "show", "--no-all-versions", PACKAGE],
                          capture_output=True, text=True).stdout
    m = re.search(r"^Version: (\S+)", show, re.M)
    cached = sorted(p.parent for p in CACHE.glob("*/linux"))
    if not m:  # no apt metadata: any cached copy will do
        if cached:
            return cached[-1]
        skip(f"{PACKAGE} unknown to apt-cache and none cached")
    out = CACHE / m.group(1)
    if (out / "linux").exists() and all((out / "rootfs" / f).exists() for f in ROOTFS):
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = list(CACHE.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        log(f"downloading {PACKAGE}")
        # As root, apt would hand the download to user _apt, who cannot write here.
        subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", PACKAGE], cwd=CACHE)
        debs = list(CACHE.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            skip(f"cannot download {PACKAGE}")
    shutil.rmtree(out, ignore_errors=True)
    (out / "rootfs").mkdir(parents=True)
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(out), "--strip-components=10",
                    f"{IMAGES}/linux", f"{IMAGES}/initrd.gz"], stdin=tar.stdout, check=True)
    if tar.wait():
        sys.exit("dpkg-deb failed")
    unzip = subprocess.Popen(["gzip", "-dc", str(out / "initrd.gz")], stdout=subprocess.PIPE)
    subprocess.run(["cpio", "-id", "--quiet", *ROOTFS], cwd=out / "rootfs", stdin=unzip.stdout, check=True)
    if unzip.wait():
        sys.exit("gzip -dc initrd.gz failed")
    missing = [f for f in ROOTFS if not (out / "rootfs" / f).exists()]
    if missing:
        sys.exit(f"{PACKAGE}'s initrd lacks {missing}")
    (out / "initrd.gz").unlink()  # 40 MB we no longer need
    for deb in debs:
        deb.unlink()
    return out


def initramfs(files):
    root = CACHE / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(files / "rootfs", root, symlinks=True)
    for d in ("proc", "sys", "dev"):
        (root / d).mkdir()
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    out = CACHE / "initramfs.cpio.gz"
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=names.encode(),
                          capture_output=True, check=True).stdout
    out.write_bytes(gzip.compress(cpio, 6))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Guest(linux_guest.Guest):
    """linux_guest's guest on QEMU's arm64 `virt` board, with a gdbstub for
    the system registers (tables are read from its RAM file while stopped)."""

    QEMU = "qemu-system-aarch64"
    CONSOLE = "ttyAMA0"

    def __init__(self, name, cfg, kernel, initrd, tmp):
        self.gdb = None
        super().__init__(f"aarch64-{name}", cfg, kernel, initrd, tmp)
        self.name = name

    def machine_args(self, cfg):
        self.gdb_port = free_port()
        return ["-machine", "virt,memory-backend=ram0", "-cpu", "cortex-a57", "-smp", "1",
                "-nic", "none", "-gdb", f"tcp:127.0.0.1:{self.gdb_port}"]

    def attach(self):
        self.gdb = Gdb("127.0.0.1", self.gdb_port)  # QEMU stops the guest for it
        for reg in ("TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "cpsr"):
            if reg not in self.gdb.regs:
                sys.exit(f"{self.name}: the gdbstub has no register {reg}")

    def registers(self):
        return {k: self.gdb.read(k) for k in ("TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "cpsr", "pc")}

    def close(self):
        if self.gdb:
            self.gdb.close()
        super().close()


class Tcr:
    """What this script needs of TCR_EL1 (4 KiB granules, as Linux uses)."""

    def __init__(self, tcr):
        self.va_bits = [64 - (tcr & 0x3F), 64 - (tcr >> 16 & 0x3F)]  # TTBR0, TTBR1
        if tcr >> 14 & 3 != 0 or tcr >> 30 & 3 != 2:
            raise RuntimeError(f"TCR_EL1 {tcr:#x}: not the 4 KiB granule")

    def start_level(self, upper):
        bits = self.va_bits[upper]
        return 0 if bits > 39 else 1 if bits > 30 else 2


def walk_tables(mem, ttbrs, tcr):
    """Every table page reachable from the TTBRs, every block or page as
    (va, size, range) with range 0 (TTBR0) or 1 (TTBR1), and those with AF clear.

    Deliberately separate from the Rust walker: it only has to find the pages
    for the fixture, the leaves to sample and to compare `ptwalk dump` with.
    Bits 1:0 = 0b11 is a table at levels 0-2 and a page at level 3, 0b01 a
    block at levels 1-2; 0b01 at levels 0 and 3 is reserved and skipped.
    """
    pages, leaves, old = {}, [], []

    def read(pa):
        if pa not in pages:
            off = pa - RAM_BASE
            if off < 0 or off + 4096 > len(mem):
                raise RuntimeError(f"table at {pa:#x} is outside RAM")
            pages[pa] = bytes(mem[off:off + 4096])
        return pages[pa]

    def visit(table, level, ia, upper, count):
        shift = 12 + 9 * (3 - level)
        for i, d in enumerate(struct.unpack_from(f"<{count}Q", read(table))):
            if not d & 1:
                continue
            v = ia | i << shift
            if d & 2 and level < 3:
                visit(d & OA_MASK, level + 1, v, upper, 512)
            elif level in (1, 2) or d & 2:  # a block, or a page at level 3
                high = ((1 << 64) - (1 << tcr.va_bits[upper])) if upper else 0
                leaves.append((v | high, 1 << shift, upper))
                if not d & 1 << 10:
                    old.append(leaves[-1])

    for upper, ttbr in enumerate(ttbrs):
        level = tcr.start_level(upper)
        index_bits = tcr.va_bits[upper] - (12 + 9 * (3 - level))
        base = ttbr & OA_MASK & ~((8 << index_bits) - 1)
        visit(base, level, 0, upper, 1 << index_bits)
    return pages, leaves, old


def sample(leaves, old, tcr, rng):
    """A few thousand (category, va): inside leaves of every region, leaf edges,
    holes beside mapped pages, pages with AF clear, random addresses of both
    ranges, tagged ones (top byte changed: TBI) and addresses outside both ranges."""
    out = [("af-clear", va + rng.randrange(size)) for va, size, _ in rng.sample(old, min(60, len(old)))]
    # Region = 1 GiB slot, so small ones (fixmap, trampoline, user stack) get
    # as many samples as the linear map.
    regions = {}
    for va, size, upper in leaves:
        regions.setdefault(va >> 30, []).append((va, size))
    for key, group in regions.items():
        cat = "kernel" if key >> 33 else "user"
        for _ in range(min(150, 20 * len(group))):
            va, size = rng.choice(group)
            out.append((cat, va + rng.randrange(size)))
        # Neighbours: same 2 MiB / 1 GiB / 512 GiB slot, often an invalid descriptor.
        for span in (1 << 21, 1 << 30, 1 << 39):
            for _ in range(15):
                va, _size = rng.choice(group)
                out.append(("near", (va & ~(span - 1)) + rng.randrange(span)))
    mapped = [(va, size) for va, size, _ in leaves]
    for va, size in rng.sample(mapped, min(150, len(mapped))):
        for v in (va, va + size - 1, va - 1, va + size):
            out.append(("edge", v & (1 << 64) - 1))
    for _ in range(300):  # random in range, both TTBRs
        upper = rng.random() < 0.5
        v = rng.getrandbits(tcr.va_bits[upper])
        out.append(("random", v | ((1 << 64) - (1 << tcr.va_bits[upper])) if upper else v))
    for _ in range(150):  # a mapped address with another top byte (bit 55 kept)
        va, size = rng.choice(mapped)
        tag = rng.getrandbits(8)
        out.append(("tagged", (va + rng.randrange(size)) & ((1 << 56) - 1) | tag << 56))
    for _ in range(150):  # outside both ranges: random, or a mapped address with a bit flipped
        out.append(("outside", rng.getrandbits(64)))
        va, size = rng.choice(mapped)
        out.append(("outside", (va + rng.randrange(size)) ^ (1 << rng.randrange(48, 56))))
    rng.shuffle(out)
    return out


def ask(guest, regs, sampled):
    """gva2gpa of every address in every view: (cat, va, (el1, el1-pan, el0))."""
    cpsr = regs["cpsr"]
    answers = {}
    try:
        for view, mode in VIEWS.items():
            # Keep NZCV and DAIF; set M[3:0] and PAN as the view says.
            guest.gdb.write("cpsr", cpsr & ~(0xF | 1 << 22) | mode)
            answers[view] = [gva2gpa(guest.qmp, va) for _, va in sampled]
    finally:
        guest.gdb.write("cpsr", cpsr)  # as it was before the guest runs on
    return [(cat, va, tuple(answers[v][i] for v in VIEWS)) for i, (cat, va) in enumerate(sampled)]


def expected_views(j):
    """What gva2gpa must say in each view, from ptwalk's JSON for one address:
    at EL1 any translation; with PAN, only one without EL0 access (AP[1] clear,
    no APTable[0] above); at EL0, only one with EL0 read access. The access
    flag does not count: QEMU's debug walks never take an Access flag fault
    (target/arm/ptw.c: `!(attrs & (1 << 10)) && !ptw->in_debug`), though a
    load would (TCR_EL1.HA is clear on cortex-a57), so AF-clear pages answer."""
    if j["pa"] is None:
        return (None, None, None)
    pa = int(j["pa"], 16)
    el0_read = j["mapping"]["el0_read"]  # ptwalk --json's schema: docs/walker.md
    return (pa, None if el0_read else pa, pa if el0_read else None)


def check_walker(exe, image, regs, tcr, answers, leaves, label):
    """ptwalk against the oracle on one image; returns the number of disagreements."""
    base = ["--arch", "aarch64", "--image", str(image), "--ttbr0", f"{regs['TTBR0_EL1']:x}",
            "--ttbr1", f"{regs['TTBR1_EL1']:x}", "--tcr", f"{regs['TCR_EL1']:x}"]
    out = ptwalk(exe, ["translate", *base, "--json", "--addresses-from", "-"],
                 "".join(f"0x{va:x}\n" for _, va, _ in answers))
    results = [json.loads(line) for line in out.splitlines()]
    bad = 0
    per_cat = {}
    for (cat, va, got), j in zip(answers, results, strict=False):
        want = expected_views(j)
        ok = int(j["va"], 16) == va and want == got
        agree, total = per_cat.get(cat, (0, 0))
        per_cat[cat] = (agree + ok, total + 1)
        if not ok:
            bad += 1
            if bad <= 10:
                show = " ".join(f"{v} {'-' if a is None else f'0x{a:x}'}" for v, a in zip(VIEWS, got, strict=True))
                log(f"  DISAGREE {label}: va 0x{va:x} ({cat}): gva2gpa {show}; ptwalk {j}")
    if len(results) != len(answers):
        log(f"  DISAGREE {label}: ptwalk printed {len(results)} lines for {len(answers)} addresses")
        bad += 1
    cats = ", ".join(f"{c} {a}/{t}" for c, (a, t) in sorted(per_cat.items()))
    log(f"  {label}: translate agrees {len(answers) - bad}/{len(answers)} in all {len(VIEWS)} views ({cats})")
    # dump: its runs, cut into leaves, must be the leaves of the walk here.
    ours = []
    for line in ptwalk(exe, ["dump", *base]).splitlines():
        m = re.match(r"0x([0-9a-f]+)-0x[0-9a-f]+ -> 0x([0-9a-f]+) TTBR([01])_EL1 (4K|2M|1G) x(\d+): ", line)
        if not m:
            raise RuntimeError(f"ptwalk dump: unexpected line {line!r}")
        va, pa, upper, count = int(m[1], 16), int(m[2], 16), int(m[3]), int(m[5])
        size = {"4K": 1 << 12, "2M": 1 << 21, "1G": 1 << 30}[m[4]]
        ours += [(va + i * size, size, upper) for i in range(count)]
    if ours == leaves:
        log(f"  {label}: ptwalk dump == the separate walk ({len(leaves)} leaves)")
    else:
        bad += 1
        first = next((i for i in range(min(len(ours), len(leaves))) if ours[i] != leaves[i]),
                     min(len(ours), len(leaves)))
        def show(x):
            return f"va 0x{x[0]:x} size 0x{x[1]:x} TTBR{x[2]}"
        log(f"  DISAGREE {label}: ptwalk dump has {len(ours)} leaves, the separate walk {len(leaves)}; "
            f"first difference at leaf {first}: walk {show(leaves[first]) if first < len(leaves) else '<end>'}, "
            f"ptwalk {show(ours[first]) if first < len(ours) else '<end>'}")
    return bad


def fixture_bytes(regs, view, pages, answers):
    """Header lines, then per page its u64 LE address and 512 delta-coded entries,
    then the oracle's answers (format documented in tests/fixtures_aarch64/mod.rs)."""
    head = (f"vmwalk-linux-aarch64-fixture 1\nttbr0 0x{regs['TTBR0_EL1']:x}\n"
            f"ttbr1 0x{regs['TTBR1_EL1']:x}\ntcr 0x{regs['TCR_EL1']:x}\ncpsr 0x{regs['cpsr']:x}\n"
            f"stopped {view}\npages {len(pages)}\n").encode()
    # Each entry as the wrapping difference from the one before it: runs of
    # consecutive frames become runs of 0x1000 and gzip far better.
    body = b""
    for pa, data in sorted(pages.items()):
        e = struct.unpack("<512Q", data)
        body += struct.pack("<513Q", pa, e[0], *((e[i] - e[i - 1]) % (1 << 64) for i in range(1, 512)))

    def pa(a):
        return "-" if a is None else f"0x{a:x}"
    g = "".join(f"0x{va:x} {' '.join(pa(a) for a in got)}\n" for _, va, got in answers)
    return head + body + f"gva2gpa {len(answers)} {' '.join(VIEWS)}\n{g}".encode()


def capture(g, name, kind, regs, tcr, pages, leaves, old, exe, tmp, write_fixtures, rng):
    """Asks the oracle about one stopped state and checks ptwalk; returns the
    number of disagreements."""
    bad = 0
    swapper = sum(u for _, _, u in leaves) > 1000  # the trampoline table maps a few pages
    el = regs["cpsr"] >> 2 & 3
    label = (f"{name}/{kind} (EL{el}, PAN {regs['cpsr'] >> 22 & 1}, TTBR1 "
             f"{'swapper' if swapper else 'trampoline'} 0x{regs['TTBR1_EL1'] & OA_MASK:x})")
    t1 = time.monotonic()
    sampled = sample(leaves, old, tcr, rng)
    answers = ask(g, regs, sampled)
    mapped = [sum(a[i] is not None for _, _, a in answers) for i in range(len(VIEWS))]
    log(f"  {label}: pc 0x{regs['pc']:x}, {len(pages)} table pages, {len(leaves)} leaves, "
        f"{len(answers)} addresses x {len(VIEWS)} views of gva2gpa in {time.monotonic() - t1:.1f}s "
        f"(mapped {', '.join(f'{v} {n}' for v, n in zip(VIEWS, mapped, strict=True))})")
    sizes = {s: sum(1 for _, size, _ in leaves if size == s) for s in (1 << 12, 1 << 21, 1 << 30)}
    by_range = [sum(1 for _, _, u in leaves if u == r) for r in (0, 1)]
    log(f"  {label}: leaves by size 4K/2M/1G: {sizes[1 << 12]}/{sizes[1 << 21]}/{sizes[1 << 30]}, "
        f"TTBR0 {by_range[0]}, TTBR1 {by_range[1]}, AF clear {len(old)}")
    if g.cfg["gbpage"] and swapper and not sizes[1 << 30]:
        log(f"  FAIL {label}: no 1 GiB block in the linear map")
        bad += 1
    # The ELF core QEMU writes of the whole guest.
    core = Path(f"{g.ram}.core")
    try:
        g.qmp.execute("dump-guest-memory", paging=False, protocol=f"file:{core}")
        bad += check_walker(exe, core, regs, tcr, answers, leaves, label + " ELF core")
    finally:
        core.unlink(missing_ok=True)
    # The fixture: its pages alone, as a sparse raw image, must give the same answers.
    sub = fixture_subset(answers, {"kernel": 110, "user": 110, "edge": 80}, 40)
    sparse = tmp / f"{name}-{kind}.sparse"
    with open(sparse, "wb") as f:
        for pa, data in pages.items():
            f.seek(pa)
            f.write(data)
    bad += check_walker(exe, sparse, regs, tcr, sub, leaves, label + " fixture pages only")
    sparse.unlink()
    if write_fixtures:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        out = FIXTURES / f"linux-aarch64-{name}-{kind}.fixture.gz"
        out.write_bytes(gzip.compress(fixture_bytes(regs, kind, pages, sub), 9, mtime=0))
        log(f"  {label}: wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes, "
            f"{len(pages)} pages, {len(sub)} addresses)")
    return bad


def run_guest(name, cfg, kernel, initrd, tmp, exe, write_fixtures, rng):
    t0 = time.monotonic()
    g = Guest(name, cfg, kernel, initrd, tmp)
    bad = 0
    try:
        g.wait_ready()
        time.sleep(0.5)  # let dd and the loop run on after clear_refs
        log(f"{name}: booted in {time.monotonic() - t0:.1f}s (cortex-a57, {cfg['mem_mib']} MiB, "
            f"{cfg['append'] or 'KASLR'})")
        g.attach()
        # In this order: EL1 first finds dd (busy in the kernel), then EL0 most
        # likely the loop, as each state must have another process's TTBR0.
        want = list(cfg["states"])
        seen = set()  # TTBR0 tables already used
        for attempt in range(300):
            if not want:
                break
            if attempt:
                g.gdb.cont()
                time.sleep(rng.uniform(0.02, 0.2))
                g.gdb.stop()
            regs = g.registers()
            kind = "el0" if regs["cpsr"] >> 2 & 3 == 0 else "el1"
            if kind != want[0]:
                continue
            tcr = Tcr(regs["TCR_EL1"])
            with open(g.ram, "rb") as f:
                mem = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                pages, leaves, old = walk_tables(mem, (regs["TTBR0_EL1"], regs["TTBR1_EL1"]), tcr)
                # A user process's TTBR0, and at EL1 the kernel's own TTBR1 (not
                # the trampoline's, still current on the way in from EL0).
                user = any(u == 0 for _, _, u in leaves)
                kernel = sum(u for _, _, u in leaves) > 1000
                if not user or (kind == "el1" and not kernel) or regs["TTBR0_EL1"] & OA_MASK in seen:
                    continue
                want.pop(0)
                seen.add(regs["TTBR0_EL1"] & OA_MASK)
                bad += capture(g, name, kind, regs, tcr, pages, leaves, old, exe, tmp, write_fixtures, rng)
            finally:
                mem.close()
        if want:
            log(f"{name}: FAIL: never stopped in {want} with another user process's TTBR0")
            bad += 1
    finally:
        g.close()
    log(f"{name}: done in {time.monotonic() - t0:.1f}s")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-fixtures", action="store_true",
                    help="(re)write tests/fixtures/linux-aarch64-*.fixture.gz")
    ap.add_argument("--ptwalk", type=Path, help="ptwalk binary (default: build target/release/ptwalk)")
    ap.add_argument("--guest", choices=sorted(GUESTS), action="append", help="only this guest")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.monotonic()
    ensure_packages()
    exe = args.ptwalk
    if exe is None:
        exe = ROOT / "target" / "release" / "ptwalk"
        subprocess.run(PTWALK_BUILD, cwd=ROOT, check=True)
    files = installer()
    initrd = initramfs(files)
    log(f"{PACKAGE} {files.name}, initramfs {initrd.stat().st_size} bytes ({time.monotonic() - t0:.1f}s)")
    rng = random.Random(args.seed)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="vmwalk-aarch64-") as tmp:
        for name in args.guest or sorted(GUESTS):
            bad += run_guest(name, GUESTS[name], files / "linux", initrd, Path(tmp), exe,
                             args.write_fixtures, rng)
    log(f"aarch64 linux guests: {'FAIL, ' + str(bad) + ' disagreement(s)' if bad else 'all agree'} "
        f"({time.monotonic() - t0:.1f}s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
