//! The picture's parts, from the capture: `dump`'s runs, the self-map and
//! kernel image labels, and each `--address`'s walk as `translate
//! --explain` reports it (`report.rs`, `render.rs`).

use anyhow::Result;
use vmwalk::walker::aarch64::{self, VaRange};
use vmwalk::walker::x86_64::discovery::LowStub;
use vmwalk::walker::{Fault, FaultKind, PageSize, Paging, SelfMap, VirtAddr};

use super::picture::{Class, EntryBox, Field, Label, MapRun, Outcome, Picture, Row, WalkPicture};
use crate::dump::aarch64_run_line;
use crate::image::Image;
use crate::paging_args::Registers;
use crate::render::cpu_explanation;
use crate::report::{AddressReport, EntryLevel};

/// Physical memory below this may hold the low stub.
const LOW_STUB_LIMIT: u64 = 0x10_0000;

#[allow(
    clippy::too_many_lines,
    reason = "one pass over the runs, then the labels and the walks"
)]
pub(super) fn x86_picture(paging: &Paging, image: &Image, addresses: &[u64]) -> Picture {
    let mode = paging.mode();
    let bits = mode.address_bits();
    let half = 1_u64 << (bits - 1);
    let upper = mode.canonicalize(half);
    let mut runs = Vec::new();
    let (mut skipped, mut missing) = (0, 0);
    for run in paging.leaves(image).runs() {
        match run {
            Ok(run) => {
                let last = run.va.0.wrapping_add(run.bytes - 1);
                let a = run.access;
                let line = format!(
                    "{:#018x}-{last:#018x} -> {:#x} {} x{}: {}, {}, {}{}, PAT index {}",
                    run.va.0,
                    run.pa.0,
                    run.page_size,
                    run.bytes / run.page_size.bytes(),
                    if a.writable { "writable" } else { "read-only" },
                    if a.user { "user" } else { "kernel" },
                    if a.executable {
                        "executable"
                    } else {
                        "no-execute"
                    },
                    if run.global { ", global" } else { "" },
                    run.memory_type.pat_index()
                );
                runs.push(MapRun {
                    va: run.va.0,
                    last,
                    pa: run.pa.0,
                    bytes: run.bytes,
                    page_size: run.page_size,
                    class: Class::of(a.writable, a.executable),
                    user: a.user,
                    row: usize::from(run.va.0 >= upper),
                    line,
                });
            }
            Err(Fault {
                kind: FaultKind::ReadFailed { .. },
                ..
            }) => missing += 1,
            Err(_) => skipped += 1,
        }
    }
    let mut labels = Vec::new();
    let windows = if let Ok(Some(map)) = SelfMap::find(paging, image) {
        let base = map.pte_base().0;
        let top = mode.levels()[0];
        labels.push(Label {
            row: 1,
            first: base,
            last: base + ((1_u64 << (bits - 9)) - 1),
            text: format!(
                "self-map: {} entry {:#x} maps its own table; PTE base {base:#x}",
                table_name(&top.to_string()),
                map.index()
            ),
        });
        true
    } else {
        false
    };
    let entry = low_stub_entry(image, paging.root().0);
    labels.extend(kernel_image(&runs, entry, windows));
    let walks = addresses
        .iter()
        .map(|&va| {
            let report = AddressReport::x86(va, paging.translate(image, VirtAddr(va)));
            let linear = mode.linear(VirtAddr(va));
            let mut fields = vec![Field {
                high: 63,
                low: bits,
                name: format!("sign extension: copies of bit {}", bits - 1),
            }];
            fields.extend(mode.levels().iter().map(|level| Field {
                high: level.shift() + 8,
                low: level.shift(),
                name: format!(
                    "{} index {:#x}",
                    table_name(&level.to_string()),
                    level.index(linear)
                ),
            }));
            fields.push(offset_field(va));
            let index = |level: &EntryLevel| match level {
                EntryLevel::X86(level) => level.index(linear) as u64,
                EntryLevel::Aarch64(_) => 0,
            };
            walk_picture(
                va,
                &report,
                fields,
                ("CR3".to_owned(), paging.root().0),
                index,
            )
        })
        .collect();
    let levels = if bits == 57 { 5 } else { 4 };
    Picture {
        heading: format!("x86-64, {levels}-level paging, CR3 {:#x}", paging.root().0),
        rows: [
            Row {
                name: "lower canonical half (user)".to_owned(),
                first: 0,
                last: half - 1,
                note: String::new(),
            },
            Row {
                name: "upper canonical half (kernel)".to_owned(),
                first: upper,
                last: u64::MAX,
                note: String::new(),
            },
        ],
        hole: (
            half,
            upper - 1,
            format!(
                "non-canonical hole: bits 63:{bits} do not all copy bit {}; the CPU raises #GP, no address here translates",
                bits - 1
            ),
        ),
        runs,
        labels,
        walks,
        skipped,
        missing,
    }
}

