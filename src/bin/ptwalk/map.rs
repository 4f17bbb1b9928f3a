//! `ptwalk map`: one SVG picture of an address space and of the walk of
//! each `--address`. The address space: its two ranges (x86-64's canonical
//! halves, ARM64's `TTBR0_EL1` and `TTBR1_EL1` ranges) and the hole between
//! them, every run `dump` lists on a scale that keeps small runs visible,
//! coloured by access, the self-map and the kernel image labelled. Each walk:
//! the address split into its indices, and each table read, as `translate
//! --explain` reports it (`report.rs`, `render.rs`). Drawn with `svg.rs`.

// Pixel arithmetic: coordinates are floats, made from counts and sizes
// that are shown approximately; each drawing function draws one part of the
// picture from top to bottom.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::suboptimal_flops,
    clippy::many_single_char_names,
    clippy::too_many_lines,
    reason = "drawing: float coordinates, and one function per part of the picture"
)]

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vmwalk::walker::aarch64::{self, VaRange};
use vmwalk::walker::x86_64::discovery::LowStub;
use vmwalk::walker::{Fault, FaultKind, PageSize, Paging, SelfMap, VirtAddr};

use crate::dump::aarch64_run_line;
use crate::image::Image;
use crate::paging_args::{Opened, PagingArgs, Registers};
use crate::render::cpu_explanation;
use crate::report::{AddressReport, EntryLevel};
use crate::svg::{Svg, num};

/// What `ptwalk map` was asked.
pub struct MapArgs {
    pub paging: PagingArgs,
    /// `--svg`: the file to write.
    pub svg: PathBuf,
    /// `--address`: the addresses whose walks are drawn.
    pub addresses: Vec<u64>,
}

/// The picture's width, and the margin on each side.
const WIDTH: f64 = 1400.0;
const MARGIN: f64 = 20.0;
const STRIP: f64 = WIDTH - 2.0 * MARGIN;
/// Pixels per unit of run width at most (a 4 KiB run is one unit).
const MAX_PX_PER_UNIT: f64 = 40.0;
/// The share of a row's width runs take at most; gaps share the rest.
const RUN_SHARE: f64 = 0.8;
/// A row's bar: its height (a 1 GiB run's), and the user-access strip below.
const BAR: f64 = 40.0;
const USER_STRIP: f64 = 6.0;
/// Rows with at most this many bars get each run's address written under it.
const ADDRESS_LABELS: usize = 60;
/// Physical memory below this may hold the low stub.
const LOW_STUB_LIMIT: u64 = 0x10_0000;

/// Runs `map`.
pub fn run(args: &MapArgs) -> Result<()> {
    let picture = match args.paging.open(|_| Ok(()))? {
        Opened::X86_64 { paging, image } => x86_picture(&paging, &image, &args.addresses),
        Opened::Aarch64 { registers, image } => {
            aarch64_picture(&registers, &image, &args.addresses)?
        }
    };
    let (svg, merged) = draw(&picture);
    std::fs::write(&args.svg, svg.as_bytes())
        .with_context(|| format!("cannot write {}", args.svg.display()))?;
    eprintln!(
        "ptwalk: wrote {}: {} runs ({} bars, {merged} runs merged into others' pixels), {} walk(s), {} bytes",
        args.svg.display(),
        picture.runs.len(),
        picture.runs.len() - merged,
        picture.walks.len(),
        svg.len()
    );
    if picture.missing > 0 {
        bail!(
            "{} page table(s) could not be read: tables missing from the image (the picture leaves out what they map)",
            picture.missing
        );
    }
    Ok(())
}

/// Everything drawn, found before drawing.
struct Picture {
    heading: String,
    /// The lower range, then the upper.
    rows: [Row; 2],
    /// The addresses between the rows, and what the CPU does with them.
    hole: (u64, u64, String),
    /// Every run, in address order (lower range first).
    runs: Vec<MapRun>,
    labels: Vec<Label>,
    walks: Vec<WalkPicture>,
    /// Entries the CPU would fault on, passed over as `dump` does.
    skipped: usize,
    /// Reads of tables the image does not hold.
    missing: usize,
}

/// One address range: a row of the picture.
struct Row {
    name: String,
    first: u64,
    last: u64,
    /// Said after the name (an ARM64 range whose walks are disabled).
    note: String,
}

/// How a run may be accessed, as its colour says.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    ReadOnly,
    Writable,
    Executable,
    WritableExecutable,
}

