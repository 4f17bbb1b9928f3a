//! `ptwalk` with nothing but the capture: the paging registers read from
//! where the capture records them, said on stderr in one line, and giving
//! exactly the answers the right flags give.
//!
//! - ARM64 crash dumps (`MachineImageType` 0xAA64; full and bitmap), written
//!   by `tests/crash_dump/` from the published header layout: `TTBR0_EL1` =
//!   `DirectoryTableBase`, `TTBR1_EL1` 0x800 above it, Windows' `TCR_EL1`.
//!   The memory is `samples/tiny-arm64.raw`, whose answers
//!   `scripts/make-samples.py` prints from the tables it wrote.
//! - QEMU ELF cores of x86-64 guests, written by `tests/qemu_core/` from QEMU's
//!   note layout: CR3 and CR4.LA57 from vCPU 0's `QEMU` note or `--cpu N`'s.
//!   The 4- and 5-level memory is the Linux-guest fixtures' (real page
//!   tables, with QEMU's own `gva2gpa` and `info tlb` answers as the oracle).

mod crash_dump;
mod fixtures;
mod ptwalk_run;
mod qemu_core;

use std::path::Path;
use std::process::Output;

use crash_dump::{Machine, PAGE};
use ptwalk_run::{pages_of, ptwalk, stderr, stdout, write_temp};
use qemu_core::{CR4_PAE, Vcpu};

/// The README's ARM64 sample, and the registers to give for it by hand.
const ARM64_RAW: &str = ptwalk_run::ARM64_SAMPLE;
const ARM64_FLAGS: [&str; 8] = ptwalk_run::ARM64_SAMPLE_REGISTERS;

/// Addresses of the sample and what `scripts/make-samples.py` says they map to.
const ARM64_ADDRESSES: [&str; 5] = [
    "fffff80000203450",
    "fffff80000405008",
    "7ff6c0001234",
    "fffff80000406000",
    "fffff80000000000",
];
const ARM64_ANSWERS: &str = "0xfffff80000203450 0x23ea03450\n0xfffff80000405008 0x8008\n0x7ff6c0001234 0x9234\n0xfffff80000406000 -\n0xfffff80000000000 -\n";

/// What ptwalk says when it walks an ARM64 dump with no register flag.
fn arm64_line(directory_table_base: &str) -> String {
    format!(
        "ptwalk: ARM64 crash dump (MachineImageType 0xAA64): walked as --arch aarch64, with TTBR0_EL1 0x1000 and TTBR1_EL1 0x1800 from the crash dump header (DirectoryTableBase {directory_table_base}), TCR_EL1 0x615b5513511, Windows on ARM64's (a dump does not record it; --tcr to give another)\n"
    )
}

/// `ptwalk SUBCOMMAND --image IMAGE ARGS...`
fn run(subcommand: &str, image: &Path, args: &[&str]) -> Output {
    let image = image.to_str().unwrap();
    ptwalk(&[&[subcommand, "--image", image][..], args].concat())
}

