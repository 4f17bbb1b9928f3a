#!/usr/bin/env python3
"""Real-MMU check, part (b): a real Linux guest under QEMU (TCG) is the oracle.

Boots a Debian kernel with a static-busybox initramfs twice (4-level, and 5-level
with PTI and a 1 GiB page in the direct map), pauses it with a user process
current, and compares `ptwalk` on the guest's RAM with the monitor:
`ptwalk translate` against `gva2gpa` for a few thousand addresses, and
`ptwalk dump` against `info tlb` (byte-identical), on the RAM file and on
QEMU's `dump-guest-memory` ELF core; and on that core, `ptwalk translate`
without `--cr3` (CR3 and CR4 read from the core's QEMU note for vCPU 0)
against the same with `--cr3`/`--la57`. Exits non-zero on any
disagreement. With --write-fixtures it also writes tests/fixtures/linux-*.fixture.gz
(only the page-table pages reachable from CR3, plus the oracle's answers).

Usage: scripts/mmu/linux_guest.py [--write-fixtures] [--ptwalk PATH] [--guest la48|la57]
Exit: 0 all agree, 1 a disagreement, 77 skipped (QEMU or the kernel unobtainable).
"""

import argparse
import gzip
import mmap
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qmp import Qmp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "linux-guest"
FIXTURES = ROOT / "tests" / "fixtures"
ADDR_MASK = 0x000F_FFFF_FFFF_F000  # bits 51:12 of a paging entry
PTWALK_BUILD = ["cargo", "build", "--release", "--quiet", "--features", "ptwalk", "--bin", "ptwalk"]

# qemu64 has no 1 GiB pages and an AMD vendor (no PTI): a different kernel layout
# from `max`, which has LA57, pdpe1gb and gets PTI forced on. With KASLR, a
# 3 GiB guest got no 1 GiB page (DirectMap1G: 0 kB); with nokaslr it has one.
GUESTS = {
    "la48": dict(cpu="qemu64", mem_mib=512, append="no5lvl", pti=False, gbpage=False),
    "la57": dict(cpu="max", mem_mib=3072, append="pti=on nokaslr", pti=True, gbpage=True),
}

# /init: a process busy in the kernel (dd: clearing its user buffer) and one busy
# in user mode, so a pause finds a user address space current, in either mode.
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
dd if=/dev/zero of=/dev/null bs=1M 2>/dev/null &
while :; do :; done &
echo VMWALK-READY > /dev/ttyS0
while :; do sleep 1000; done
"""


def log(msg):
    print(msg, flush=True)


def skip(why):
    """Exit 77 (automake's "skipped"): the check could not run, it did not fail."""
    log(f"SKIP: {why}")
    sys.exit(77)


def ensure_packages():
    need = []
    if not shutil.which("qemu-system-x86_64"):
        need.append("qemu-system-x86")
    if subprocess.run(["dpkg", "-s", "busybox-static"], capture_output=True).returncode:
        need.append("busybox-static")
    if not shutil.which("cpio"):
        need.append("cpio")
    if need:
        log(f"installing {' '.join(need)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0
        if not ok or subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need], env=env).returncode:
            skip(f"cannot install {' '.join(need)}")


def kernel():
    """The current Debian 6.1 kernel image, downloaded and unpacked once into build/."""
    deps = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                          capture_output=True, text=True).stdout
    m = re.search(r"Depends: (linux-image-6\.1\.0-\d+-amd64)\b", deps)
    cached = sorted(CACHE.glob("boot/vmlinuz-6.1.0-*-amd64"))
    if not m:  # no apt metadata: any cached kernel will do
        if cached:
            return cached[-1]
        skip("no linux-image-6.1.0-*-amd64 known to apt-cache and none cached")
    pkg = m.group(1)
    vmlinuz = CACHE / "boot" / ("vmlinuz-" + pkg.removeprefix("linux-image-"))
    if vmlinuz.exists():
        return vmlinuz
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = list(CACHE.glob(f"{pkg}_*.deb"))
    if not debs:
        log(f"downloading {pkg}")
        # As root, apt would hand the download to user _apt, who cannot write here.
        subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg], cwd=CACHE)
        debs = list(CACHE.glob(f"{pkg}_*.deb"))
        if not debs:
            skip(f"cannot download {pkg}")
    # Only ./boot is needed: unpacking all modules would take much longer.
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(CACHE), "./boot"], stdin=tar.stdout, check=True)
    if tar.wait():
        sys.exit("dpkg-deb failed")
    for deb in debs:  # 70 MB we no longer need
        deb.unlink()
    return vmlinuz


