//! What Windows keeps in a non-present x64 entry (`_MMPTE` software formats).
//!
//! Informational only: to the CPU the entry is simply not present. The fields
//! used here (Protection 9:5, Prototype 10, Transition 11, transition PFN
//! 51:12, `PageFileHigh` 63:32, `ProtoAddress` 63:16) have kept their positions
//! from Windows 8.1 to Windows 11 (public `_MMPTE_*` type dumps); the bits
//! between them changed meaning across versions and are not decoded.

use core::fmt;

use super::entry::PageTableEntry;

/// A non-present entry as Windows' memory manager reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftwarePte {
    /// All zero: nothing was ever reserved or committed here.
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
        protection: u8,
    },
    /// The page is in a paging file.
    PageFile {
        /// Offset in the paging file, in pages.
        offset: u64,
        /// `MM_*` protection value.
        protection: u8,
    },
    /// Committed but never touched: a zeroed page is supplied on first access.
    DemandZero {
        /// `MM_*` protection value.
        protection: u8,
    },
}

const PROTOTYPE: u64 = 1 << 10;
const TRANSITION: u64 = 1 << 11;

impl SoftwarePte {
    /// Decodes a non-present entry; `None` when the entry is present.
    #[must_use]
    pub const fn decode(entry: PageTableEntry) -> Option<Self> {
        let raw = entry.0;
        if entry.is_present() {
            return None;
        }
        let protection = ((raw >> 5) & 0x1f) as u8;
        Some(if raw == 0 {
            Self::Zero
        } else if raw & PROTOTYPE != 0 {
            // ProtoAddress is a 48-bit kernel virtual address in bits 63:16.
            Self::Prototype {
                proto_address: (raw.cast_signed() >> 16).cast_unsigned(),
            }
        } else if raw & TRANSITION != 0 {
            Self::Transition {
                pfn: (raw >> 12) & ((1 << 40) - 1),
                protection,
            }
        } else if raw >> 32 != 0 {
            Self::PageFile {
                offset: raw >> 32,
                protection,
            }
        } else {
            Self::DemandZero { protection }
        })
    }
}

impl fmt::Display for SoftwarePte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Zero => f.write_str("zero entry: nothing reserved or committed"),
            Self::Prototype { proto_address } => {
                write!(f, "prototype PTE at {proto_address:#x}")
            }
            Self::Transition { pfn, protection } => {
                write!(f, "transition: pfn {pfn:x}, protection {protection}")
            }
            Self::PageFile { offset, protection } => {
                write!(
                    f,
                    "in a paging file at page offset {offset:#x}, protection {protection}"
                )
            }
            Self::DemandZero { protection } => write!(f, "demand zero, protection {protection}"),
        }
    }
}