/// The sample as a full dump (page 0, all zeros, left out: a hole) and as a
/// bitmap dump, `DirectoryTableBase` 0x1000; and a full dump whose
/// `DirectoryTableBase` carries an ASID in bits 63:48, as `TTBR0_EL1` does
/// (M. Suiche's `SMBaloo` shows `Ttbr0_El1` 0x400000800a9000): ptwalk keeps
/// bits 47:12.
fn arm64_dumps() -> [(std::path::PathBuf, &'static str); 3] {
    let memory = std::fs::read(ARM64_RAW).unwrap();
    let pages = pages_of(&memory);
    let count = (memory.len() / PAGE) as u64;
    [
        (
            write_temp(
                "arm64-full.dmp",
                &crash_dump::full_on(Machine::Arm64, 0x1000, &pages, &[(1, count - 1)]),
            ),
            "0x1000",
        ),
        (
            write_temp(
                "arm64-bitmap.dmp",
                &crash_dump::bitmap_on(Machine::Arm64, 0x1000, &pages),
            ),
            "0x1000",
        ),
        (
            write_temp(
                "arm64-asid.dmp",
                &crash_dump::full_on(
                    Machine::Arm64,
                    0x0040_0000_0000_1000,
                    &pages,
                    &[(1, count - 1)],
                ),
            ),
            "0x40000000001000",
        ),
    ]
}

#[test]
fn arm64_dumps_walk_as_arm64_with_the_headers_registers() {
    let raw = Path::new(ARM64_RAW);
    let by_hand = run(
        "translate",
        raw,
        &[&ARM64_FLAGS[..], &ARM64_ADDRESSES].concat(),
    );
    assert_eq!(stdout(&by_hand), ARM64_ANSWERS, "{by_hand:?}");
    let dump_by_hand = run("dump", raw, &ARM64_FLAGS);
    let pte_by_hand = run("pte", raw, &[&ARM64_FLAGS[..], &["7ff6c0001234"]].concat());
    assert!(pte_by_hand.status.success(), "{pte_by_hand:?}");
    for (dump, directory_table_base) in arm64_dumps() {
        let name = dump.display();
        let line = arm64_line(directory_table_base);
        let output = run("translate", &dump, &ARM64_ADDRESSES);
        assert!(output.status.success(), "{name}: {output:?}");
        assert_eq!(stdout(&output), ARM64_ANSWERS, "{name}");
        assert_eq!(stderr(&output), line, "{name}");
        // `dump` and `pte` alike: the raw image's output, and the line first.
        let output = run("dump", &dump, &[]);
        assert_eq!(output.stdout, dump_by_hand.stdout, "{name}");
        assert_eq!(
            stderr(&output),
            format!("{line}{}", stderr(&dump_by_hand)),
            "{name}"
        );
        let output = run("pte", &dump, &["7ff6c0001234"]);
        assert!(output.status.success(), "{name}: {output:?}");
        assert_eq!(output.stdout, pte_by_hand.stdout, "{name}");
        assert_eq!(stderr(&output), line, "{name}");
    }
}

#[test]
fn register_flags_win_over_an_arm64_dumps_header() {
    let [(dump, _), ..] = arm64_dumps();
    // --arch aarch64 given: the same registers, no word about the switch.
    let output = run(
        "translate",
        &dump,
        &["--arch", "aarch64", "fffff80000203450"],
    );
    assert_eq!(stdout(&output), "0xfffff80000203450 0x23ea03450\n");
    assert_eq!(
        stderr(&output),
        "ptwalk: TTBR0_EL1 0x1000 and TTBR1_EL1 0x1800 from the crash dump header (DirectoryTableBase 0x1000), TCR_EL1 0x615b5513511, Windows on ARM64's (a dump does not record it; --tcr to give another)\n"
    );
    // --tcr: IPS 32 bits puts the 2 MiB block at 0x23ea00000 out of reach
    // (as the raw image says with the same registers); the TTBRs still come
    // from the header.
    let ips32 = [
        "--tcr",
        "610b5513511",
        "fffff80000203450",
        "fffff80000405008",
    ];
    let output = run("translate", &dump, &ips32);
    assert_eq!(
        stdout(&output),
        "0xfffff80000203450 -\n0xfffff80000405008 0x8008\n"
    );
    assert_eq!(
        stderr(&output),
        "ptwalk: ARM64 crash dump (MachineImageType 0xAA64): walked as --arch aarch64, with TTBR0_EL1 0x1000 and TTBR1_EL1 0x1800 from the crash dump header (DirectoryTableBase 0x1000)\n"
    );
    let raw = run(
        "translate",
        Path::new(ARM64_RAW),
        &[
            &["--arch", "aarch64", "--ttbr0", "1000", "--ttbr1", "1800"][..],
            &ips32,
        ]
        .concat(),
    );
    assert_eq!(raw.stdout, output.stdout);
    // --ttbr1 alone: both TTBRs are the flags' (TTBR0's range disabled), the
    // TCR Windows'. TTBR1 at the page's lower half finds no kernel entry.
    let output = run(
        "translate",
        &dump,
        &["--ttbr1", "1000", "fffff80000203450", "7ff6c0001234"],
    );
    assert_eq!(stdout(&output), "0xfffff80000203450 -\n0x7ff6c0001234 -\n");
    assert_eq!(
        stderr(&output),
        "ptwalk: ARM64 crash dump (MachineImageType 0xAA64): walked as --arch aarch64, with TCR_EL1 0x615b5513511, Windows on ARM64's (a dump does not record it; --tcr to give another)\n"
    );
    // Every register given (the flags without `--arch aarch64`): only the
    // switch is said.
    let output = run(
        "translate",
        &dump,
        &[&ARM64_FLAGS[2..], &["7ff6c0001234"]].concat(),
    );
    assert_eq!(stdout(&output), "0x7ff6c0001234 0x9234\n");
    assert_eq!(
        stderr(&output),
        "ptwalk: ARM64 crash dump (MachineImageType 0xAA64): walked as --arch aarch64\n"
    );
    // ... and with --arch aarch64 too, nothing.
    let output = run(
        "translate",
        &dump,
        &[&ARM64_FLAGS[..], &["7ff6c0001234"]].concat(),
    );
    assert_eq!(stdout(&output), "0x7ff6c0001234 0x9234\n");
    assert!(output.stderr.is_empty(), "{output:?}");
}

/// One line on stderr, nothing on stdout, exit 1, and the line is `want`.
fn assert_refused(output: &Output, want: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert_eq!(stderr(output), format!("ptwalk: {want}\n"));
}

#[test]
fn x86_options_on_an_arm64_dump_say_what_it_is() {
    let [(dump, _), ..] = arm64_dumps();
    let name = dump.display();
    assert_refused(
        &run("translate", &dump, &["--cr3", "1000", "0"]),
        &format!(
            "{name} is an ARM64 crash dump (MachineImageType 0xAA64): --cr3, --la57, --maxphyaddr and --no-nx describe an x86-64 CPU (--arch x86_64 walks it as one anyway)"
        ),
    );
    assert_refused(
        &run("translate", &dump, &["--arch", "x86_64", "0"]),
        &format!(
            "--cr3 is required with --arch x86_64: {name} is an ARM64 crash dump (MachineImageType 0xAA64), which records no CR3"
        ),
    );
    // --arch x86_64 and --cr3: as asked (the ARM64 top-level page read as a PML4).
    let output = run(
        "translate",
        &dump,
        &["--arch", "x86_64", "--cr3", "1000", "0"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_refused(
        &run("translate", &dump, &["--cpu", "1", "0"]),
        "--cpu 1 picks a vCPU of an x86 guest's QEMU ELF core; ARM64 captures record no registers per processor",
    );
    assert_refused(
        &run("translate", &dump, &["--os", "windows", "0"]),
        "--os windows decodes x86-64 Windows PTEs, not ARM64 ones (--arch aarch64)",
    );
}

/// The fixture's page-table pages as runs of physical memory.
fn runs_of(pages: &crash_dump::Pages) -> Vec<(u64, Vec<u8>)> {
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    for (&addr, bytes) in pages {
        match runs.last_mut() {
            Some((start, run)) if *start + run.len() as u64 == addr => run.extend(bytes),
            _ => runs.push((addr, bytes.clone())),
        }
    }
    runs
}

#[test]
fn qemu_cores_give_cr3_and_the_paging_mode_of_vcpu_0() {
    for (name, levels) in [("la48", 4), ("la57", 5)] {
        let fixture = fixtures::load(&format!("linux-{name}.fixture.gz"));
        let cr3 = fixture.paging.root().0;
        assert_eq!(fixture.cr4 & qemu_core::CR4_LA57 != 0, levels == 5);
        let memory = runs_of(&fixture.tables.page_bytes());
        let core = write_temp(
            &format!("{name}.core"),
            &qemu_core::core(&[Vcpu::kernel(cr3, fixture.cr4)], &memory),
        );
        let addresses: Vec<String> = fixture
            .gva2gpa
            .iter()
            .map(|(va, _)| format!("{va:#x}"))
            .collect();
        let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
        // QEMU's gva2gpa answers, in ptwalk's format.
        let qemu: String = fixture
            .gva2gpa
            .iter()
            .map(|(va, pa)| {
                pa.map_or_else(|| format!("{va:#x} -\n"), |pa| format!("{va:#x} {pa:#x}\n"))
            })
            .collect();
        let maxphyaddr = ["--maxphyaddr", "40"];
        let output = run("translate", &core, &[&maxphyaddr[..], &addresses].concat());
        assert!(output.status.success(), "{name}: {output:?}");
        assert_eq!(stdout(&output), qemu, "{name}");
        assert_eq!(
            stderr(&output),
            format!(
                "ptwalk: CR3 {cr3:#x} and {levels}-level paging from the core's QEMU note for vCPU 0 (CR4 {:#x})\n",
                fixture.cr4
            ),
            "{name}"
        );
        let cr3_flag = format!("{cr3:#x}");
        let mut flags = vec!["--maxphyaddr", "40", "--cr3", &cr3_flag];
        if levels == 5 {
            flags.push("--la57");
        }
        let given = run("translate", &core, &[&flags[..], &addresses].concat());
        assert_eq!(given.stdout, output.stdout, "{name}");
        assert!(given.stderr.is_empty(), "{name}: flags given, nothing said");
        // `dump`: QEMU's `info tlb`, line for line.
        let dump = run("dump", &core, &maxphyaddr);
        assert!(dump.status.success(), "{name}: {dump:?}");
        assert_eq!(stdout(&dump), fixture.info_tlb, "{name}");
    }
}

/// Two address spaces: PML4 0x1000 maps 0x401000 -> 0x5000 and, in the
/// kernel half, 0xffff800000401000 -> 0x5000; PML4 0x6000 (a user-only
/// table, as KPTI's) maps 0x401000 -> 0xa000 and no kernel address.
fn two_spaces() -> Vec<(u64, Vec<u8>)> {
    let mut memory = vec![0_u8; 0xb000];
    let mut put = |at: usize, value: u64| memory[at..at + 8].copy_from_slice(&value.to_le_bytes());
    for (pml4, pdpt, pd, pt, page) in [
        (
            0x1000_usize,
            0x2000_usize,
            0x3000_usize,
            0x4000_usize,
            0x5000_u64,
        ),
        (0x6000, 0x7000, 0x8000, 0x9000, 0xa000),
    ] {
        put(pml4, pdpt as u64 | 0x7);
        put(pdpt, pd as u64 | 0x7);
        put(pd + 2 * 8, pt as u64 | 0x7);
        put(pt + 8, page | 0x67);
    }
    put(0x1000 + 0x100 * 8, 0x2000 | 0x3);
    vec![(0, memory)]
}

/// CR4 of the la48 fixture's guest: PSE, PAE, MCE, PGE, OSFXSR, OSXMMEXCPT.
const CR4_4_LEVEL: u64 = 0x6f0;
const TWO_ADDRESSES: [&str; 2] = ["401008", "ffff800000401008"];

#[test]
fn cpu_picks_the_vcpu_and_a_user_mode_vcpu_is_named() {
    let vcpus = [
        Vcpu::kernel(0x1000, CR4_4_LEVEL),
        Vcpu::user(0x6000, CR4_4_LEVEL),
    ];
    let core = write_temp("two-vcpus.core", &qemu_core::core(&vcpus, &two_spaces()));
    let name = core.display();
    let output = run("translate", &core, &TWO_ADDRESSES);
    assert_eq!(
        stdout(&output),
        "0x401008 0x5008\n0xffff800000401008 0x5008\n"
    );
    assert_eq!(
        stderr(&output),
        "ptwalk: CR3 0x1000 and 4-level paging from the core's QEMU note for vCPU 0 of 2 (CR4 0x6f0)\n"
    );
    let output = run(
        "translate",
        &core,
        &[&["--cpu", "1"][..], &TWO_ADDRESSES].concat(),
    );
    assert_eq!(stdout(&output), "0x401008 0xa008\n0xffff800000401008 -\n");
    assert_eq!(
        stderr(&output),
        "ptwalk: CR3 0x6000 and 4-level paging from the core's QEMU note for vCPU 1 of 2 (CR4 0x6f0); that vCPU was in user mode (CPL 3): under KPTI its CR3 is the user-only table, which maps little of the kernel (--cpu N for another vCPU, or --cr3)\n"
    );
    let given = run(
        "translate",
        &core,
        &[&["--cr3", "6000"][..], &TWO_ADDRESSES].concat(),
    );
    assert_eq!(given.stdout, output.stdout);
    assert!(given.stderr.is_empty());
    // `dump` and `pte` read the same note.
    let dump = run("dump", &core, &["--cpu", "1"]);
    assert_eq!(
        stdout(&dump),
        "0000000000401000: 000000000000a000 ---DA--UW\n"
    );
    // --la57 wins over the note's CR4 (and the line no longer names a mode):
    // PML4 0x1000 read as a PML5 maps nothing at 0x401000.
    let output = run("translate", &core, &["--la57", "401008"]);
    assert_eq!(stdout(&output), "0x401008 -\n");
    assert!(
        stderr(&output).starts_with(
            "ptwalk: CR3 0x1000 from the core's QEMU note for vCPU 0 of 2 (CR4 0x6f0)\n"
        ),
        "{output:?}"
    );
    assert_refused(
        &run("translate", &core, &["--cpu", "2", "0"]),
        &format!("--cpu 2: {name} records 2 vCPU(s), numbered 0 to 1"),
    );
    assert_refused(
        &run("translate", &core, &["--cpu", "1", "--cr3", "6000", "0"]),
        "--cpu 1 picks whose registers to read from the capture, and --cr3 gives them: give one or the other",
    );
}

/// A core whose one `QEMU` descriptor is `vcpu`'s state changed by `edit`.
fn core_with(name: &str, vcpu: Vcpu, edit: impl Fn(&mut Vec<u8>)) -> std::path::PathBuf {
    let notes = qemu_core::notes_with(&[vcpu], |vcpu| {
        let mut state = qemu_core::qemu_cpu_state(vcpu);
        edit(&mut state);
        state
    });
    write_temp(
        name,
        &qemu_core::core_of(qemu_core::EM_X86_64, &notes, &two_spaces()),
    )
}

#[test]
fn qemu_notes_are_checked_before_they_are_read() {
    let kernel = Vcpu::kernel(0x1000, CR4_4_LEVEL);
    // QEMU before kernel_gs_base: a 0x1b0-byte state, read alike.
    let old = core_with("old-qemu.core", kernel, |state| {
        state.truncate(0x1b0);
        state[4..8].copy_from_slice(&0x1b0_u32.to_le_bytes());
    });
    let output = run("translate", &old, &["401008"]);
    assert_eq!(stdout(&output), "0x401008 0x5008\n", "{output:?}");
    let refused = |name: &str, vcpu: Vcpu, edit: &dyn Fn(&mut Vec<u8>), want: &str| {
        let core = core_with(name, vcpu, edit);
        let output = run("translate", &core, &["401008"]);
        assert_refused(&output, &want.replace("CORE", &core.display().to_string()));
        // Given --cr3, the note is not read at all.
        let given = run("translate", &core, &["--cr3", "1000", "401008"]);
        assert_eq!(stdout(&given), "0x401008 0x5008\n", "{given:?}");
    };
    refused(
        "version2.core",
        kernel,
        &|state| state[..4].copy_from_slice(&2_u32.to_le_bytes()),
        "CORE's QEMU note for vCPU 0 is QEMUCPUState version 2; ptwalk reads version 1: give --cr3",
    );
    refused(
        "small.core",
        kernel,
        &|state| state[4..8].copy_from_slice(&0x100_u32.to_le_bytes()),
        "CORE's QEMU note for vCPU 0 gives its size as 0x100 in a 0x1b8-byte note; ptwalk reads from 0x1b0 bytes on, within the note: give --cr3",
    );
    refused(
        "cut.core",
        kernel,
        &|state| state.truncate(0x1a8),
        "CORE's QEMU note for vCPU 0 gives its size as 0x1b8 in a 0x1a8-byte note; ptwalk reads from 0x1b0 bytes on, within the note: give --cr3",
    );
    refused(
        "real-mode.core",
        Vcpu {
            cr0: 0x10,
            ..kernel
        },
        &|_| {},
        "vCPU 0 of CORE had paging off (CR0 0x10): no page tables to walk; give --cpu N for another vCPU, or --cr3",
    );
    refused(
        "paging32.core",
        Vcpu {
            cr4: CR4_4_LEVEL & !CR4_PAE,
            ..kernel
        },
        &|_| {},
        "vCPU 0 of CORE used 32-bit paging (CR4 0x6d0, PAE clear): ptwalk walks 4- and 5-level paging",
    );
}

#[test]
fn captures_without_registers_name_cr3_and_ptwalk_spaces() {
    // A core with `CORE` notes only (no QEMU notes: not QEMU's, or not x86).
    let notes = qemu_core::note("CORE", 1, &[0; 0x150]);
    let core = write_temp(
        "core-notes-only.core",
        &qemu_core::core_of(qemu_core::EM_X86_64, &notes, &two_spaces()),
    );
    let raw = write_temp("no-registers.raw", &two_spaces()[0].1);
    for image in [&core, &raw] {
        let name = image.display();
        assert_refused(
            &run("translate", image, &["401008"]),
            &format!(
                "--cr3 is required: {name} records no registers and has no low stub that names the kernel's CR3; find its address spaces with ptwalk spaces --image {name}, or give --cr3"
            ),
        );
    }
    assert_refused(
        &run("translate", &core, &["--cpu", "0", "401008"]),
        &format!(
            "--cpu 0 picks a vCPU of a QEMU ELF core: {} has no QEMU notes (QEMU writes them for x86 guests)",
            core.display()
        ),
    );
    assert_refused(
        &run("translate", &raw, &["--cpu", "0", "401008"]),
        &format!(
            "--cpu 0 picks a vCPU of a QEMU ELF core: {} is a raw image, which records no registers",
            raw.display()
        ),
    );
    let pages = pages_of(&two_spaces()[0].1);
    let dump = write_temp("x64.dmp", &crash_dump::bitmap(0x1000, &pages));
    assert_refused(
        &run("translate", &dump, &["--cpu", "0", "401008"]),
        &format!(
            "--cpu 0 picks a vCPU of a QEMU ELF core: {} is a crash dump, whose header records one DirectoryTableBase",
            dump.display()
        ),
    );
    // QEMU's core of a guest whose vCPU 0 was not in long mode (EM_386).
    let notes = qemu_core::notes(&[Vcpu::kernel(0x1000, CR4_4_LEVEL)]);
    let em386 = write_temp("em386.core", &qemu_core::core_of(3, &notes, &two_spaces()));
    assert_refused(
        &run("translate", &em386, &["401008"]),
        &format!(
            "{} is QEMU's core of an x86 guest whose vCPU 0 was not in long mode (e_machine EM_386): ptwalk walks 4- and 5-level paging; give --cr3 if the guest used it",
            em386.display()
        ),
    );
}