def initramfs():
    root = CACHE / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    out = CACHE / "initramfs.cpio.gz"
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files.encode(),
                          capture_output=True, check=True).stdout
    out.write_bytes(gzip.compress(cpio, 6))
    return out


class Guest:
    """A booted guest whose RAM is a host file (so the image needs no dump).
    Subclasses name another QEMU, its machine and its console."""

    QEMU = "qemu-system-x86_64"
    CONSOLE = "ttyS0"

    def __init__(self, name, cfg, vmlinuz, initrd, tmp):
        self.name, self.cfg = name, cfg
        self.ram = Path(f"/dev/shm/vmwalk-{name}-{os.getpid()}")
        self.serial = tmp / f"{name}.serial"
        sock = tmp / f"{name}.qmp"
        cmd = [
            self.QEMU, "-nodefaults", "-display", "none", "-no-reboot",
            *self.machine_args(cfg), "-m", f"{cfg['mem_mib']}M",
            "-object", f"memory-backend-file,id=ram0,size={cfg['mem_mib']}M,"
                       f"mem-path={self.ram},share=on",
            "-kernel", str(vmlinuz), "-initrd", str(initrd),
            "-append", f"console={self.CONSOLE} quiet panic=-1 {cfg['append']}",
            "-serial", f"file:{self.serial}", "-qmp", f"unix:{sock},server=on,wait=off",
        ]
        self.stderr = tmp / f"{name}.stderr"  # a file: a full pipe would stall QEMU
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            self.qmp = Qmp(str(sock))
        except Exception:
            self.proc.kill()
            self.proc.wait()
            self.ram.unlink(missing_ok=True)
            raise

    def machine_args(self, cfg):
        return ["-machine", "pc,accel=tcg,memory-backend=ram0", "-cpu", cfg["cpu"], "-smp", "1"]

    def wait_ready(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name}: QEMU exited: {self.stderr.read_text(errors='replace')}")
            if self.serial.exists() and b"VMWALK-READY" in self.serial.read_bytes():
                return
            time.sleep(0.2)
        sys.exit(f"{self.name}: no VMWALK-READY on the serial console after {timeout}s:\n"
                 + self.serial.read_text(errors="replace")[-2000:])

    def close(self):
        try:
            self.qmp.execute("quit")
        except Exception:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.ram.unlink(missing_ok=True)


def registers(text):
    regs = {}
    for k in ("CR3", "CR4", "EFER"):
        regs[k] = int(re.search(rf"\b{k}=([0-9a-f]+)", text).group(1), 16)
    regs["CPL"] = int(re.search(r"CPL=(\d)", text).group(1))
    return regs


def cpu_props(qmp):
    """MAXPHYADDR and 1 GiB page support of the guest CPU (reserved-bit rules)."""
    path = qmp.execute("query-cpus-fast")[0]["qom-path"]
    return {"PHYS": qmp.execute("qom-get", path=path, property="phys-bits"),
            "GB": int(qmp.execute("qom-get", path=path, property="pdpe1gb"))}


def walk_tables(mem, cr3, la57):
    """Every table page reachable from CR3, and every present leaf as (va, size).

    Deliberately separate from the Rust walker: it only has to find the pages
    for the fixture and the leaves for sampling. Like the CPU it treats PS as a
    leaf only in a PDPTE or PDE, and it sign-extends like `info tlb`.
    """
    top = 5 if la57 else 4
    bits = 57 if la57 else 48
    pages, leaves = {}, []

    def visit(table, level, va):
        data = pages.setdefault(table, bytes(mem[table:table + 4096]))
        shift = 12 + 9 * (level - 1)
        for i, e in enumerate(struct.unpack("<512Q", data)):
            if not e & 1:
                continue
            v = va | (i << shift)
            if level == 1 or (level in (2, 3) and e & 0x80):
                if v >> (bits - 1):
                    v |= (1 << 64) - (1 << bits)
                leaves.append((v, 1 << shift))
            else:
                visit(e & ADDR_MASK, level - 1, v)

    visit(cr3 & ADDR_MASK, top, 0)
    return pages, leaves