impl Class {
    const ALL: [Self; 4] = [
        Self::ReadOnly,
        Self::Writable,
        Self::Executable,
        Self::WritableExecutable,
    ];

    const fn of(writable: bool, executable: bool) -> Self {
        match (writable, executable) {
            (false, false) => Self::ReadOnly,
            (true, false) => Self::Writable,
            (false, true) => Self::Executable,
            (true, true) => Self::WritableExecutable,
        }
    }

    const fn css(self) -> &'static str {
        match self {
            Self::ReadOnly => "ro",
            Self::Writable => "rw",
            Self::Executable => "rx",
            Self::WritableExecutable => "wx",
        }
    }

    const fn words(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Writable => "writable",
            Self::Executable => "executable",
            Self::WritableExecutable => "writable+executable (HVCI forbids it)",
        }
    }
}

/// A run of `dump`'s enumeration, as drawn.
struct MapRun {
    va: u64,
    last: u64,
    pa: u64,
    bytes: u64,
    page_size: PageSize,
    class: Class,
    user: bool,
    /// 0: the lower range; 1: the upper.
    row: usize,
    /// Its full values: the tooltip.
    line: String,
}

/// A named region above a row.
struct Label {
    row: usize,
    first: u64,
    last: u64,
    text: String,
}

/// One `--address`: its index fields, the base register, each entry read,
/// and where the walk ends.
struct WalkPicture {
    va: u64,
    fields: Vec<Field>,
    register: (String, u64),
    entries: Vec<EntryBox>,
    outcome: Outcome,
}

/// Bits `high..=low` of the address, and what they select.
struct Field {
    high: u32,
    low: u32,
    name: String,
}

/// One entry a walk read.
struct EntryBox {
    /// `PML4` or `level 0 table`.
    table: String,
    /// `PML4E` or `level 0`.
    level: String,
    index: u64,
    entry_addr: u64,
    value: u64,
    /// The flags (or descriptor kind) `--explain` names.
    flags: String,
    /// `--explain`'s line for it.
    line: String,
}

/// Where a walk ended.
struct Outcome {
    pa: Option<u64>,
    page_size: Option<PageSize>,
    /// `--json`'s error kind.
    error: Option<String>,
    /// The level whose entry stopped it.
    stopped_at: Option<String>,
    /// `--explain`'s last line, without `=> `.
    summary: String,
}

// ---- What is drawn: x86-64 ----

