//! What Windows keeps in a non-present x64 entry (`_MMPTE` software formats),
//! decoded as `WinDbg`'s `!pte` prints it.
//!
//! Informational only: to the CPU the entry is simply not present. Field
//! positions (Windows 10 1803 to Windows 11, public `_MMPTE_*` type dumps):
//! `SwizzleBit` 4, `Protection` 9:5, `Prototype` 10, `Transition` 11,
//! `PageFileLow` 15:12, transition `PageFrameNumber` 47:12, `PageFileHigh`
//! 63:32, `ProtoAddress` 63:16 (sign-extended).
//!
//! Since the L1TF mitigation (Windows 10 1803) Windows sets the highest
//! implemented physical-address bit in a non-present entry, so that a
//! speculative load through it reaches no RAM, and clears `SwizzleBit` to say
//! it did (the kernel's `MiSwizzleInvalidPte`). [`InvalidPteMask`] removes it
//! again, only where `SwizzleBit` is clear, before the transition frame and
//! the page-file offset are read, as `WinDbg` and `MemProcFS` do.

use core::fmt;

use super::entry::PageTableEntry;

/// `_MMPTE_SOFTWARE.SwizzleBit`: set when Windows did *not* apply the mask.
pub(super) const SWIZZLE_BIT: u64 = 1 << 4;
pub(super) const PROTOTYPE: u64 = 1 << 10;
pub(super) const TRANSITION: u64 = 1 << 11;
/// Bits 11:0: valid, swizzle, protection, prototype, transition, and the
/// low flags. All clear in a non-zero entry is what `!pte` calls freed.
const LOW_BITS: u64 = 0xfff;

/// The bits Windows sets in non-present entries against L1TF
/// (`nt!MiState.Hardware.InvalidPteMask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidPteMask(pub u64);

impl InvalidPteMask {
    /// No mask: Windows before 10 1803, or a processor Windows does not mitigate.
    pub const NONE: Self = Self(0);

    /// What Windows computes at boot: the highest implemented physical-address
    /// bit, `1 << (MAXPHYADDR - 1)` (bit 45 on the common MAXPHYADDR 46).
    /// [`Self::NONE`] for a MAXPHYADDR outside 1..=52.
    ///
    /// ```
    /// use vmwalk::walker::software_pte::InvalidPteMask;
    /// assert_eq!(InvalidPteMask::for_max_phys_bits(46).0, 1 << 45);
    /// ```
    #[must_use]
    pub const fn for_max_phys_bits(max_phys_bits: u32) -> Self {
        if max_phys_bits == 0 || max_phys_bits > 52 {
            Self::NONE
        } else {
            Self(1 << (max_phys_bits - 1))
        }
    }

    /// `raw` as it was before Windows swizzled it.
    #[must_use]
    pub const fn unswizzle(self, raw: u64) -> u64 {
        if raw & SWIZZLE_BIT == 0 {
            raw & !self.0
        } else {
            raw
        }
    }
}

/// A non-present entry as Windows' memory manager reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftwarePte {
    /// All zero (or only the swizzle mask): nothing here.
    Zero,
    /// Points to a prototype PTE (shared section memory) at this address.
    Prototype {
        /// Virtual address of the prototype PTE.
        proto_address: u64,
    },
    /// The page is still in physical memory, on a standby or modified list.
    Transition {
        /// Page frame number of the page.
        pfn: u64,
        /// `MM_*` protection value.
        protection: Protection,
    },
    /// Bits 11:0 clear in a non-zero entry: `!pte` says `Page has been freed`.
    Freed,
    /// The page is in a paging file.
    PageFile {
        /// Which paging file (`PageFileLow`).
        file: u8,
        /// Offset in the paging file, in pages.
        offset: u64,
        /// `MM_*` protection value.
        protection: Protection,
    },
    /// Committed but never touched: a zeroed page is supplied on first access.
    DemandZero {
        /// `MM_*` protection value.
        protection: Protection,
    },
}

