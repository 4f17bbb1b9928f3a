#!/usr/bin/env python3
"""Real-MMU check, part (a): boot our test kernel (scripts/mmu/testkernel/) under
qemu-system-x86_64 (TCG) in 4- and 5-level mode with random page tables. The guest's
own accesses (the tag its load returned, or its #PF error code / #GP; a store and a
load with EFLAGS.AC=0 under CR0.WP and CR4.SMAP) and the monitor's gva2gpa are the
oracles for `ptwalk translate` on the guest's RAM image (a memory-backend-file).
Prints one line per boot; exits 1 on any disagreement."""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from qmp import Qmp  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SRC = Path(__file__).resolve().parent / "testkernel"
OUT = REPO / "target" / "mmu-testkernel"
# Must match kernel.c: results area, its header / record sizes (u64 words), the tags.
RES_BASE, HDR, REC, TAG_BASE, TAG = 0x200000, 13, 6, 0x400000, 0x7A67000000000000
HDR_FIELDS = "magic done cr3 cr4 efer maxphy count seed ram_end nxe la57 tables smap".split()
MEM_MB = 64
PHYS_BITS = (40, 52, 36, 46)  # MAXPHYADDR, chosen by seed; 40 is TCG's default
CFLAGS = ("-m64 -O2 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -mno-red-zone "
          "-mgeneral-regs-only -fno-tree-loop-distribute-patterns "
          "-fno-asynchronous-unwind-tables -Wall -Wextra -Werror").split()


def sh(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def build():
    OUT.mkdir(parents=True, exist_ok=True)
    elf = OUT / "kernel.elf"
    if elf.exists() and all(s.stat().st_mtime < elf.stat().st_mtime for s in SRC.iterdir()):
        return elf
    sh("gcc", *CFLAGS, "-c", SRC / "kernel.c", "-o", OUT / "kernel.o")
    sh("gcc", "-m64", "-c", SRC / "boot.S", "-o", OUT / "boot.o")
    sh("ld", "-m", "elf_x86_64", "-nostdlib", "-z", "max-page-size=0x1000", "--no-warn-rwx-segments",
       "-T", SRC / "link.ld", OUT / "boot.o", OUT / "kernel.o", "-o", OUT / "kernel64.elf")
    sh("objcopy", "-O", "elf32-i386", OUT / "kernel64.elf", elf)  # -kernel refuses ELF64
    return elf


def ensure_qemu():
    """QEMU (TCG needs no recommends: no GTK, no mesa) and the test kernel's gcc/binutils."""
    need = [pkg for tool, pkg in (("qemu-system-x86_64", "qemu-system-x86"), ("gcc", "gcc"),
                                  ("ld", "binutils"), ("objcopy", "binutils"))
            if not shutil.which(tool)]
    if not need:
        return
    need = sorted(set(need))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sh("apt-get", "update", "-qq", env=env)
    sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *need, env=env)


def run_guest(elf, la57, nxe, seed, n, physbits, tmp, image):
    """Boot, wait for DONE, stop (the random CR3 stays loaded), read the guest's
    results from its RAM, ask gva2gpa for every address, quit. RAM stays in `image`."""
    sock, log = tmp / f"{image.name}.qmp", tmp / f"{image.name}.log"
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-machine", "pc,memory-backend=ram0", "-m", f"{MEM_MB}M",
        "-object", f"memory-backend-file,id=ram0,size={MEM_MB}M,mem-path={image},share=on",
        "-cpu", f"max,phys-bits={physbits}", "-accel", "tcg", "-display", "none",
        "-nodefaults", "-no-reboot", "-serial", f"file:{log}",
        "-qmp", f"unix:{sock},server=on,wait=off", "-kernel", str(elf),
        "-append", f"{'la57' if la57 else 'la48'} {'nx' if nxe else 'nonx'} seed={seed} n={n}"],
        stdin=subprocess.DEVNULL)
    try:
        qmp = Qmp(str(sock), timeout=30)
        deadline, text = time.monotonic() + 30, ""
        while not any(s in text for s in ("DONE", "UNEXPECTED")) and qemu.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.02)
            text = log.read_text(errors="replace") if log.exists() else ""
        qmp.execute("stop")
        if "DONE" not in text:
            raise RuntimeError(f"guest did not finish: {text.strip() or 'timeout'}")
        with open(image, "rb") as f:
            f.seek(RES_BASE)
            hdr = dict(zip(HDR_FIELDS, struct.unpack(f"<{HDR}Q", f.read(8 * HDR))))
            raw = f.read(8 * REC * hdr["count"])
        res = [dict(zip("va value vec err cr2 access".split(), struct.unpack_from(f"<{REC}Q", raw, 8 * REC * i)))
               for i in range(hdr["count"])]
        regs = qmp.hmp("info registers")
        reg = lambda name: int(regs.split(name + "=", 1)[1].split()[0], 16)  # noqa: E731
        if reg("CR3") != hdr["cr3"] or bool(reg("CR4") >> 12 & 1) != la57:
            raise RuntimeError(f"vCPU state differs from the guest's report:\n{regs}")
        gpas = []
        for r in res:
            a = qmp.hmp(f"gva2gpa 0x{r['va']:x}").strip()
            gpas.append(int(a.split()[1], 16) if a.startswith("gpa:") else None)
        qmp.execute("quit")
        qemu.wait(10)
        return hdr, res, gpas
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()