/// The kernel entry point the low stub names, when it names this CR3.
fn low_stub_entry(image: &Image, cr3: u64) -> Option<u64> {
    image
        .pages()
        .take_while(|(pa, _)| *pa < LOW_STUB_LIMIT)
        .filter_map(|(_, page)| LowStub::of(page))
        .find(|stub| stub.cr3 == cr3)
        .map(|stub| stub.kernel_entry)
}

/// The kernel image's large pages: the run of large pages around the entry
/// point the low stub names; without one, on Windows, every stretch of
/// executable kernel large pages (where Windows maps its kernel image).
fn kernel_image(runs: &[MapRun], entry: Option<u64>, windows: bool) -> Vec<Label> {
    let large = |run: &MapRun| run.page_size != PageSize::Size4K;
    if let Some(entry) = entry {
        let Some(at) = runs.iter().position(|r| r.va <= entry && entry <= r.last) else {
            return Vec::new();
        };
        let (mut first, mut last) = (at, at);
        if large(&runs[at]) {
            while first > 0 && large(&runs[first - 1]) && runs[first - 1].last + 1 == runs[first].va
            {
                first -= 1;
            }
            while last + 1 < runs.len()
                && large(&runs[last + 1])
                && runs[last].last.wrapping_add(1) == runs[last + 1].va
            {
                last += 1;
            }
        }
        let what = if large(&runs[at]) {
            "kernel image, large pages"
        } else {
            "kernel image"
        };
        return vec![Label {
            row: runs[at].row,
            first: runs[first].va,
            last: runs[last].last,
            text: format!("{what}: entry point {entry:#x} (the low stub's LmTarget)"),
        }];
    }
    if !windows {
        return Vec::new();
    }
    let mut labels: Vec<Label> = Vec::new();
    for run in runs
        .iter()
        .filter(|r| r.row == 1 && !r.user && large(r) && r.class >= Class::Executable)
    {
        match labels.last_mut() {
            Some(label) if label.last.wrapping_add(1) == run.va => label.last = run.last,
            _ => labels.push(Label {
                row: 1,
                first: run.va,
                last: run.last,
                text: "executable kernel large pages (Windows maps its kernel image so)".to_owned(),
            }),
        }
    }
    labels
}

// ---- What is drawn: ARM64 ----