def sample(leaves, la57, rng):
    """A few thousand (category, va): inside leaves of every region, leaf edges,
    holes beside mapped pages, random and non-canonical addresses."""
    bits = 57 if la57 else 48
    top = (1 << 64) - (1 << (bits - 1))  # first kernel-half address
    out = []
    # Region = 512 GiB slot (kernel text/modules/fixmap: 1 GiB slot), so small
    # regions (fixmap, espfix, cpu_entry_area, user stack) get as many as big ones.
    regions = {}
    for va, size in leaves:
        key = va >> 30 if va >> 39 == (1 << 25) - 1 else va >> 39
        regions.setdefault(key, []).append((va, size))
    for key, group in regions.items():
        cat = "user" if key < (1 << 25) and key << 39 < top else "kernel"
        for _ in range(min(150, 20 * len(group))):
            va, size = rng.choice(group)
            out.append((cat, va + rng.randrange(size)))
        # Neighbours: same 2 MiB / 1 GiB / 512 GiB slot, often a non-present entry.
        for span in (1 << 21, 1 << 30, 1 << 39):
            for _ in range(15):
                va, _size = rng.choice(group)
                out.append(("near", (va & ~(span - 1)) + rng.randrange(span)))
    for va, size in rng.sample(leaves, min(150, len(leaves))):
        for v in (va, va + size - 1, va - 1, va + size):
            out.append(("edge", v & (1 << 64) - 1))
    for _ in range(300):  # random canonical, both halves
        v = rng.getrandbits(bits - 1)
        out.append(("random", v if rng.random() < 0.5 else v | top))
    for _ in range(200):  # non-canonical: random, and mapped addresses with a high bit flipped
        out.append(("noncanon", rng.getrandbits(64)))
        va, size = rng.choice(leaves)
        out.append(("noncanon", (va + rng.randrange(size)) ^ (1 << rng.randrange(bits - 1, 64))))
    if not la57:  # canonical for LA57, not for 4-level
        for _ in range(50):
            out.append(("noncanon", rng.getrandbits(56) | (rng.getrandbits(1) << 47)))
    rng.shuffle(out)
    return out


def gva2gpa(qmp, va):
    ans = qmp.hmp(f"gva2gpa 0x{va:x}").strip()
    if ans.startswith("gpa: "):
        return int(ans[5:], 16)
    if ans == "Unmapped":
        return None
    raise RuntimeError(f"gva2gpa 0x{va:x}: unexpected answer {ans!r}")


def ptwalk(exe, args, stdin=None):
    r = subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ptwalk {' '.join(args[:9])} ...: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def check_walker(exe, image, regs, la57, answers, tlb, label):
    """ptwalk against the oracle on one image; returns the number of disagreements."""
    base = ["--image", str(image), "--cr3", f"{regs['CR3']:x}", "--maxphyaddr", str(regs["PHYS"])]
    base += ["--la57"] if la57 else []
    vas = [va for _, va, _ in answers]
    lines = []
    for i in range(0, len(vas), 1000):  # keep argument lists modest
        lines += ptwalk(exe, ["translate", *base, *(f"0x{v:x}" for v in vas[i:i + 1000])]).splitlines()
    bad = 0
    per_cat = {}
    for (cat, va, want), line in zip(answers, lines, strict=False):
        f = line.split()
        got = None if f[1] == "-" else int(f[1], 16)
        ok = int(f[0], 16) == va and got == want
        agree, total = per_cat.get(cat, (0, 0))
        per_cat[cat] = (agree + ok, total + 1)
        if not ok:
            bad += 1
            if bad <= 10:
                want_s = "-" if want is None else f"0x{want:x}"
                log(f"  DISAGREE {label}: va 0x{va:x} ({cat}): gva2gpa {want_s}, ptwalk {line!r}")
    if len(lines) != len(answers):
        log(f"  DISAGREE {label}: ptwalk printed {len(lines)} lines for {len(answers)} addresses")
        bad += 1
    mapped = sum(w is not None for _, _, w in answers)
    cats = ", ".join(f"{c} {a}/{t}" for c, (a, t) in sorted(per_cat.items()))
    log(f"  {label}: translate agrees {len(answers) - bad}/{len(answers)} "
        f"(gva2gpa mapped {mapped}, unmapped {len(answers) - mapped}; {cats})")
    dump = ptwalk(exe, ["dump", *base])
    if dump == tlb:
        log(f"  {label}: ptwalk dump == info tlb, byte-identical ({len(tlb.splitlines())} leaves)")
    else:
        bad += 1
        a, b = tlb.splitlines(), dump.splitlines()
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        log(f"  DISAGREE {label}: ptwalk dump differs from info tlb ({len(b)} vs {len(a)} lines); "
            f"first difference at line {first + 1}:\n    info tlb: "
            f"{a[first] if first < len(a) else '<end>'}\n    ptwalk:   {b[first] if first < len(b) else '<end>'}")
    return bad


