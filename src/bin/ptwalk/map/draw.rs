//! The SVG: the heading, each row's bars and labels, the hole between the
//! rows, the legend and each walk, top to bottom.

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

use vmwalk::walker::PageSize;

use super::layout::{
    ADDRESS_LABELS, BAR, MARGIN, STRIP, Segment, USER_STRIP, WIDTH, bar_height, bars, layout,
    run_units, size_text, wrap, wrap_list, x_of,
};
use super::picture::{Class, Label, MapRun, Picture, WalkPicture};
use crate::svg::{Svg, num};

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

/// The SVG, and how many runs were merged into another run's pixel.
pub(super) fn draw(picture: &Picture) -> (String, usize) {
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
