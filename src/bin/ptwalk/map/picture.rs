//! What `ptwalk map` draws, found in the capture before drawing: the rows,
//! the runs coloured by access, the labels and each walk.

use vmwalk::walker::PageSize;

/// Everything drawn, found before drawing.
pub(super) struct Picture {
    pub(super) heading: String,
    /// The lower range, then the upper.
    pub(super) rows: [Row; 2],
    /// The addresses between the rows, and what the CPU does with them.
    pub(super) hole: (u64, u64, String),
    /// Every run, in address order (lower range first).
    pub(super) runs: Vec<MapRun>,
    pub(super) labels: Vec<Label>,
    pub(super) walks: Vec<WalkPicture>,
    /// Entries the CPU would fault on, passed over as `dump` does.
    pub(super) skipped: usize,
    /// Reads of tables the image does not hold.
    pub(super) missing: usize,
}

/// One address range: a row of the picture.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) first: u64,
    pub(super) last: u64,
    /// Said after the name (an ARM64 range whose walks are disabled).
    pub(super) note: String,
}

/// How a run may be accessed, as its colour says.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Class {
    ReadOnly,
    Writable,
    Executable,
    WritableExecutable,
}

impl Class {
    pub(super) const ALL: [Self; 4] = [
        Self::ReadOnly,
        Self::Writable,
        Self::Executable,
        Self::WritableExecutable,
    ];

    pub(super) const fn of(writable: bool, executable: bool) -> Self {
        match (writable, executable) {
            (false, false) => Self::ReadOnly,
            (true, false) => Self::Writable,
            (false, true) => Self::Executable,
            (true, true) => Self::WritableExecutable,
        }
    }

    pub(super) const fn css(self) -> &'static str {
        match self {
            Self::ReadOnly => "ro",
            Self::Writable => "rw",
            Self::Executable => "rx",
            Self::WritableExecutable => "wx",
        }
    }

    pub(super) const fn words(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Writable => "writable",
            Self::Executable => "executable",
            Self::WritableExecutable => "writable+executable (HVCI forbids it)",
        }
    }
}

/// A run of `dump`'s enumeration, as drawn.
pub(super) struct MapRun {
    pub(super) va: u64,
    pub(super) last: u64,
    pub(super) pa: u64,
    pub(super) bytes: u64,
    pub(super) page_size: PageSize,
    pub(super) class: Class,
    pub(super) user: bool,
    /// 0: the lower range; 1: the upper.
    pub(super) row: usize,
    /// Its full values: the tooltip.
    pub(super) line: String,
}

/// A named region above a row.
pub(super) struct Label {
    pub(super) row: usize,
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) text: String,
}

/// One `--address`: its index fields, the base register, each entry read,
/// and where the walk ends.
pub(super) struct WalkPicture {
    pub(super) va: u64,
    pub(super) fields: Vec<Field>,
    pub(super) register: (String, u64),
    pub(super) entries: Vec<EntryBox>,
    pub(super) outcome: Outcome,
}

/// Bits `high..=low` of the address, and what they select.
pub(super) struct Field {
    pub(super) high: u32,
    pub(super) low: u32,
    pub(super) name: String,
}

/// One entry a walk read.
pub(super) struct EntryBox {
    /// `PML4` or `level 0 table`.
    pub(super) table: String,
    /// `PML4E` or `level 0`.
    pub(super) level: String,
    pub(super) index: u64,
    pub(super) entry_addr: u64,
    pub(super) value: u64,
    /// The flags (or descriptor kind) `--explain` names.
    pub(super) flags: String,
    /// `--explain`'s line for it.
    pub(super) line: String,
}

/// Where a walk ended.
pub(super) struct Outcome {
    pub(super) pa: Option<u64>,
    pub(super) page_size: Option<PageSize>,
    /// `--json`'s error kind.
    pub(super) error: Option<String>,
    /// The level whose entry stopped it.
    pub(super) stopped_at: Option<String>,
    /// `--explain`'s last line, without `=> `.
    pub(super) summary: String,
}