def ptwalk(exe, image, hdr, *args):
    cmd = [exe, "translate", "--image", str(image), "--cr3", f"{hdr['cr3']:x}",
           "--maxphyaddr", str(hdr["maxphy"]), *(["--la57"] if hdr["la57"] else []),
           *([] if hdr["nxe"] else ["--no-nx"]), *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def walk_all(exe, image, hdr, vas):
    out = ptwalk(exe, image, hdr, "--json", *[f"0x{v:x}" for v in vas])
    walks = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    if len(walks) != len(vas):
        raise RuntimeError(f"ptwalk failed ({out.returncode}), {len(walks)} answers: {out.stderr.strip()}")
    return walks


def check(res, gpas, walks, hdr):
    """Per address: guest outcome vs walker vs gva2gpa. Returns (counts, mismatches)."""
    keys = ("agree mapped not_present reserved non_canonical value_checked writable_checked read_only"
            " user_checked user gva2gpa_agree gva2gpa_maps_rsvd").split()
    c, bad = dict.fromkeys(keys, 0), []
    for r, gpa, w in zip(res, gpas, walks):
        pa = int(w["pa"], 16) if w and w.get("pa") else None
        # ptwalk --json (docs/walker.md): error {kind, level, reason}, the access in mapping.
        kind, why = ((w or {}).get("error") or {}).get("kind"), []
        m = (w or {}).get("mapping") or {}
        if r["vec"] == 0xff:
            c["mapped"] += 1
            ref = pa if w else gpa  # without ptwalk, gva2gpa's answer is checked
            if ref is None:
                why.append("the guest's load succeeded, the walker says unmapped")
            elif TAG_BASE <= ref < hdr["ram_end"]:
                c["value_checked"] += 1
                if r["value"] != TAG | ref:
                    why.append(f"guest loaded {r['value']:#x}, frame {ref:#x} holds {TAG | ref:#x}")
            c["gva2gpa_agree"] += gpa == ref
            if gpa != ref:
                why.append("gva2gpa disagrees")
            acc = r["access"]  # bit0: AC=0 load faulted (user page), bit1: store faulted
            c["user"] += acc & 1
            c["read_only"] += acc >> 1 & 1
            if acc & 2 and (acc >> 16 & 0xff) != 0x3 or acc & 1 and (acc >> 8 & 0xff) != 0x1:
                why.append(f"unexpected protection-fault error codes {acc:#x}")
            if m.get("writable") is not None:
                c["writable_checked"] += 1
                if bool(m["writable"]) == bool(acc & 2):
                    why.append(f"walker writable={m['writable']}, guest's store faulted={bool(acc & 2)}")
            if m.get("user") is not None and hdr["smap"]:
                c["user_checked"] += 1
                if bool(m["user"]) != bool(acc & 1):
                    why.append(f"walker user={m['user']}, guest's AC=0 load faulted={bool(acc & 1)}")
        elif r["vec"] == 14:
            rsvd = bool(r["err"] & 8)
            c["reserved" if rsvd else "not_present"] += 1
            if r["cr2"] != r["va"]:
                why.append(f"#PF CR2 {r['cr2']:#x} != va")
            if w and (pa is not None or kind != ("reserved_bit" if rsvd else "not_present")):
                why.append(f"guest #PF err={r['err']:#x}, walker error={kind}")
            if rsvd and gpa is not None:
                c["gva2gpa_maps_rsvd"] += 1  # QEMU 7.2's gva2gpa ignores reserved bits: counted only
            elif gpa is None:
                c["gva2gpa_agree"] += 1
            else:
                why.append("gva2gpa maps an address whose load faulted not-present")
        elif r["vec"] == 13:
            c["non_canonical"] += 1
            if w and (pa is not None or kind != "non_canonical"):
                why.append(f"guest #GP, walker error={kind}")
            c["gva2gpa_agree"] += gpa is None
            if gpa is not None:
                why.append("gva2gpa maps a non-canonical address")
        else:
            why.append(f"unexpected vector {r['vec']}")
        c["agree"] += not why
        if why:
            bad.append((r, gpa, w, why))
    return c, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="1,2,3,4,5", help="seeds per mode (NXE=0 runs use the first)")
    ap.add_argument("-n", type=int, default=1024, help="addresses per boot (max 2048)")
    ap.add_argument("--ptwalk", default=str(REPO / "target" / "release" / "ptwalk"))
    ap.add_argument("--no-ptwalk", action="store_true", help="only guest vs gva2gpa")
    ap.add_argument("--keep", action="store_true", help="keep every RAM image in target/mmu-testkernel")
    args = ap.parse_args()
    if not args.no_ptwalk and not os.access(args.ptwalk, os.X_OK):
        sys.exit(f"testkernel: no ptwalk at {args.ptwalk} (cargo build --release --features ptwalk --bin ptwalk)")
    ensure_qemu()
    elf = build()
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [(la57, True, s) for la57 in (False, True) for s in seeds]
    runs += [(la57, False, seeds[0]) for la57 in (False, True)]  # NXE=0: XD becomes a reserved bit
    failed, t_all = 0, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vmwalk-tk-") as tmpdir:
        for la57, nxe, seed in runs:
            t0 = time.monotonic()
            label = f"{5 if la57 else 4}-level{'' if nxe else ' nxe=0'}"
            image = Path(f"/dev/shm/vmwalk-tk-{os.getpid()}-{int(la57)}{int(nxe)}-{seed}")
            try:
                hdr, res, gpas = run_guest(elf, la57, nxe, seed, args.n, PHYS_BITS[seed % len(PHYS_BITS)],
                                           Path(tmpdir), image)
                walks = [None] * len(res) if args.no_ptwalk else walk_all(args.ptwalk, image, hdr,
                                                                          [r["va"] for r in res])
                c, bad = check(res, gpas, walks, hdr)
                print(f"testkernel {label} seed={seed}: addresses={len(res)} agree={c.pop('agree')} ("
                      + " ".join(f"{k}={v}" for k, v in c.items())
                      + f" tables={hdr['tables']} maxphyaddr={hdr['maxphy']} cr3={hdr['cr3']:#x})"
                      f" {time.monotonic() - t0:.1f}s", flush=True)
                for r, gpa, w, why in bad[:10]:
                    print(f"  MISMATCH va={r['va']:#x}: {'; '.join(why)}\n    guest: vec={r['vec']:#x}"
                          f" err={r['err']:#x} value={r['value']:#x} access={r['access']:#x};"
                          f" gva2gpa={gpa if gpa is None else hex(gpa)}; walker={json.dumps(w)}")
                    if not args.no_ptwalk:
                        ex = ptwalk(args.ptwalk, image, hdr, "--explain", f"0x{r['va']:x}")
                        print("    " + (ex.stdout + ex.stderr).strip().replace("\n", "\n    "))
                if bad or args.keep:
                    keep = OUT / f"{label.replace(' ', '-')}-seed{seed}.img"
                    shutil.copyfile(image, keep)
                    print(f"  image kept: {keep} (cr3 {hdr['cr3']:#x}, maxphyaddr {hdr['maxphy']})")
                failed += bool(bad)
            except (RuntimeError, OSError) as e:  # a boot that did not run is a failure too
                print(f"testkernel {label} seed={seed}: ERROR {e}", flush=True)
                failed += 1
            finally:
                image.unlink(missing_ok=True)
    print(f"testkernel: {'FAIL' if failed else 'OK'}: {len(runs) - failed}/{len(runs)} boots agree,"
          f" {time.monotonic() - t_all:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