impl SoftwarePte {
    /// Decodes a non-present entry, removing `mask` where Windows applied it;
    /// `None` when the entry is present.
    ///
    /// ```
    /// use vmwalk::walker::PageTableEntry;
    /// use vmwalk::walker::software_pte::{InvalidPteMask, SoftwarePte};
    /// // A swizzled transition entry: WinDbg prints `Transition: 891F`.
    /// let pte = SoftwarePte::decode(
    ///     PageTableEntry(0x0000_2000_0891_F860),
    ///     InvalidPteMask::for_max_phys_bits(46),
    /// );
    /// assert!(matches!(pte, Some(SoftwarePte::Transition { pfn: 0x891f, .. })));
    /// ```
    #[must_use]
    pub const fn decode(entry: PageTableEntry, mask: InvalidPteMask) -> Option<Self> {
        if entry.is_present() {
            return None;
        }
        let raw = entry.0;
        let unswizzled = mask.unswizzle(raw);
        let protection = Protection(((raw >> 5) & 0x1f) as u8);
        Some(if unswizzled == 0 {
            Self::Zero
        } else if raw & PROTOTYPE != 0 {
            // An address, not a frame: never swizzled.
            Self::Prototype {
                proto_address: (raw.cast_signed() >> 16).cast_unsigned(),
            }
        } else if raw & TRANSITION != 0 {
            Self::Transition {
                pfn: (unswizzled >> 12) & ((1 << 36) - 1),
                protection,
            }
        } else if raw & LOW_BITS == 0 {
            Self::Freed
        } else if unswizzled >> 32 != 0 {
            Self::PageFile {
                file: ((raw >> 12) & 0xf) as u8,
                offset: unswizzled >> 32,
                protection,
            }
        } else {
            Self::DemandZero { protection }
        })
    }

    /// The lines `!pte` prints under `not valid`, joined by `separator`.
    #[must_use]
    pub const fn windbg_lines(self, separator: &str) -> WinDbgLines<'_> {
        WinDbgLines {
            pte: self,
            separator,
        }
    }
}

/// The `!pte` lines of a [`SoftwarePte`], as `WinDbg` words them.
#[derive(Clone, Copy, Debug)]
pub struct WinDbgLines<'a> {
    pte: SoftwarePte,
    separator: &'a str,
}

impl fmt::Display for WinDbgLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (0..self.pte.line_count()).try_for_each(|line| {
            if line > 0 {
                f.write_str(self.separator)?;
            }
            self.pte.write_line(f, line)
        })
    }
}

impl SoftwarePte {
    /// How many lines `!pte` prints under `not valid`.
    #[must_use]
    pub const fn line_count(self) -> usize {
        match self {
            Self::Zero => 0,
            Self::Prototype { .. } | Self::Freed => 1,
            Self::Transition { .. } | Self::DemandZero { .. } => 2,
            Self::PageFile { .. } => 3,
        }
    }

    /// Writes line `line` (from 0) of what `!pte` prints under `not valid`;
    /// nothing past [`Self::line_count`].
    ///
    /// # Errors
    /// When `f` fails.
    pub fn write_line(self, f: &mut impl fmt::Write, line: usize) -> fmt::Result {
        match (self, line) {
            (Self::Prototype { proto_address }, 0) => write!(f, "Proto: {proto_address:016X}"),
            (Self::Transition { pfn, .. }, 0) => write!(f, "Transition: {pfn:x}"),
            (Self::Freed, 0) => f.write_str("Page has been freed"),
            (Self::PageFile { file, .. }, 0) => write!(f, "PageFile: {file:2x}"),
            (Self::PageFile { offset, .. }, 1) => write!(f, "Offset: {offset:x}"),
            (Self::DemandZero { .. }, 0) => f.write_str("DemandZero"),
            (Self::Transition { protection, .. } | Self::DemandZero { protection }, 1)
            | (Self::PageFile { protection, .. }, 2) => write!(f, "{protection}"),
            _ => Ok(()),
        }
    }
}

/// An `MM_*` protection value (`_MMPTE_SOFTWARE.Protection`, bits 9:5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection(pub u8);

impl Protection {
    /// The access part, bits 2:0 (`MM_READONLY` ... `MM_EXECUTE_WRITECOPY`,
    /// mi.h). Published `!pte` output shows `Readonly`, `ExecuteRead` and
    /// `ReadWrite`; the others follow the same spelling.
    const ACCESS: [&'static str; 8] = [
        "NoAccess",
        "Readonly",
        "Execute",
        "ExecuteRead",
        "ReadWrite",
        "WriteCopy",
        "ExecuteReadWrite",
        "ExecuteWriteCopy",
    ];

    /// The cache/guard part, bits 4:3 (`MM_NOCACHE` 0x8, `MM_GUARD_PAGE`
    /// 0x10, both: `MM_WRITECOMBINE`), a suffix after a blank: `WinDbg`
    /// prints 0x11 as `Readonly G` (a published Windows 10 session, see
    /// docs/windows-ptes.md). `NC` and `WC` are spelled by analogy with `G`;
    /// no published output shows them.
    const MODIFIER: [&'static str; 4] = ["", " NC", " G", " WC"];
}

/// `Protect: 4 - ReadWrite`, `Protect: 11 - Readonly G`, as `!pte` prints it.
impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0 & 0x1f;
        let access = Self::ACCESS[usize::from(value & 7)];
        let modifier = Self::MODIFIER[usize::from(value >> 3)];
        write!(f, "Protect: {value:x} - {access}{modifier}")
    }
}
