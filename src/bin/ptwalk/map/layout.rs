//! Where each run goes: a row's scale, on which a run's width grows with
//! the log of its size and gaps share what runs leave, and the text sizes.

use vmwalk::walker::PageSize;

use super::picture::Picture;

/// The picture's width, and the margin on each side.
pub(super) const WIDTH: f64 = 1400.0;
pub(super) const MARGIN: f64 = 20.0;
pub(super) const STRIP: f64 = WIDTH - 2.0 * MARGIN;
/// Pixels per unit of run width at most (a 4 KiB run is one unit).
const MAX_PX_PER_UNIT: f64 = 40.0;
/// The share of a row's width runs take at most; gaps share the rest.
const RUN_SHARE: f64 = 0.8;
/// A row's bar: its height (a 1 GiB run's), and the user-access strip below.
pub(super) const BAR: f64 = 40.0;
pub(super) const USER_STRIP: f64 = 6.0;
/// Rows with at most this many bars get each run's address written under it.
pub(super) const ADDRESS_LABELS: usize = 60;

/// A run's width in units: 1 for a 4 KiB run, growing with the log of its size.
pub(super) fn run_units(bytes: u64) -> f64 {
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
pub(super) struct Segment {
    pub(super) first: u64,
    /// One past its last byte (2^64 for the top).
    pub(super) end: u128,
    pub(super) x: f64,
    pub(super) w: f64,
    /// The run, for a run.
    pub(super) run: Option<usize>,
}

/// Each row's segments, left to right, and the pixels per unit of run width.
pub(super) fn layout(picture: &Picture) -> ([Vec<Segment>; 2], f64) {
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
#[allow(
    clippy::cast_precision_loss,
    clippy::suboptimal_flops,
    reason = "a pixel coordinate: its place in the segment, approximately"
)]
pub(super) fn x_of(segments: &[Segment], va: u128) -> f64 {
    let at = segments.partition_point(|s| s.end <= va);
    segments.get(at).map_or(MARGIN + STRIP, |s| {
        let span = (s.end - u128::from(s.first)) as f64;
        let into = va.saturating_sub(u128::from(s.first)) as f64;
        s.x + s.w * (into / span).min(1.0)
    })
}

/// What one bar of a row draws: a run, or runs merged into one pixel.
pub(super) struct Bar {
    pub(super) runs: std::ops::Range<usize>,
    pub(super) x: f64,
    pub(super) w: f64,
}

/// The bars of a row: runs at least a pixel wide alone; neighbours thinner
/// than a pixel that share one pixel merged into one bar of a pixel.
pub(super) fn bars(segments: &[Segment]) -> Vec<Bar> {
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
pub(super) const fn bar_height(size: PageSize) -> f64 {
    match size {
        PageSize::Size4K => BAR * 0.5,
        PageSize::Size2M => BAR * 0.75,
        PageSize::Size1G => BAR,
    }
}

/// Bytes in binary units: `4 KiB`, `128 TiB`.
#[allow(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
pub(super) fn size_text(bytes: u128) -> String {
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
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
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
pub(super) fn wrap_list(text: &str, width: usize) -> Vec<String> {
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
