//! The invalid-PTE mask `pte` and `translate --explain --os windows` decode
//! with: given, implied by a given MAXPHYADDR, or read from the capture's own
//! tables ([`vmwalk::walker::mask_evidence`]). Says on stderr, once, which
//! and why.

use std::collections::HashSet;

use vmwalk::walker::mask_evidence::{MaskEvidence, MaskInference};
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::x86_64::{Level, PageTableEntry, Paging};
use vmwalk::walker::{PhysAddr, PhysicalMemory};

use crate::image::Image;

/// MAXPHYADDR when neither the user nor the capture says: the architecture's
/// largest, `--maxphyaddr`'s default.
const DEFAULT_MAX_PHYS_BITS: u32 = 52;

/// The mask to decode with, and its one line on stderr.
pub fn choose(
    image: &Image,
    paging: &Paging,
    given_mask: Option<u64>,
    given_max_phys_bits: Option<u32>,
) -> InvalidPteMask {
    if let Some(mask) = given_mask {
        eprintln!("ptwalk: invalid-PTE mask {mask:#x} (--invalid-pte-mask)");
        return InvalidPteMask(mask);
    }
    if let Some(bits) = given_max_phys_bits {
        let mask = InvalidPteMask::for_max_phys_bits(bits);
        eprintln!(
            "ptwalk: invalid-PTE mask {:#x} (1 << (MAXPHYADDR - 1), --maxphyaddr {bits})",
            mask.0
        );
        return mask;
    }
    let physical_end = image.physical_end();
    let evidence = survey(image, paging, physical_end);
    let fallback = InvalidPteMask::for_max_phys_bits(DEFAULT_MAX_PHYS_BITS);
    let default = format!(
        "using {:#x}, MAXPHYADDR {DEFAULT_MAX_PHYS_BITS}'s; --invalid-pte-mask or --maxphyaddr to give it",
        fallback.0
    );
    match evidence.conclude() {
        MaskInference::Swizzled {
            mask,
            agreeing,
            voters,
        } => {
            let bit = mask.0.trailing_zeros();
            eprintln!(
                "ptwalk: invalid-PTE mask {:#x} (bit {bit}, MAXPHYADDR {}), from the capture: {agreeing} of {voters} swizzled demand-zero and transition entries carry it, beyond its physical memory (ends at {physical_end:#x})",
                mask.0,
                bit + 1
            );
            mask
        }
        MaskInference::Unswizzled { voters } => {
            eprintln!(
                "ptwalk: invalid-PTE mask 0, from the capture: {voters} demand-zero and transition entries with bit 4 clear carry no high bit (Windows before 10 1803, or not mitigated)"
            );
            InvalidPteMask::NONE
        }
        MaskInference::NoEvidence => {
            eprintln!(
                "ptwalk: invalid-PTE mask: no swizzled demand-zero or transition entry in the tables to read it from; {default}"
            );
            fallback
        }
        MaskInference::Conflicting {
            bit,
            agreeing,
            voters,
        } => {
            eprintln!(
                "ptwalk: invalid-PTE mask: the capture's entries disagree (the most common high bit, {bit}, in {agreeing} of {voters}; physical memory ends at {physical_end:#x}); {default}"
            );
            fallback
        }
    }
}

/// Every entry of every table reachable from the root, each table read once.
fn survey(image: &Image, paging: &Paging, physical_end: u64) -> MaskEvidence {
    let mut evidence = MaskEvidence::new(physical_end);
    let levels = paging.mode().levels();
    let mut seen = HashSet::new();
    let mut pending = vec![(paging.root(), 0_usize)];
    while let Some((table, depth)) = pending.pop() {
        if !seen.insert(table.0) {
            continue;
        }
        let Some(&level) = levels.get(depth) else {
            continue;
        };
        for index in 0..512 {
            let Ok(raw) = image.read_u64(PhysAddr(table.0 + 8 * index)) else {
                break; // a table the capture lacks
            };
            let entry = PageTableEntry(raw);
            evidence.observe(entry);
            let leaf = level == Level::Pt || entry.is_large_at(level);
            if entry.is_present() && !leaf {
                pending.push((entry.address(12, paging.max_phys_bits()), depth + 1));
            }
        }
    }
    evidence
}
