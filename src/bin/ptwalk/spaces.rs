//! `spaces`: the address spaces a capture holds, found without registers.
//!
//! One pass over the capture's pages finds every top-level table by its
//! self-map entry (an upper-half entry that points at its own page) and, on
//! x86-64, the low stub below 1 MiB that names the kernel's CR3. A table is
//! an address space when its upper (kernel) half equals the kernel's, or,
//! when the capture does not show the kernel's, the one most tables share;
//! the others are rejected, with the reason.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vmwalk::walker::aarch64::discovery::{self as arm, UPPER_HALF, WINDOWS_TCR};
use vmwalk::walker::x86_64::discovery::{self as x86, LowStub};

use crate::crash_dump::Machine;
use crate::image::{Container, Image};
use crate::report::Hex;
use vmwalk::walker::{PhysAddr, PhysicalMemory};

/// Physical memory below this may hold the low stub.
const LOW_STUB_LIMIT: u64 = 0x10_0000;

/// What `ptwalk spaces` was asked.
pub struct SpacesArgs {
    pub image: std::path::PathBuf,
    pub aarch64: bool,
    /// `--tcr`: the `TCR_EL1` to report for ARM64 spaces.
    pub tcr: Option<u64>,
    pub json: bool,
    /// `--rejected`: list the tables that are not address spaces, and why.
    pub rejected: bool,
}

/// A page whose upper half has a self-map entry.
#[derive(Clone, Copy)]
struct Candidate {
    pa: u64,
    self_map: usize,
    fingerprint: u64,
}

/// Who uses an address space.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Kernel,
    Process,
    /// Only with `--rejected`: a table that is not an address space.
    Rejected,
}

