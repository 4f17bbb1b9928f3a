//! Which invalid-PTE mask a capture's own page tables show.
//!
//! Windows 10 1803 and later set one bit, `1 << (MAXPHYADDR - 1)`, in every
//! non-present entry it swizzles, and clear `SwizzleBit` (bit 4) to say so
//! ([`super::software_pte`]). A capture does not record MAXPHYADDR, but its
//! tables show the bit: every swizzled entry carries the same one. Two kinds
//! of entry say which, unambiguously:
//!
//! - a demand-zero shaped entry (`PageFileLow`, bits 15:12, zero): above
//!   bit 31 it holds nothing but the mask;
//! - a transition entry: a frame bit beyond the capture's physical memory
//!   can only be the mask.
//!
//! Page-file entries (their offset fills bits 63:32), prototype entries (an
//! address), freed entries (bits 11:0 clear) and entries with `SwizzleBit`
//! set carry no evidence. [`MaskEvidence`] counts the votes without
//! allocating; [`MaskEvidence::conclude`] names the mask only when nearly all
//! of them agree and the bit lies beyond the capture's physical memory.

use super::entry::PageTableEntry;
use super::software_pte::{InvalidPteMask, PROTOTYPE, SWIZZLE_BIT, TRANSITION};

/// `_MMPTE_SOFTWARE.PageFileLow`: which paging file.
const PAGE_FILE_LOW: u64 = 0xf << 12;
/// The lowest mask bit a 64-bit x86 CPU can have (MAXPHYADDR 36).
const LOWEST_MASK_BIT: u32 = 35;
/// The highest (MAXPHYADDR 52).
const HIGHEST_MASK_BIT: u32 = 51;
/// The share of votes (in twentieths) a conclusion needs: 95 %.
const MAJORITY_TWENTIETHS: u64 = 19;

/// Votes of the non-present entries seen so far.
#[derive(Clone, Copy, Debug)]
pub struct MaskEvidence {
    /// Entries whose only bit beyond the frame or offset is this one.
    votes: [u32; 64],
    /// Entries with `SwizzleBit` clear that carry no such bit.
    unmasked: u32,
    /// One past the capture's highest physical address.
    physical_end: u64,
}

/// What the votes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskInference {
    /// Nearly all entries carry this mask.
    Swizzled {
        /// The mask.
        mask: InvalidPteMask,
        /// How many entries carry it.
        agreeing: u32,
        /// How many entries voted.
        voters: u32,
    },
    /// Nearly all entries with `SwizzleBit` clear carry no high bit: no mask
    /// (Windows before 10 1803, or a processor it does not mitigate).
    Unswizzled {
        /// How many entries voted.
        voters: u32,
    },
    /// No entry says anything.
    NoEvidence,
    /// The entries disagree, or the most common bit lies inside the
    /// capture's physical memory, where a frame may really have it.
    Conflicting {
        /// The most common bit.
        bit: u32,
        /// How many entries carry it.
        agreeing: u32,
        /// How many entries voted.
        voters: u32,
    },
}

impl MaskEvidence {
    /// No votes yet, for a capture whose physical memory ends below
    /// `physical_end`.
    #[must_use]
    pub const fn new(physical_end: u64) -> Self {
        Self {
            votes: [0; 64],
            unmasked: 0,
            physical_end,
        }
    }

    /// Counts `entry`'s vote, if it has one.
    ///
    /// ```
    /// use vmwalk::walker::PageTableEntry;
    /// use vmwalk::walker::mask_evidence::{MaskEvidence, MaskInference};
    /// use vmwalk::walker::software_pte::InvalidPteMask;
    /// let mut evidence = MaskEvidence::new(1 << 30);
    /// // Demand zero, ReadWrite, swizzled with MAXPHYADDR 39's bit.
    /// evidence.observe(PageTableEntry(1 << 38 | 0x80));
    /// // Transition to frame 0x1234, the same bit.
    /// evidence.observe(PageTableEntry(1 << 38 | 0x1234 << 12 | 0x880));
    /// assert_eq!(
    ///     evidence.conclude(),
    ///     MaskInference::Swizzled { mask: InvalidPteMask(1 << 38), agreeing: 2, voters: 2 }
    /// );
    /// ```
    pub fn observe(&mut self, entry: PageTableEntry) {
        let raw = entry.0;
        let voiceless = entry.is_present()
            || raw & SWIZZLE_BIT != 0
            || raw & PROTOTYPE != 0
            || raw.trailing_zeros() >= 12; // zero, or freed
        if voiceless {
            return;
        }
        let beyond = if raw & TRANSITION != 0 {
            // Frame bits at or above the end of physical memory.
            let frame = raw & 0x000f_ffff_ffff_f000;
            let inside = self.physical_end.checked_next_power_of_two().unwrap_or(0);
            frame & !inside.wrapping_sub(1)
        } else if raw & PAGE_FILE_LOW == 0 {
            raw & !0xffff_ffff
        } else {
            return;
        };
        if beyond == 0 {
            self.unmasked += 1;
        } else if beyond.is_power_of_two() {
            let bit = beyond.trailing_zeros();
            if (LOWEST_MASK_BIT..=HIGHEST_MASK_BIT).contains(&bit)
                && let Some(votes) = self.votes.get_mut(bit as usize)
            {
                *votes += 1;
            }
        }
    }

    /// The mask the votes name, or why they name none.
    #[must_use]
    pub fn conclude(&self) -> MaskInference {
        let (bit, agreeing) = (0_u32..)
            .zip(self.votes)
            // The last of equal maxima: the highest bit.
            .max_by_key(|(_, votes)| *votes)
            .unwrap_or((0, 0));
        let voters = self.votes.iter().sum::<u32>() + self.unmasked;
        let majority =
            |count: u32| u64::from(count) * 20 >= u64::from(voters) * MAJORITY_TWENTIETHS;
        if voters == 0 {
            MaskInference::NoEvidence
        } else if agreeing > 0 && majority(agreeing) && (1_u64 << bit) >= self.physical_end {
            MaskInference::Swizzled {
                mask: InvalidPteMask(1 << bit),
                agreeing,
                voters,
            }
        } else if majority(self.unmasked) {
            MaskInference::Unswizzled { voters }
        } else {
            MaskInference::Conflicting {
                bit,
                agreeing,
                voters,
            }
        }
    }
}
