//! `translate`'s one renderer, for both architectures: an [`AddressReport`]
//! as `0x<va> 0x<pa>` (or `0x<va> -`), with `--explain` every entry read and
//! the outcome in the architecture's words (or `WinDbg`'s), or with `--json`
//! one JSON object per line (serde's form of the report).

use std::fmt::Write as _;
use std::io::{self, Write};

use vmwalk::walker::OutsideImage;
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::windbg::PathLines;
use vmwalk::walker::x86_64::{FaultKind, Level, Visited};

use crate::report::{Aarch64Walk, AddressReport, Walk, X86Walk};

/// How to print each address.
#[derive(Clone, Copy)]
pub enum Style {
    /// `0x<va> 0x<pa>` or `0x<va> -`.
    Plain,
    /// The plain line, then the entries read and the outcome.
    Explain(Words),
    /// One JSON object.
    Json,
}

/// Whose words `--explain` speaks.
#[derive(Clone, Copy)]
pub enum Words {
    /// The architecture manual's: Intel's entry names (a non-present entry is
    /// only not present), or Arm's levels and fault names.
    Cpu,
    /// `WinDbg`'s names, and Windows' software PTEs decoded with this mask
    /// as `!pte` does (x86-64 only).
    Windows(InvalidPteMask),
}

/// Prints `report` in `style`, ending with a newline.
pub fn write(out: &mut dyn Write, report: &AddressReport, style: Style) -> io::Result<()> {
    match style {
        Style::Json => {
            serde_json::to_writer(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Style::Plain => out.write_all(plain_line(report).as_bytes()),
        Style::Explain(words) => {
            let mut text = plain_line(report);
            match &report.walk {
                Walk::X86(walk) => explain_x86(&mut text, walk, words),
                Walk::Aarch64(walk) => explain_aarch64(&mut text, walk),
            }
            out.write_all(text.as_bytes())
        }
    }
}

/// `0x<va> 0x<pa>` or `0x<va> -`, and a newline.
fn plain_line(report: &AddressReport) -> String {
    let va = report.va.0;
    report.pa.map_or_else(
        || format!("{va:#x} -\n"),
        |pa| format!("{va:#x} {:#x}\n", pa.0),
    )
}

/// x86-64's entries and outcome, in Intel's or `WinDbg`'s words.
fn explain_x86(text: &mut String, walk: &X86Walk, words: Words) {
    let (path, summary) = match walk {
        Ok(t) => (t.path, t.mapping.to_string()),
        Err(fault) => {
            let summary = fault.kind.to_string();
            match (words, fault_level(&fault.kind)) {
                // The walker names levels as Intel does; WinDbg's names here.
                (Words::Windows(_), Some(level)) => (
                    fault.path,
                    summary.replacen(level.entry_name(), level.windbg_name(), 1),
                ),
                _ => (fault.path, summary),
            }
        }
    };
    match words {
        Words::Windows(mask) => {
            for line in PathLines(&path, mask).to_string().lines() {
                let _ = writeln!(text, "    {line}");
            }
        }
        Words::Cpu => {
            for visited in path.as_slice() {
                let _ = writeln!(text, "    {}", intel_line(visited));
            }
        }
    }
    let _ = writeln!(text, "    => {summary}");
}

/// What `--explain` prints in the CPU's words, without its indentation and
/// `=> `: one line per entry read, and the outcome.
pub fn cpu_explanation(walk: &Walk) -> (Vec<String>, String) {
    match walk {
        Walk::X86(walk) => {
            let (path, summary) = match walk {
                Ok(t) => (t.path, t.mapping.to_string()),
                Err(fault) => (fault.path, fault.kind.to_string()),
            };
            (path.as_slice().iter().map(intel_line).collect(), summary)
        }
        Walk::Aarch64(walk) => {
            let mut text = String::new();
            explain_aarch64(&mut text, walk);
            let mut lines: Vec<String> = text.lines().map(|line| line.trim().to_owned()).collect();
            let summary = lines
                .pop()
                .map(|last| last.trim_start_matches("=> ").to_owned())
                .unwrap_or_default();
            (lines, summary)
        }
    }
}

/// ARM64's descriptors (`level 3 at phys 0x...: 0x... (page)`) and outcome,
/// in Arm's words.
fn explain_aarch64(text: &mut String, walk: &Aarch64Walk) {
    let (path, summary) = match walk {
        Ok(t) => (t.path, t.mapping.to_string()),
        Err(fault) => (fault.path, fault.kind.to_string()),
    };
    for visited in path.iter() {
        let kind = visited.entry.kind(visited.level);
        let _ = writeln!(
            text,
            "    {} at phys {:#x}: {} ({kind})",
            visited.level, visited.addr.0, visited.entry
        );
    }
    let _ = writeln!(text, "    => {summary}");
}

const fn fault_level(kind: &FaultKind<OutsideImage>) -> Option<Level> {
    match kind {
        FaultKind::NonCanonical { .. } => None,
        FaultKind::NotPresent { level, .. }
        | FaultKind::ReservedBit { level, .. }
        | FaultKind::ReadFailed { level, .. } => Some(*level),
    }
}

/// One entry in Intel's words: `PDPTE at phys 0x2008: 0x...5027 (P RW US A, address 0x5000)`.
fn intel_line(visited: &Visited) -> String {
    let Visited { level, addr, entry } = *visited;
    let mut line = format!("{level} at phys {:#x}: {:#018x} (", addr.0, entry.0);
    if entry.0 & 1 == 0 {
        line.push_str("not present)");
        return line;
    }
    let large = matches!(level, Level::Pdpt | Level::Pd) && entry.0 & 0x80 != 0;
    // PAT is bit 7 in a PTE and bit 12 in a large leaf, where bit 7 is PS.
    let (bit7, pat_bit12) = match level {
        Level::Pt => ("PAT", false),
        _ => ("PS", large),
    };
    let flag_bits: [(u64, &str, bool); 11] = [
        (1, "P", true),
        (1 << 1, "RW", true),
        (1 << 2, "US", true),
        (1 << 3, "PWT", true),
        (1 << 4, "PCD", true),
        (1 << 5, "A", true),
        (1 << 6, "D", true),
        (1 << 7, bit7, true),
        (1 << 8, "G", true),
        (1 << 12, "PAT", pat_bit12),
        (1 << 63, "XD", true),
    ];
    let names: Vec<&str> = flag_bits
        .iter()
        .filter(|(bit, _, shown)| *shown && entry.0 & bit != 0)
        .map(|(_, name, _)| *name)
        .collect();
    let address_bits = if large {
        0x000f_ffff_ffff_e000
    } else {
        0x000f_ffff_ffff_f000
    };
    let _ = write!(
        line,
        "{}, address {:#x})",
        names.join(" "),
        entry.0 & address_bits
    );
    line
}