fn x86_picture(paging: &Paging, image: &Image, addresses: &[u64]) -> Picture {
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

fn aarch64_picture(registers: &Registers, image: &Image, addresses: &[u64]) -> Result<Picture> {
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

// ---- Drawing ----

const STYLE: &str = "
.background { fill: #ffffff; }
text { font-family: 'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif; font-size: 13px; fill: #1a1a1a; }
.h1 { font-size: 20px; font-weight: bold; }
.h2 { font-size: 16px; font-weight: bold; }
.small { font-size: 11px; fill: #444444; }
.mono { font-family: 'DejaVu Sans Mono', Consolas, Menlo, monospace; font-size: 11px; }
.addr { font-family: 'DejaVu Sans Mono', Consolas, Menlo, monospace; font-size: 9px; fill: #333333; }
.center { text-anchor: middle; }
.end { text-anchor: end; }
.lane { fill: #f3f4f6; stroke: #9ca3af; stroke-width: 1; }
.hole { fill: url(#hatch); stroke: #9ca3af; stroke-width: 1; }
.ro { fill: #7b9acc; }
.rw { fill: #3fa66a; }
.rx { fill: #f2a33a; }
.wx { fill: #d7263d; stroke: #5c0011; stroke-width: 1.5; }
.bar { stroke: #ffffff; stroke-width: 0.5; }
.merged { stroke: none; }
.user { fill: #222222; }
.label-line { stroke: #6d28d9; stroke-width: 1.5; fill: none; }
.label-text { fill: #6d28d9; font-size: 12px; }
.pin-line { stroke: #111111; stroke-width: 1.5; stroke-dasharray: 3 2; }
.box-entry { fill: #f8fafc; stroke: #475569; stroke-width: 1.2; }
.box-field { fill: #eef2ff; stroke: #6366f1; stroke-width: 1; }
.box-register { fill: #e0f2fe; stroke: #0369a1; stroke-width: 1.2; }
.box-frame { fill: #dcfce7; stroke: #15803d; stroke-width: 1.5; }
.box-fault { fill: #fee2e2; stroke: #b91c1c; stroke-width: 2; }
.arrow { fill: #475569; }
";

const DEFS: &str = r##"<pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f3f4f6"/><line x1="0" y1="0" x2="0" y2="8" stroke="#c0c4cc" stroke-width="3"/></pattern>
"##;

/// A run's width in units: 1 for a 4 KiB run, growing with the log of its size.
fn run_units(bytes: u64) -> f64 {
    1.0 + f64::from((bytes / 4096).max(1).ilog2()) / 4.0
}

/// A gap's weight in its row's share of gaps: growing with the log of its
/// size; nothing for no gap.
fn gap_weight(bytes: u128) -> f64 {
    if bytes == 0 {
        0.0
    } else {
        1.0 + f64::from(
            u64::try_from(bytes / 4096)
                .unwrap_or(u64::MAX)
                .max(1)
                .ilog2(),
        )
    }
}

/// What a row's horizontal scale maps: a gap or a run, at `x` for `w` pixels.
#[derive(Clone, Copy)]
struct Segment {
    first: u64,
    /// One past its last byte (2^64 for the top).
    end: u128,
    x: f64,
    w: f64,
    /// The run, for a run.
    run: Option<usize>,
}

/// Each row's segments, left to right, and the pixels per unit of run width.
fn layout(picture: &Picture) -> ([Vec<Segment>; 2], f64) {
    let units = |row: usize| -> f64 {
        picture
            .runs
            .iter()
            .filter(|r| r.row == row)
            .map(|r| run_units(r.bytes))
            .sum()
    };
    let per_unit = [units(0), units(1)]
        .iter()
        .filter(|u| **u > 0.0)
        .map(|u| STRIP * RUN_SHARE / u)
        .fold(MAX_PX_PER_UNIT, f64::min);
    let rows = [0, 1].map(|row| {
        let (first, last) = (picture.rows[row].first, picture.rows[row].last);
        let mut pieces: Vec<(u64, u128, Option<usize>)> = Vec::new();
        let mut at = u128::from(first);
        for (i, run) in picture
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.row == row)
        {
            if u128::from(run.va) > at {
                pieces.push((
                    u64::try_from(at).unwrap_or(u64::MAX),
                    u128::from(run.va),
                    None,
                ));
            }
            pieces.push((run.va, u128::from(run.last) + 1, Some(i)));
            at = u128::from(run.last) + 1;
        }
        if at <= u128::from(last) {
            pieces.push((
                u64::try_from(at).unwrap_or(u64::MAX),
                u128::from(last) + 1,
                None,
            ));
        }
        let run_px: f64 = pieces
            .iter()
            .filter_map(|p| p.2)
            .map(|i| run_units(picture.runs[i].bytes) * per_unit)
            .sum();
        let weights: f64 = pieces
            .iter()
            .filter(|p| p.2.is_none())
            .map(|p| gap_weight(p.1 - u128::from(p.0)))
            .sum();
        let gap_px = (STRIP - run_px).max(0.0);
        let mut x = MARGIN;
        pieces
            .iter()
            .map(|&(first, end, run)| {
                let w = match run {
                    Some(i) => run_units(picture.runs[i].bytes) * per_unit,
                    None if weights > 0.0 => gap_px * gap_weight(end - u128::from(first)) / weights,
                    None => 0.0,
                };
                let segment = Segment {
                    first,
                    end,
                    x,
                    w,
                    run,
                };
                x += w;
                segment
            })
            .collect()
    });
    (rows, per_unit)
}

/// The x of `va` on a row laid out as `segments`.
fn x_of(segments: &[Segment], va: u128) -> f64 {
    let at = segments.partition_point(|s| s.end <= va);
    segments.get(at).map_or(MARGIN + STRIP, |s| {
        let span = (s.end - u128::from(s.first)) as f64;
        let into = va.saturating_sub(u128::from(s.first)) as f64;
        s.x + s.w * (into / span).min(1.0)
    })
}

/// What one bar of a row draws: a run, or runs merged into one pixel.
struct Bar {
    runs: std::ops::Range<usize>,
    x: f64,
    w: f64,
}

/// The bars of a row: runs at least a pixel wide alone; neighbours thinner
/// than a pixel that share one pixel merged into one bar of a pixel.
fn bars(segments: &[Segment]) -> Vec<Bar> {
    let runs: Vec<&Segment> = segments.iter().filter(|s| s.run.is_some()).collect();
    let mut bars = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let first = runs[i];
        let start = first.run.unwrap_or(0);
        let mut j = i + 1;
        if first.w < 1.0 {
            while j < runs.len() && runs[j].w < 1.0 && runs[j].x + runs[j].w <= first.x + 1.0 {
                j += 1;
            }
        }
        let last = runs[j - 1];
        bars.push(Bar {
            runs: start..last.run.unwrap_or(0) + 1,
            x: first.x,
            w: (last.x + last.w - first.x).max(1.0),
        });
        i = j;
    }
    bars
}

/// A page size's bar height.
const fn bar_height(size: PageSize) -> f64 {
    match size {
        PageSize::Size4K => BAR * 0.5,
        PageSize::Size2M => BAR * 0.75,
        PageSize::Size1G => BAR,
    }
}

/// Bytes in binary units: `4 KiB`, `128 TiB`.
fn size_text(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut unit = 0;
    let mut value = bytes;
    while value >= 1024 && value.is_multiple_of(1024) && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    if value >= 1024 && unit + 1 < UNITS.len() {
        let shown = bytes as f64 / 1024_f64.powi(i32::try_from(unit + 1).unwrap_or(0));
        return format!("{shown:.1} {}", UNITS[unit + 1]);
    }
    format!("{value} {}", UNITS[unit])
}

/// Breaks `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// Breaks a list `a, b, c` into lines of at most `width` characters,
/// between its items where it can.
fn wrap_list(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let parts: Vec<&str> = text.split(", ").collect();
    for (i, part) in parts.iter().enumerate() {
        let item = if i + 1 < parts.len() {
            format!("{part},")
        } else {
            (*part).to_owned()
        };
        match lines.last_mut() {
            Some(line) if line.len() + 1 + item.len() <= width => {
                line.push(' ');
                line.push_str(&item);
            }
            _ => lines.extend(wrap(&item, width)),
        }
    }
    lines
}

/// The SVG, and how many runs were merged into another run's pixel.
fn draw(picture: &Picture) -> (String, usize) {
    let mut svg = Svg::new();
    let (rows, per_unit) = layout(picture);
    let mut y = 32.0;
    svg.text(MARGIN, y, "h1", &format!("ptwalk map: {}", picture.heading));
    y += 22.0;
    let leaves: u64 = picture
        .runs
        .iter()
        .map(|r| r.bytes / r.page_size.bytes())
        .sum();
    let mapped: u128 = picture.runs.iter().map(|r| u128::from(r.bytes)).sum();
    svg.text(
        MARGIN,
        y,
        "small",
        &format!(
            "{} runs of {leaves} leaves, {} mapped; hover over a run or an entry for its full values",
            picture.runs.len(),
            size_text(mapped)
        ),
    );
    y += 20.0;
    let mut merged = 0;
    let mut bar_count = 0;
    svg.open("g", &[("class", "address-space".to_owned())]);
    for (row, segments) in rows.iter().enumerate() {
        if row == 1 {
            y = draw_hole(&mut svg, picture, y);
        }
        let (bottom, row_merged, row_bars) = draw_row(&mut svg, picture, row, segments, y);
        y = bottom;
        merged += row_merged;
        bar_count += row_bars;
    }
    svg.close();
    y = draw_legend(&mut svg, picture, per_unit, merged, bar_count, y + 10.0);
    for (n, walk) in picture.walks.iter().enumerate() {
        y = draw_walk(&mut svg, walk, n + 1, y + 24.0);
    }
    (svg.finish(WIDTH, (y + 20.0).ceil(), STYLE, DEFS), merged)
}

fn draw_hole(svg: &mut Svg, picture: &Picture, y: f64) -> f64 {
    let (first, last, what) = &picture.hole;
    svg.open("g", &[("class", "hole-band".to_owned())]);
    svg.title(&format!(
        "{first:#018x}-{last:#018x} ({}): {what}",
        size_text(u128::from(*last) - u128::from(*first) + 1)
    ));
    svg.empty(
        "rect",
        &[
            ("class", "hole".to_owned()),
            ("x", num(MARGIN)),
            ("y", num(y)),
            ("width", num(STRIP)),
            ("height", "30".to_owned()),
        ],
    );
    svg.text(
        WIDTH / 2.0,
        y + 19.0,
        "center",
        &format!(
            "{first:#018x} - {last:#018x} ({}): {what}",
            size_text(u128::from(*last) - u128::from(*first) + 1)
        ),
    );
    svg.close();
    y + 30.0 + 16.0
}

/// Draws one range's row from `y`; returns where the next starts, the runs
/// merged and the bars drawn.
fn draw_row(
    svg: &mut Svg,
    picture: &Picture,
    row: usize,
    segments: &[Segment],
    mut y: f64,
) -> (f64, usize, usize) {
    let info = &picture.rows[row];
    y += 16.0;
    let span = u128::from(info.last) - u128::from(info.first) + 1;
    svg.text(
        MARGIN,
        y,
        "h2",
        &format!(
            "{}: {:#018x} - {:#018x} ({}){}",
            info.name,
            info.first,
            info.last,
            size_text(span),
            info.note
        ),
    );
    y += 8.0;
    let labels: Vec<&Label> = picture.labels.iter().filter(|l| l.row == row).collect();
    for (k, label) in labels.iter().enumerate() {
        let top = y + 16.0 * k as f64;
        let x0 = x_of(segments, u128::from(label.first));
        let x1 = x_of(segments, u128::from(label.last) + 1).max(x0 + 2.0);
        svg.open("g", &[("class", "region".to_owned())]);
        svg.title(&format!(
            "{:#018x}-{:#018x}: {}",
            label.first, label.last, label.text
        ));
        svg.empty(
            "path",
            &[
                ("class", "label-line".to_owned()),
                (
                    "d",
                    format!(
                        "M{} {}V{}H{}V{}",
                        num(x0),
                        num(top + 14.0),
                        num(top + 8.0),
                        num(x1),
                        num(top + 14.0)
                    ),
                ),
            ],
        );
        let (anchor, tx) = if x0 > WIDTH * 0.6 {
            ("label-text end", x1)
        } else {
            ("label-text", x0)
        };
        svg.text(tx, top + 5.0, anchor, &label.text);
        svg.close();
    }
    y += 16.0 * labels.len() as f64 + 4.0;
    let bar_top = y;
    svg.empty(
        "rect",
        &[
            ("class", "lane".to_owned()),
            ("x", num(MARGIN)),
            ("y", num(bar_top)),
            ("width", num(STRIP)),
            ("height", num(BAR)),
        ],
    );
    let bars = bars(segments);
    let mut merged = 0;
    for bar in &bars {
        let runs = &picture.runs[bar.runs.clone()];
        let Some(first) = runs.first() else { continue };
        let last = runs.last().unwrap_or(first);
        let size = runs
            .iter()
            .map(|r| r.page_size)
            .max()
            .unwrap_or(first.page_size);
        let user = runs.iter().any(|r| r.user);
        let h = bar_height(size);
        let (group, class, title) = if runs.len() == 1 {
            let attrs = [
                ("class", "run".to_owned()),
                ("data-va", format!("{:#x}", first.va)),
                ("data-last", format!("{:#x}", first.last)),
                ("data-pa", format!("{:#x}", first.pa)),
            ];
            svg.open("g", &attrs);
            ("run", first.class, first.line.clone())
        } else {
            merged += runs.len() - 1;
            let class = if runs.iter().any(|r| r.class == Class::WritableExecutable) {
                Class::WritableExecutable
            } else {
                let mut bytes = [0_u128; 4];
                for r in runs {
                    bytes[r.class as usize] += u128::from(r.bytes);
                }
                Class::ALL
                    .into_iter()
                    .max_by_key(|c| bytes[*c as usize])
                    .unwrap_or(Class::ReadOnly)
            };
            let mut title = format!(
                "{} runs merged, each thinner than a pixel: {:#018x}-{:#018x}",
                runs.len(),
                first.va,
                last.last
            );
            for c in Class::ALL {
                let n = runs.iter().filter(|r| r.class == c).count();
                if n > 0 {
                    let _ = write!(title, "; {n} {}", c.words());
                }
            }
            if user {
                let _ = write!(
                    title,
                    "; {} user-accessible",
                    runs.iter().filter(|r| r.user).count()
                );
            }
            let attrs = [
                ("class", "merged-runs".to_owned()),
                ("data-runs", runs.len().to_string()),
                ("data-va", format!("{:#x}", first.va)),
                ("data-last", format!("{:#x}", last.last)),
            ];
            svg.open("g", &attrs);
            ("merged", class, title)
        };
        svg.title(&title);
        let style = if group == "run" && bar.w >= 3.0 {
            format!("bar {}", class.css())
        } else {
            format!("merged {}", class.css())
        };
        svg.empty(
            "rect",
            &[
                ("class", style),
                ("x", num(bar.x)),
                ("y", num(bar_top + BAR - h)),
                ("width", num(bar.w)),
                ("height", num(h)),
            ],
        );
        if user {
            svg.empty(
                "rect",
                &[
                    ("class", "user".to_owned()),
                    ("x", num(bar.x)),
                    ("y", num(bar_top + BAR + 2.0)),
                    ("width", num(bar.w)),
                    ("height", num(USER_STRIP)),
                ],
            );
        }
        svg.close();
    }
    // Where each walked address falls.
    for (n, walk) in picture.walks.iter().enumerate() {
        if (info.first..=info.last).contains(&walk.va) {
            let x = x_of(segments, u128::from(walk.va));
            svg.open("g", &[("class", "pin".to_owned())]);
            svg.title(&format!("walk {}: {:#x}", n + 1, walk.va));
            svg.empty(
                "line",
                &[
                    ("class", "pin-line".to_owned()),
                    ("x1", num(x)),
                    ("y1", num(bar_top - 4.0)),
                    ("x2", num(x)),
                    ("y2", num(bar_top + BAR + 2.0)),
                ],
            );
            svg.text(x + 3.0, bar_top + 9.0, "small", &format!("walk {}", n + 1));
            svg.close();
        }
    }
    y = bar_top + BAR + 2.0 + USER_STRIP + 12.0;
    svg.text(MARGIN, y, "addr", &format!("{:#018x}", info.first));
    svg.text(
        MARGIN + STRIP,
        y,
        "addr end",
        &format!("{:#018x}", info.last),
    );
    if bars.len() <= ADDRESS_LABELS && !bars.is_empty() {
        // Each bar's first address, written downwards under it.
        let mut next_free = f64::MIN;
        for bar in &bars {
            let x = (bar.x + bar.w / 2.0).max(next_free);
            let va = picture.runs[bar.runs.start].va;
            svg.with_text(
                "text",
                &[
                    ("class", "addr".to_owned()),
                    (
                        "transform",
                        format!("translate({} {}) rotate(90)", num(x - 3.0), num(y + 6.0)),
                    ),
                ],
                &format!("{va:016x}"),
            );
            next_free = x + 11.0;
        }
        y += 6.0 + 92.0;
    }
    (y + 8.0, merged, bars.len())
}

fn draw_legend(
    svg: &mut Svg,
    picture: &Picture,
    per_unit: f64,
    merged: usize,
    bars: usize,
    mut y: f64,
) -> f64 {
    svg.open("g", &[("class", "legend".to_owned())]);
    y += 16.0;
    svg.text(MARGIN, y, "h2", "Legend");
    y += 10.0;
    let mut x = MARGIN;
    for class in Class::ALL {
        let n = picture.runs.iter().filter(|r| r.class == class).count();
        svg.empty(
            "rect",
            &[
                ("class", class.css().to_owned()),
                ("x", num(x)),
                ("y", num(y)),
                ("width", "16".to_owned()),
                ("height", "12".to_owned()),
            ],
        );
        let text = format!("{} ({n} runs)", class.words());
        svg.text(x + 22.0, y + 10.5, "", &text);
        let advance = 22.0 + 7.2 * text.len() as f64 + 20.0;
        x += advance;
    }
    y += 22.0;
    x = MARGIN;
    for (size, name) in [
        (PageSize::Size4K, "4 KiB pages"),
        (PageSize::Size2M, "2 MiB pages"),
        (PageSize::Size1G, "1 GiB pages"),
    ] {
        let h = bar_height(size) / 2.0;
        svg.empty(
            "rect",
            &[
                ("class", "ro".to_owned()),
                ("x", num(x)),
                ("y", num(y + 20.0 - h)),
                ("width", "16".to_owned()),
                ("height", num(h)),
            ],
        );
        svg.text(x + 22.0, y + 18.0, "", name);
        x += 130.0;
    }
    svg.empty(
        "rect",
        &[
            ("class", "user".to_owned()),
            ("x", num(x)),
            ("y", num(y + 14.0)),
            ("width", "16".to_owned()),
            ("height", num(USER_STRIP)),
        ],
    );
    svg.text(
        x + 22.0,
        y + 18.0,
        "",
        "strip under a run: user-accessible (x86-64: U/S at every level; ARM64: EL0 access); none: kernel only",
    );
    y += 42.0;
    let lines = [
        format!(
            "Scale: not linear. Bar height is the page size. A run is 1 + log2(its 4 KiB pages)/4 units wide, {} px per unit here (a 4 KiB run {} px, a 2 MiB run {} px, a 1 GiB run {} px);",
            num(per_unit),
            num(per_unit * run_units(4096)),
            num(per_unit * run_units(2 << 20)),
            num(per_unit * run_units(1 << 30)),
        ),
        "the gaps between runs share the rest of each row, each by 1 + log2(its 4 KiB pages), so huge unmapped stretches are compressed. The hole between the ranges is not to scale.".to_owned(),
        if merged == 0 {
            format!("Every run is its own bar ({bars} bars): none is thinner than a pixel.")
        } else {
            format!(
                "{merged} runs thinner than a pixel are merged with their neighbours in the same pixel: {bars} bars in all; a merged bar is a pixel wide, coloured writable+executable if any run in it is, else by the access of most of its bytes, and its tooltip counts its runs."
            )
        },
        format!(
            "Runs are those `ptwalk dump` enumerates (x86-64: its leaves merged where virtually and physically contiguous with equal attributes). Colour: the effective access of every level{}.",
            if picture.rows[0].name.starts_with("TTBR") {
                " (ARM64: writable or executable at EL1 or EL0)"
            } else {
                ""
            }
        ),
    ];
    for line in lines {
        svg.text(MARGIN, y, "small", &line);
        y += 15.0;
    }
    if picture.skipped > 0 {
        svg.text(
            MARGIN,
            y,
            "small",
            &format!(
                "{} {} the CPU would fault on passed over, as `ptwalk dump` does (it names them on stderr).",
                picture.skipped,
                if picture.skipped == 1 { "entry" } else { "entries" }
            ),
        );
        y += 15.0;
    }
    if picture.missing > 0 {
        svg.text(
            MARGIN,
            y,
            "small",
            &format!(
                "{} page-table reads failed: tables missing from the image; what they map is not drawn.",
                picture.missing
            ),
        );
        y += 15.0;
    }
    let wx: Vec<&MapRun> = picture
        .runs
        .iter()
        .filter(|r| r.class == Class::WritableExecutable)
        .collect();
    if !wx.is_empty() {
        svg.text(
            MARGIN,
            y,
            "small",
            &format!(
                "{} writable+executable run(s), which HVCI forbids; the first: {}",
                wx.len(),
                wx.iter()
                    .take(4)
                    .map(|r| format!("{:#x}", r.va))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        y += 15.0;
    }
    svg.close();
    y
}

/// One box of a walk: `lines` of text, the first bold, at (`x`, `y`).
fn draw_box(svg: &mut Svg, class: &str, (x, y, w, h): (f64, f64, f64, f64), lines: &[String]) {
    svg.empty(
        "rect",
        &[
            ("class", class.to_owned()),
            ("x", num(x)),
            ("y", num(y)),
            ("width", num(w)),
            ("height", num(h)),
            ("rx", "4".to_owned()),
        ],
    );
    for (i, line) in lines.iter().enumerate() {
        let class = if i == 0 { "h2 center" } else { "mono center" };
        let ty = y + 18.0 + 15.0 * i as f64 + if i > 0 { 3.0 } else { 0.0 };
        svg.text(x + w / 2.0, ty, class, line);
    }
}

/// One box of a walk: its group's attributes, its tooltip, its style and its lines.
type WalkBox<'a> = (Vec<(&'a str, String)>, String, &'a str, Vec<String>);

fn draw_walk(svg: &mut Svg, walk: &WalkPicture, n: usize, mut y: f64) -> f64 {
    let outcome = &walk.outcome;
    svg.open(
        "g",
        &[
            ("class", "walk".to_owned()),
            ("data-va", format!("{:#x}", walk.va)),
        ],
    );
    let result = match (outcome.pa, &outcome.stopped_at) {
        (Some(pa), _) => format!("-> {pa:#x}"),
        (None, Some(level)) => format!("does not translate: stops at {level}"),
        (None, None) => "does not translate".to_owned(),
    };
    svg.text(
        MARGIN,
        y,
        "h2",
        &format!("Walk {n}: {:#018x} {result}", walk.va),
    );
    y += 10.0;
    // The address split into its fields, each as wide as its bits.
    let per_bit = STRIP / 64.0;
    for field in &walk.fields {
        let bits = field.high - field.low + 1;
        let x = MARGIN + per_bit * f64::from(63 - field.high);
        let w = per_bit * f64::from(bits);
        let value = (walk.va >> field.low) & (u64::MAX >> (64 - bits));
        svg.open(
            "g",
            &[
                ("class", "index-field".to_owned()),
                ("data-high", field.high.to_string()),
                ("data-low", field.low.to_string()),
                ("data-value", format!("{value:#x}")),
            ],
        );
        svg.title(&format!(
            "bits {}:{} of {:#018x} = {value:#x}: {}",
            field.high, field.low, walk.va, field.name
        ));
        svg.empty(
            "rect",
            &[
                ("class", "box-field".to_owned()),
                ("x", num(x)),
                ("y", num(y)),
                ("width", num(w)),
                ("height", "44".to_owned()),
            ],
        );
        svg.text(
            x + w / 2.0,
            y + 14.0,
            "small center",
            &format!("bits {}:{}", field.high, field.low),
        );
        let name_lines = wrap(&field.name, (w / 6.5).max(4.0) as usize);
        for (i, line) in name_lines.iter().take(2).enumerate() {
            let ty = y + 28.0 + 12.0 * i as f64;
            svg.text(x + w / 2.0, ty, "mono center", line);
        }
        svg.close();
    }
    y += 56.0;
    // Register -> each entry -> the frame or the fault: each box's group
    // attributes, tooltip, style and lines, then drawn alike.
    let mut boxes: Vec<WalkBox> = Vec::new();
    let (name, value) = &walk.register;
    boxes.push((
        vec![
            ("class", "register".to_owned()),
            ("data-name", name.clone()),
            ("data-value", format!("{value:#x}")),
        ],
        format!("{name} = {value:#x}: the top-level table's physical address"),
        "box-register",
        vec![
            name.clone(),
            format!("{value:#x}"),
            "top-level table".to_owned(),
        ],
    ));
    for (i, entry) in walk.entries.iter().enumerate() {
        let mut lines = vec![
            entry.table.clone(),
            format!("{} [{:#x}]", entry.level, entry.index),
            format!("at phys {:#x}", entry.entry_addr),
            format!("{:#018x}", entry.value),
        ];
        lines.extend(wrap_list(&entry.flags, 26));
        let stopped = outcome.pa.is_none()
            && i + 1 == walk.entries.len()
            && outcome.stopped_at.as_deref() == Some(entry.level.as_str());
        boxes.push((
            vec![
                ("class", "entry".to_owned()),
                ("data-level", entry.level.clone()),
                ("data-index", format!("{:#x}", entry.index)),
                ("data-entry-addr", format!("{:#x}", entry.entry_addr)),
                ("data-value", format!("{:#x}", entry.value)),
            ],
            entry.line.clone(),
            if stopped { "box-fault" } else { "box-entry" },
            lines,
        ));
    }
    let mut attrs = vec![("class", "outcome".to_owned())];
    if let Some(pa) = outcome.pa {
        attrs.push(("data-pa", format!("{pa:#x}")));
    }
    if let Some(error) = &outcome.error {
        attrs.push(("data-error", error.clone()));
    }
    let mut lines = Vec::new();
    if let (Some(pa), Some(size)) = (outcome.pa, outcome.page_size) {
        let frame = pa & !(size.bytes() - 1);
        lines.push(format!("{size} frame"));
        lines.push(format!("{frame:#x}"));
        lines.push(format!("+ offset {:#x}", pa - frame));
        lines.push(format!("= {pa:#x}"));
    } else {
        lines.push(
            outcome
                .stopped_at
                .as_ref()
                .map_or_else(|| "fault".to_owned(), |level| format!("fault at {level}")),
        );
        lines.push(outcome.error.clone().unwrap_or_default());
    }
    lines.extend(wrap_list(&outcome.summary, 26));
    let class = if outcome.pa.is_some() {
        "box-frame"
    } else {
        "box-fault"
    };
    boxes.push((attrs, outcome.summary.clone(), class, lines));

    let gap = 24.0;
    let count = boxes.len() as f64;
    let w = ((STRIP - gap * (count - 1.0)) / count).min(190.0);
    let most = boxes.iter().map(|b| b.3.len()).max().unwrap_or(1);
    let h = 15.0f64.mul_add(most as f64, 14.0);
    let mut x = MARGIN;
    for (i, (attrs, title, class, lines)) in boxes.iter().enumerate() {
        if i > 0 {
            svg.empty(
                "path",
                &[
                    ("class", "arrow".to_owned()),
                    (
                        "d",
                        format!(
                            "M{} {}h{}v-5l8 8l-8 8v-5h-{}z",
                            num(x - gap + 3.0),
                            num(y + h / 2.0 - 3.0),
                            num(gap - 14.0),
                            num(gap - 14.0)
                        ),
                    ),
                ],
            );
        }
        svg.open("g", attrs);
        svg.title(title);
        draw_box(svg, class, (x, y, w, h), lines);
        svg.close();
        x += w + gap;
    }
    svg.close();
    y + h + 8.0
}
