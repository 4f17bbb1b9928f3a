//! What `translate` found for one address, on either architecture: a typed
//! [`AddressReport`] built from the walker's result, which `render.rs` prints
//! as text, `--explain` or `--json`. Its serde form is `--json`'s one schema
//! for both architectures (docs/walker.md, "`ptwalk translate --json`").

use std::fmt;

use serde::{Serialize, Serializer};
use vmwalk::walker::{
    self, Architecture, Fault, Leaf as _, OutsideImage, PageSize, Translation, aarch64,
};

/// An x86-64 walk's result.
pub type X86Walk = Result<walker::x86_64::Translation, walker::x86_64::Fault<OutsideImage>>;

/// An ARM64 walk's result.
pub type Aarch64Walk = Result<aarch64::Translation, aarch64::Fault<OutsideImage>>;

/// The walker's own result, which `--explain` words.
#[derive(Clone, Copy)]
pub enum Walk {
    X86(X86Walk),
    Aarch64(Aarch64Walk),
}

/// One address: where it leads, or why it does not translate, and every
/// entry its walk read. Fields in `--json`'s order.
#[derive(Serialize)]
pub struct AddressReport {
    /// The address asked for.
    pub va: Hex,
    pub arch: Arch,
    /// `None`: it does not translate (`error` says why).
    pub pa: Option<Hex>,
    pub page_size: Option<Shown<PageSize>>,
    /// The page's permissions and attributes, named per architecture.
    pub mapping: Option<MappingReport>,
    /// The entries read, top level first; with a fault, the one that stopped
    /// the walk last (a failed read is not in it).
    pub path: Vec<PathEntry>,
    pub error: Option<ErrorReport>,
    #[serde(skip)]
    pub walk: Walk,
}

/// `"x86_64"` or `"aarch64"`, as `--arch` names them.
#[derive(Clone, Copy, Serialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "aarch64")]
    Aarch64,
}

/// A translated page's permissions and attributes: `arch` says which.
#[derive(Serialize)]
#[serde(untagged)]
pub enum MappingReport {
    X86(X86Mapping),
    Aarch64(Aarch64Mapping),
}

/// An x86-64 page: the effective access of all levels, and the leaf's bits.
#[derive(Serialize)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one field per bit of the --json schema"
)]
pub struct X86Mapping {
    pub writable: bool,
    pub user: bool,
    pub executable: bool,
    pub global: bool,
    pub dirty: bool,
    pub accessed: bool,
    pub pat_index: u8,
}

/// An ARM64 page or block: its range, the effective access at EL1 and EL0,
/// and the leaf's attributes.
#[derive(Serialize)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one field per bit of the --json schema"
)]
pub struct Aarch64Mapping {
    /// `TTBR0_EL1` or `TTBR1_EL1`.
    pub range: Shown<aarch64::VaRange>,
    pub el1_write: bool,
    pub el0_read: bool,
    pub el0_write: bool,
    pub el1_execute: bool,
    pub el0_execute: bool,
    pub attr_index: u8,
    pub global: bool,
    pub accessed: bool,
}

/// One entry (x86-64) or descriptor (ARM64) a walk read.
#[derive(Serialize)]
pub struct PathEntry {
    pub level: EntryLevel,
    /// Its physical address.
    pub entry_addr: Hex,
    /// Its value.
    pub value: Hex,
}

/// A level, in its architecture's words: `PML4E` ... `PTE` (Intel's entry
/// names) or `level 0` ... `level 3` (Arm's).
#[derive(Clone, Copy)]
pub enum EntryLevel {
    X86(walker::Level),
    Aarch64(aarch64::Level),
}

impl fmt::Display for EntryLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X86(level) => level.fmt(f),
            Self::Aarch64(level) => level.fmt(f),
        }
    }
}

impl Serialize for EntryLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why an address does not translate.
#[derive(Serialize)]
pub struct ErrorReport {
    pub kind: ErrorKind,
    /// The level of the entry that stopped the walk (or could not be read);
    /// `None` when the address stopped it before any entry.
    pub level: Option<EntryLevel>,
    /// The walker's sentence.
    pub reason: String,
}

/// Why, as one name for both architectures where the CPUs mean the same.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Outside the address space: x86-64 non-canonical, ARM64 outside both ranges.
    NonCanonical,
    /// ARM64: `TCR_EL1.EPDx` (or a TTBR not given) disables the range's walks.
    WalksDisabled,
    /// x86-64 P clear, ARM64 an invalid descriptor (bit 0 clear).
    NotPresent,
    /// x86-64: a reserved bit is set (a page fault with RSVD).
    ReservedBit,
    /// ARM64: a reserved descriptor encoding (a level 0 block, 0b01 at level 3).
    ReservedEncoding,
    /// ARM64: a table, block or page address beyond the output address size.
    AddressSize,
    /// The image does not hold the entry.
    ReadFailed,
}