#[allow(
    clippy::too_many_lines,
    reason = "one pass over the runs, then the labels and the walks"
)]
pub(super) fn aarch64_picture(
    registers: &Registers,
    image: &Image,
    addresses: &[u64],
) -> Result<Picture> {
    let paging = registers.paging()?;
    let (lower, upper) = (paging.range(VaRange::Lower), paging.range(VaRange::Upper));
    let lower_last = (1_u64 << lower.va_bits) - 1;
    let upper_first = (1_u64 << upper.va_bits).wrapping_neg();
    let mut runs = Vec::new();
    let (mut skipped, mut missing) = (0, 0);
    for run in paging.leaves(image).runs() {
        match run {
            Ok(run) => {
                let a = run.access;
                runs.push(MapRun {
                    va: run.va.0,
                    last: run.va.0.wrapping_add(run.bytes - 1),
                    pa: run.pa.0,
                    bytes: run.bytes,
                    page_size: run.page_size,
                    class: Class::of(
                        a.privileged_write || a.unprivileged_write,
                        a.privileged_execute || a.unprivileged_execute,
                    ),
                    user: a.unprivileged_read || a.unprivileged_write || a.unprivileged_execute,
                    row: usize::from(run.range == VaRange::Upper),
                    line: aarch64_run_line(&paging, &run),
                });
            }
            Err(aarch64::Fault {
                kind: aarch64::FaultKind::ReadFailed { .. },
                ..
            }) => missing += 1,
            Err(_) => skipped += 1,
        }
    }
    let mut labels = Vec::new();
    let windows = if let Ok(Some(map)) = aarch64::SelfMap::find(&paging, image) {
        let base = map.pte_base().0;
        labels.push(Label {
            row: 1,
            first: base,
            last: base + ((1_u64 << aarch64::Level::L0.shift()) - 1),
            text: format!(
                "self-map: level 0 descriptor {:#x} maps its own table; PTE base {base:#x}",
                map.index()
            ),
        });
        true
    } else {
        false
    };
    labels.extend(kernel_image(&runs, None, windows));
    let disabled = |walks_disabled: bool, given: bool| match (walks_disabled, given) {
        (_, false) => " (not given: its walks fault at level 0)".to_owned(),
        (true, true) => " (TCR_EL1.EPD: its walks fault at level 0)".to_owned(),
        _ => String::new(),
    };
    let walks = addresses
        .iter()
        .map(|&va| {
            let report = AddressReport::aarch64(va, paging.translate(image, VirtAddr(va)));
            let range = VaRange::of(va);
            let config = paging.range(range);
            let top = if config.top_byte_ignored { 55 } else { 63 };
            let mut fields = Vec::new();
            if config.top_byte_ignored {
                fields.push(Field {
                    high: 63,
                    low: 56,
                    name: "tag (TBI: ignored)".to_owned(),
                });
            }
            fields.push(Field {
                high: top,
                low: config.va_bits,
                name: format!(
                    "range select: {} (bits all {})",
                    range.register(),
                    u8::from(range == VaRange::Upper)
                ),
            });
            let start = config.start_level();
            for level in aarch64::Level::ALL.iter().filter(|l| **l >= start) {
                let high = (level.shift() + 8).min(config.va_bits - 1);
                fields.push(Field {
                    high,
                    low: level.shift(),
                    name: format!(
                        "{level} index {:#x}",
                        (va >> level.shift()) & ((1 << (high - level.shift() + 1)) - 1)
                    ),
                });
            }
            fields.push(offset_field(va));
            let index = |level: &EntryLevel| match level {
                EntryLevel::Aarch64(level) => {
                    let high = (level.shift() + 8).min(config.va_bits - 1);
                    (va >> level.shift()) & ((1 << (high - level.shift() + 1)) - 1)
                }
                EntryLevel::X86(_) => 0,
            };
            let register = (range.register().to_owned(), config.ttbr);
            walk_picture(va, &report, fields, register, index)
        })
        .collect();
    Ok(Picture {
        heading: format!(
            "ARM64, TTBR0_EL1 {}, TTBR1_EL1 {}, TCR_EL1 {:#x}",
            registers
                .ttbr0
                .map_or_else(|| "not given".to_owned(), |t| format!("{t:#x}")),
            registers
                .ttbr1
                .map_or_else(|| "not given".to_owned(), |t| format!("{t:#x}")),
            registers.tcr
        ),
        rows: [
            Row {
                name: format!("TTBR0_EL1 range, {} bits (user)", lower.va_bits),
                first: 0,
                last: lower_last,
                note: disabled(lower.walks_disabled, registers.ttbr0.is_some()),
            },
            Row {
                name: format!("TTBR1_EL1 range, {} bits (kernel)", upper.va_bits),
                first: upper_first,
                last: u64::MAX,
                note: disabled(upper.walks_disabled, registers.ttbr1.is_some()),
            },
        ],
        hole: (
            lower_last + 1,
            upper_first - 1,
            "outside both ranges: a Translation fault at level 0, no address here translates"
                .to_owned(),
        ),
        runs,
        labels,
        walks,
        skipped,
        missing,
    })
}

// ---- A walk, from translate's report ----

/// Bits 11:0.
fn offset_field(va: u64) -> Field {
    Field {
        high: 11,
        low: 0,
        name: format!("offset {:#x}", va & 0xfff),
    }
}

/// `PML4E` -> `PML4`; `level 0` -> `level 0 table`.
fn table_name(entry: &str) -> String {
    entry
        .strip_suffix('E')
        .map_or_else(|| format!("{entry} table"), str::to_owned)
}

fn walk_picture(
    va: u64,
    report: &AddressReport,
    fields: Vec<Field>,
    register: (String, u64),
    index: impl Fn(&EntryLevel) -> u64,
) -> WalkPicture {
    let (lines, summary) = cpu_explanation(&report.walk);
    let entries = report
        .path
        .iter()
        .zip(&lines)
        .map(|(entry, line)| {
            let level = entry.level.to_string();
            EntryBox {
                table: table_name(&level),
                level,
                index: index(&entry.level),
                entry_addr: entry.entry_addr.0,
                value: entry.value.0,
                flags: line
                    .split_once(" (")
                    .map(|(_, flags)| flags.trim_end_matches(')').to_owned())
                    .unwrap_or_default(),
                line: line.clone(),
            }
        })
        .collect();
    let error = report.error.as_ref();
    WalkPicture {
        va,
        fields,
        register,
        entries,
        outcome: Outcome {
            pa: report.pa.map(|pa| pa.0),
            page_size: report.page_size.map(|size| size.0),
            error: error.and_then(|e| {
                serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
            }),
            stopped_at: error.and_then(|e| e.level.map(|level| level.to_string())),
            summary,
        },
    }
}