/// One line of `spaces --json`; the fields are an interface.
#[derive(Serialize)]
struct SpaceLine {
    arch: &'static str,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    cr3: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttbr0: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttbr1: Option<Hex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcr: Option<Hex>,
    self_map: Hex,
    evidence: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// What a scan found.
pub struct Found {
    /// The kernel's table and why, when the capture shows it.
    kernel: Option<(u64, String)>,
    candidates: Vec<Candidate>,
    /// Notes for stderr (a low stub whose CR3 is not a table...).
    notes: Vec<String>,
}

/// The names one architecture's lines use.
struct Words {
    arch: &'static str,
    /// `top-level entry` / `level 0 descriptor of TTBR1_EL1's table`.
    entry: &'static str,
    half: &'static str,
}

const X86_WORDS: Words = Words {
    arch: "x86_64",
    entry: "top-level entry",
    half: "kernel half (entries 0x100-0x1ff)",
};
const ARM_WORDS: Words = Words {
    arch: "aarch64",
    entry: "descriptor of TTBR1_EL1's level 0 table (the page's upper half)",
    half: "upper half (TTBR1_EL1's table)",
};

/// Scans every page of `image` once.
fn scan(image: &Image, aarch64: bool) -> Found {
    let progress = progress_bar(image.scanned_bytes());
    let (mut candidates, mut stubs) = (Vec::new(), Vec::new());
    for (n, (pa, page)) in image.pages().enumerate() {
        if n % 4096 == 0 {
            progress.set_position(n as u64 * 4096);
        }
        if aarch64 {
            if let Some(self_map) = arm::self_map_index(pa, page) {
                let fingerprint = arm::upper_half_fingerprint(page, self_map);
                candidates.push(Candidate {
                    pa,
                    self_map,
                    fingerprint,
                });
            }
            continue;
        }
        if pa < LOW_STUB_LIMIT
            && let Some(stub) = LowStub::of(page)
        {
            stubs.push((pa, stub));
        }
        if let Some(self_map) = x86::self_map_index(pa, page) {
            let fingerprint = x86::kernel_half_fingerprint(page, self_map);
            candidates.push(Candidate {
                pa,
                self_map,
                fingerprint,
            });
        }
    }
    progress.finish_and_clear();
    let mut notes = Vec::new();
    let kernel = dump_kernel(image, aarch64, &candidates, &mut notes)
        .or_else(|| low_stub_kernel(&stubs, &candidates, &mut notes));
    Found {
        kernel,
        candidates,
        notes,
    }
}

/// The kernel's table as a crash dump's header names it, if it is a candidate.
fn dump_kernel(
    image: &Image,
    aarch64: bool,
    candidates: &[Candidate],
    notes: &mut Vec<String>,
) -> Option<(u64, String)> {
    let Container::CrashDump {
        directory_table_base,
        ..
    } = *image.container()
    else {
        return None;
    };
    let table = directory_table_base & 0x0000_ffff_ffff_f000;
    let register = if aarch64 { "TTBR0_EL1" } else { "CR3" };
    if candidates.iter().any(|c| c.pa == table) {
        return Some((
            table,
            format!("the crash dump header's DirectoryTableBase ({register}) names it"),
        ));
    }
    notes.push(format!(
        "the crash dump header's DirectoryTableBase {table:#x} is not a self-mapped table in the capture"
    ));
    None
}

/// The kernel's CR3 as the low stub names it, if it is a candidate.
fn low_stub_kernel(
    stubs: &[(u64, LowStub)],
    candidates: &[Candidate],
    notes: &mut Vec<String>,
) -> Option<(u64, String)> {
    for &(at, stub) in stubs {
        if candidates.iter().any(|c| c.pa == stub.cr3) {
            return Some((
                stub.cr3,
                format!(
                    "the low stub (PROCESSOR_START_BLOCK) at {at:#x} names it as the kernel's CR3"
                ),
            ));
        }
        notes.push(format!(
            "the low stub at {at:#x} names CR3 {:#x}, which is not a self-mapped table in the capture",
            stub.cr3
        ));
    }
    None
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(bytes);
    // indicatif's template, not a format string.
    #[allow(clippy::literal_string_with_formatting_args)]
    if let Ok(style) = ProgressStyle::with_template(
        "ptwalk: scanning {bytes}/{total_bytes} ({binary_bytes_per_sec}) {wide_bar}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// An address space: its table, role and evidence.
type Accepted = (Candidate, Role, Vec<String>);

/// The address spaces among the candidates, and the rejected tables with
/// the reason: the reference is the kernel's table, else the (self-map
/// index, upper half) most tables share.
fn classify(found: &Found, words: &Words) -> (Vec<Accepted>, Vec<(Candidate, String)>) {
    let kernel = found
        .kernel
        .as_ref()
        .and_then(|(pa, _)| found.candidates.iter().find(|c| c.pa == *pa));
    let mut groups: HashMap<(usize, u64), usize> = HashMap::new();
    for c in &found.candidates {
        *groups.entry((c.self_map, c.fingerprint)).or_default() += 1;
    }
    let reference = kernel.map(|k| (k.self_map, k.fingerprint)).or_else(|| {
        let most = groups.values().copied().max()?;
        let mut tied = groups.iter().filter(|(_, n)| **n == most);
        let first = tied.next().map(|(key, _)| *key);
        // Two halves shared by as many tables: neither is the kernel's.
        tied.next().is_none().then_some(first).flatten()
    });
    let shared_by = reference
        .and_then(|key| groups.get(&key))
        .copied()
        .unwrap_or(0);
    let (mut spaces, mut rejected) = (Vec::new(), Vec::new());
    for &c in &found.candidates {
        let mut evidence = vec![format!(
            "{} {:#x} points at its own page",
            words.entry, c.self_map
        )];
        let Some((index, fingerprint)) = reference else {
            rejected.push((
                c,
                "no upper half is shared by more tables than any other".to_owned(),
            ));
            continue;
        };
        if c.self_map != index {
            rejected.push((
                c,
                format!(
                    "its self-map entry is {:#x}, the address spaces' is {index:#x}",
                    c.self_map
                ),
            ));
            continue;
        }
        if c.fingerprint != fingerprint {
            let whose = kernel.map_or_else(
                || format!("the one {shared_by} tables share"),
                |k| format!("the kernel's table's at {:#x}", k.pa),
            );
            rejected.push((c, format!("its {} differs from {whose}", words.half)));
            continue;
        }
        let role = match (kernel, &found.kernel) {
            (Some(k), Some((_, why))) if k.pa == c.pa => {
                evidence.insert(0, why.clone());
                Role::Kernel
            }
            (Some(k), _) => {
                evidence.push(format!(
                    "its {} equals the kernel's table's at {:#x}",
                    words.half, k.pa
                ));
                Role::Process
            }
            (None, _) => {
                evidence.push(if shared_by > 1 {
                    format!(
                        "its {} equals that of the {} other tables found with it",
                        words.half,
                        shared_by - 1
                    )
                } else {
                    "no other table was found to compare its upper half with".to_owned()
                });
                Role::Process
            }
        };
        spaces.push((c, role, evidence));
    }
    (spaces, rejected)
}

/// `ptwalk spaces`: one line (or JSON object) per address space.
pub fn run(out: &mut dyn Write, args: &SpacesArgs) -> Result<()> {
    if args.tcr.is_some() && !args.aarch64 {
        bail!("--tcr describes an ARM64 CPU: add --arch aarch64");
    }
    let image = Image::open(&args.image)?;
    // An ARM64 crash dump says what it is.
    let aarch64 = args.aarch64 || image.dump_machine() == Some(Machine::Arm64);
    let found = scan(&image, aarch64);
    let words = if aarch64 { &ARM_WORDS } else { &X86_WORDS };
    let (spaces, rejected) = classify(&found, words);
    for note in &found.notes {
        eprintln!("ptwalk: {note}");
    }
    let tcr = args.tcr.unwrap_or(WINDOWS_TCR);
    let line =
        |c: &Candidate, role: Role, evidence: Vec<String>, reason: Option<String>| SpaceLine {
            arch: words.arch,
            role,
            cr3: (!aarch64).then_some(Hex(c.pa)),
            ttbr0: aarch64.then_some(Hex(c.pa)),
            ttbr1: aarch64.then_some(Hex(c.pa + UPPER_HALF)),
            tcr: aarch64.then_some(Hex(tcr)),
            self_map: Hex(c.self_map as u64),
            evidence,
            reason,
        };
    let mut lines: Vec<SpaceLine> = spaces
        .into_iter()
        .map(|(c, role, evidence)| line(&c, role, evidence, None))
        .collect();
    let rejected_count = rejected.len();
    if args.rejected {
        lines.extend(rejected.into_iter().map(|(c, why)| {
            let evidence = vec![format!(
                "{} {:#x} points at its own page",
                words.entry, c.self_map
            )];
            line(&c, Role::Rejected, evidence, Some(why))
        }));
    }
    for l in &lines {
        if args.json {
            serde_json::to_writer(&mut *out, l)?;
            writeln!(out)?;
        } else {
            write_text(out, l)?;
        }
    }
    out.flush()?;
    let kept = lines.iter().filter(|l| l.role != Role::Rejected).count();
    if kept == 0 {
        bail!(
            "no address space found: is this a capture of {}?",
            if aarch64 {
                "Windows on ARM64 (without --arch aarch64 it is read as x86-64)"
            } else {
                "x86-64 Windows (add --arch aarch64 for ARM64)"
            }
        );
    }
    let more = if rejected_count > 0 && !args.rejected {
        format!(", {rejected_count} table(s) rejected (--rejected lists them, with the reason)")
    } else {
        String::new()
    };
    eprintln!(
        "ptwalk: {kept} address space(s) in {:#x} bytes of physical memory{more}",
        image.scanned_bytes()
    );
    Ok(())
}

fn write_text(out: &mut dyn Write, l: &SpaceLine) -> std::io::Result<()> {
    let role = match l.role {
        Role::Kernel => "kernel ",
        Role::Process => "process",
        Role::Rejected => "rejected",
    };
    let registers = match (&l.cr3, &l.ttbr0, &l.ttbr1, &l.tcr) {
        (Some(cr3), ..) => format!("cr3 {:#x}", cr3.0),
        (None, Some(t0), Some(t1), Some(tcr)) => {
            format!("ttbr0 {:#x} ttbr1 {:#x} tcr {:#x}", t0.0, t1.0, tcr.0)
        }
        _ => String::new(),
    };
    let why = l
        .reason
        .as_deref()
        .map_or_else(|| l.evidence.join("; "), str::to_owned);
    writeln!(
        out,
        "{role} {registers} self-map {:#x}: {why}",
        l.self_map.0
    )
}

/// The kernel's CR3 that the low stub names, when that page is a
/// self-mapped table; reads only the first MiB and that page. For
/// `translate`, `dump` and `pte` without `--cr3`.
pub fn low_stub_cr3(image: &Image) -> Option<(u64, String)> {
    let mut notes = Vec::new();
    let stubs: Vec<(u64, LowStub)> = image
        .pages()
        .take_while(|(pa, _)| *pa < LOW_STUB_LIMIT)
        .filter_map(|(pa, page)| LowStub::of(page).map(|stub| (pa, stub)))
        .collect();
    let candidates: Vec<Candidate> = stubs
        .iter()
        .filter_map(|(_, stub)| {
            let page = image.page(PhysAddr(stub.cr3))?;
            let self_map = x86::self_map_index(stub.cr3, page)?;
            Some(Candidate {
                pa: stub.cr3,
                self_map,
                fingerprint: 0,
            })
        })
        .collect();
    low_stub_kernel(&stubs, &candidates, &mut notes)
}