impl AddressReport {
    /// The report of x86-64's walk of `va`.
    pub fn x86(va: u64, walk: X86Walk) -> Self {
        use walker::FaultKind as K;
        let error = walk.as_ref().err().map(|fault| {
            let (kind, level) = match fault.kind {
                K::NonCanonical { .. } => (ErrorKind::NonCanonical, None),
                K::NotPresent { level, .. } => (ErrorKind::NotPresent, Some(level)),
                K::ReservedBit { level, .. } => (ErrorKind::ReservedBit, Some(level)),
                K::ReadFailed { level, .. } => (ErrorKind::ReadFailed, Some(level)),
            };
            ErrorReport::new(kind, level.map(EntryLevel::X86), &fault.kind)
        });
        let mapping = walk.as_ref().ok().map(|t| {
            let m = &t.mapping;
            MappingReport::X86(X86Mapping {
                writable: m.access.writable,
                user: m.access.user,
                executable: m.access.executable,
                global: m.global(),
                dirty: m.dirty(),
                accessed: m.accessed(),
                pat_index: m.memory_type().pat_index(),
            })
        });
        let (pa, page_size, path) = walked(&walk, EntryLevel::X86, |entry| entry.0);
        Self {
            va: Hex(va),
            arch: Arch::X86_64,
            pa,
            page_size,
            mapping,
            path,
            error,
            walk: Walk::X86(walk),
        }
    }

    /// The report of ARM64's walk of `va`.
    pub fn aarch64(va: u64, walk: Aarch64Walk) -> Self {
        use aarch64::FaultKind as K;
        let error = walk.as_ref().err().map(|fault| {
            let (kind, level) = match fault.kind {
                K::OutsideRanges { .. } => (ErrorKind::NonCanonical, None),
                K::WalksDisabled { .. } => (ErrorKind::WalksDisabled, None),
                K::TableBaseBeyondPaSize { .. } => (ErrorKind::AddressSize, None),
                K::Invalid { level, .. } => (ErrorKind::NotPresent, Some(level)),
                K::Reserved { level, .. } => (ErrorKind::ReservedEncoding, Some(level)),
                K::AddressSize { level, .. } => (ErrorKind::AddressSize, Some(level)),
                K::ReadFailed { level, .. } => (ErrorKind::ReadFailed, Some(level)),
            };
            ErrorReport::new(kind, level.map(EntryLevel::Aarch64), &fault.kind)
        });
        let mapping = walk.as_ref().ok().map(|t| {
            let (m, a) = (&t.mapping, t.mapping.access);
            MappingReport::Aarch64(Aarch64Mapping {
                range: Shown(m.range),
                el1_write: a.privileged_write,
                el0_read: a.unprivileged_read,
                el0_write: a.unprivileged_write,
                el1_execute: a.privileged_execute,
                el0_execute: a.unprivileged_execute,
                attr_index: m.attr_index(),
                global: m.global(),
                accessed: m.accessed(),
            })
        });
        let (pa, page_size, path) = walked(&walk, EntryLevel::Aarch64, |entry| entry.0);
        Self {
            va: Hex(va),
            arch: Arch::Aarch64,
            pa,
            page_size,
            mapping,
            path,
            error,
            walk: Walk::Aarch64(walk),
        }
    }

    /// Whether the walk stopped at an entry the image does not hold.
    pub fn read_failed(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|error| error.kind == ErrorKind::ReadFailed)
    }
}

impl ErrorReport {
    fn new(kind: ErrorKind, level: Option<EntryLevel>, reason: &impl fmt::Display) -> Self {
        Self {
            kind,
            level,
            reason: reason.to_string(),
        }
    }
}

/// What a report holds alike on every architecture: the physical address
/// and page size of a translation, and every entry the walk read.
fn walked<A: Architecture>(
    walk: &Result<Translation<A>, Fault<A, OutsideImage>>,
    level: fn(A::Level) -> EntryLevel,
    raw: fn(A::Entry) -> u64,
) -> (Option<Hex>, Option<Shown<PageSize>>, Vec<PathEntry>) {
    let path = match walk {
        Ok(t) => t.path,
        Err(fault) => fault.path,
    };
    let translation = walk.as_ref().ok();
    (
        translation.map(|t| Hex(t.pa.0)),
        translation.map(|t| Shown(t.mapping.size())),
        path.iter()
            .map(|visited| PathEntry {
                level: level(visited.level),
                entry_addr: Hex(visited.addr.0),
                value: Hex(raw(visited.entry)),
            })
            .collect(),
    )
}

/// A number, as a JSON string of `0x` and lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex(pub u64);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:#x}", self.0))
    }
}

/// A value, as a JSON string of its `Display` text (`4K`, `TTBR1_EL1`).
#[derive(Clone, Copy)]
pub struct Shown<T>(pub T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}