def check_core_registers(exe, core, regs, la57, answers, label):
    """`ptwalk translate` on QEMU's core with no register option must print
    what it prints with `--cr3` (and `--la57`) from `info registers`, and say
    on stderr that CR3 and the paging mode came from vCPU 0's QEMU note (the
    guest has one vCPU); returns the number of disagreements."""
    vas = [f"0x{va:x}" for _, va, _ in answers]
    base = ["--image", str(core), "--maxphyaddr", str(regs["PHYS"])]
    given = [*base, "--cr3", f"{regs['CR3']:x}", *(["--la57"] if la57 else [])]
    levels = 5 if la57 else 4
    want = (f"ptwalk: CR3 0x{regs['CR3']:x} and {levels}-level paging from the core's QEMU note "
            f"for vCPU 0 (CR4 0x{regs['CR4']:x})")
    if regs["CPL"] == 3:
        want += ("; that vCPU was in user mode (CPL 3): under KPTI its CR3 is the user-only table, "
                 "which maps little of the kernel (--cpu N for another vCPU, or --cr3)")
    bad = 0
    for i in range(0, len(vas), 1000):
        chunk = vas[i:i + 1000]
        with_flags = ptwalk(exe, ["translate", *given, *chunk])
        r = subprocess.run([str(exe), "translate", *base, *chunk], capture_output=True, text=True)
        said = r.stderr.splitlines()[:1]
        if r.returncode or r.stdout != with_flags or said != [want]:
            bad += 1
            log(f"  DISAGREE {label}: translate without --cr3 (exit {r.returncode}, stderr "
                f"{r.stderr.strip()[:300]!r}) differs from --cr3 0x{regs['CR3']:x}")
            break
    if not bad:
        log(f"  {label}: translate without --cr3 == with it ({len(vas)} addresses); {said[0]}")
    return bad


def fixture_bytes(regs, pages, answers, tlb):
    """Header lines, then per page its u64 LE address and 512 delta-coded entries,
    then the oracle's answers (format documented in tests/linux_fixtures.rs)."""
    head = (f"vmwalk-linux-fixture 1\ncr3 0x{regs['CR3']:x}\ncr4 0x{regs['CR4']:x}\n"
            f"efer 0x{regs['EFER']:x}\nmaxphyaddr {regs['PHYS']}\ngbpages {regs['GB']}\n"
            f"pages {len(pages)}\n").encode()
    # Each entry as the wrapping difference from the one before it: runs of
    # consecutive frames become runs of 0x1000, and the pages gzip ~5 times smaller.
    body = b""
    for pa, data in sorted(pages.items()):
        e = struct.unpack("<512Q", data)
        body += struct.pack("<513Q", pa, e[0], *((e[i] - e[i - 1]) % (1 << 64) for i in range(1, 512)))
    g = "".join(f"0x{va:x} {'-' if pa is None else f'0x{pa:x}'}\n" for _, va, pa in answers)
    # info tlb is mostly runs (espfix alone is 65536 lines): as signed hex deltas
    # of VA and PA it gzips ~50 times smaller, and the text is rebuilt exactly.
    deltas, pv, pp = [], 0, 0
    for line in tlb.splitlines():
        va, pa, flags = int(line[:16], 16), int(line[18:34], 16), line[35:]
        assert line == f"{va:016x}: {pa:016x} {flags}", line
        deltas.append(f"{va - pv:x} {pa - pp:x} {flags}\n")
        pv, pp = va, pa
    return head + body + f"gva2gpa {len(answers)}\n{g}tlb {len(deltas)}\n{''.join(deltas)}".encode()


def run_guest(name, cfg, vmlinuz, initrd, tmp, exe, write_fixtures, rng):
    t0 = time.monotonic()
    g = Guest(name, cfg, vmlinuz, initrd, tmp)
    bad = 0
    try:
        g.wait_ready()
        time.sleep(1.0)  # let dd and the loop start running
        log(f"{name}: booted in {time.monotonic() - t0:.1f}s ({cfg['cpu']}, {cfg['mem_mib']} MiB, "
            f"{cfg['append']})")
        # With PTI, pause once on the kernel page tables and once on the user copy
        # (bit 12 of CR3 set); without it, once.
        want = {"kernel", "user"} if cfg["pti"] else {"kernel"}
        for _attempt in range(100):
            if not want:
                break
            g.qmp.execute("stop")
            regs = registers(g.qmp.hmp("info registers"))
            regs.update(cpu_props(g.qmp))
            la57 = bool(regs["CR4"] & (1 << 12))
            kind = "user" if cfg["pti"] and regs["CR3"] & 0x1000 else "kernel"
            with open(g.ram, "rb") as f:
                mem = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            pages, leaves = walk_tables(mem, regs["CR3"], la57)
            half = 1 << (56 if la57 else 47)
            if kind not in want or not any(va < half for va, _ in leaves):
                mem.close()
                g.qmp.execute("cont")
                time.sleep(rng.uniform(0.05, 0.4))
                continue
            want.discard(kind)
            label = f"{name}/{kind}-cr3 0x{regs['CR3']:x}"
            t1 = time.monotonic()
            tlb = g.qmp.hmp("info tlb").replace("\r\n", "\n")
            sampled = sample(leaves, la57, rng)
            answers = [(cat, va, gva2gpa(g.qmp, va)) for cat, va in sampled]
            log(f"  {label}: CPL {regs['CPL']}, {len(pages)} table pages, {len(leaves)} leaves, "
                f"{len(answers)} gva2gpa in {time.monotonic() - t1:.1f}s")
            sizes = {size: sum(s == size for _, s in leaves) for size in (1 << 12, 1 << 21, 1 << 30)}
            log(f"  {label}: leaves by size 4K/2M/1G: {sizes[1 << 12]}/{sizes[1 << 21]}/{sizes[1 << 30]}")
            if cfg["gbpage"] and kind == "kernel" and not sizes[1 << 30]:
                log(f"  FAIL {label}: no 1 GiB page in the direct map")
                bad += 1
            if len(tlb.splitlines()) != len(leaves):
                log(f"  WARNING {label}: info tlb has {len(tlb.splitlines())} lines, "
                    f"the Python walk {len(leaves)} leaves")
            bad += check_walker(exe, g.ram, regs, la57, answers, tlb, label)
            # The ELF-core input too: as large as the guest's RAM, in /dev/shm.
            core = Path(f"{g.ram}.core")
            try:
                g.qmp.execute("dump-guest-memory", paging=False, protocol=f"file:{core}")
                bad += check_walker(exe, core, regs, la57, answers, tlb, label + " ELF core")
                bad += check_core_registers(exe, core, regs, la57, answers, label + " ELF core")
            finally:
                core.unlink(missing_ok=True)
            # The fixture: its pages alone, as a sparse image, must give the same answers.
            sub = fixture_subset(answers)
            sparse = tmp / f"{name}-{kind}.sparse"
            with open(sparse, "wb") as f:
                for pa, data in pages.items():
                    f.seek(pa)
                    f.write(data)
            bad += check_walker(exe, sparse, regs, la57, sub, tlb, label + " fixture pages only")
            if write_fixtures and kind == "kernel":
                FIXTURES.mkdir(parents=True, exist_ok=True)
                out = FIXTURES / f"linux-{name}.fixture.gz"
                out.write_bytes(gzip.compress(fixture_bytes(regs, pages, sub, tlb), 9, mtime=0))
                log(f"  {label}: wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes, "
                    f"{len(pages)} pages, {len(sub)} addresses, {len(tlb.splitlines())} tlb lines)")
            mem.close()
            if want:
                g.qmp.execute("cont")
        if want:
            log(f"{name}: FAIL: never paused with {sorted(want)} page tables current")
            bad += 1
    finally:
        g.close()
    log(f"{name}: done in {time.monotonic() - t0:.1f}s")
    return bad


def fixture_subset(answers, quota=None, others=60):
    """~500 of the answers, every category kept (`quota` of each, `others` of
    a category it does not name), sorted (gzips better): ~4 KB."""
    quota = quota or {"kernel": 120, "user": 120, "edge": 80}
    by_cat = {}
    for a in answers:
        by_cat.setdefault(a[0], []).append(a)
    return sorted((a for cat, group in by_cat.items() for a in group[:quota.get(cat, others)]),
                  key=lambda a: a[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-fixtures", action="store_true", help="(re)write tests/fixtures/linux-*.fixture.gz")
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
    vmlinuz = kernel()
    initrd = initramfs()
    log(f"kernel {vmlinuz.name}, initramfs {initrd.stat().st_size} bytes ({time.monotonic() - t0:.1f}s)")
    rng = random.Random(args.seed)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="vmwalk-linux-") as tmp:
        for name in args.guest or sorted(GUESTS):
            bad += run_guest(name, GUESTS[name], vmlinuz, initrd, Path(tmp), exe, args.write_fixtures, rng)
    log(f"linux guests: {'FAIL, ' + str(bad) + ' disagreement(s)' if bad else 'all agree'} "
        f"({time.monotonic() - t0:.1f}s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
