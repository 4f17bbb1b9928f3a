//! The rules by which a capture's non-present entries name the invalid-PTE
//! mask (`walker::mask_evidence`), entry kind by entry kind. The entries are
//! built from the `_MMPTE_SOFTWARE` / `_MMPTE_TRANSITION` layouts of Windows
//! 10 1803+ (docs/windows-ptes.md), independently of the decoder.

use vmwalk::walker::PageTableEntry;
use vmwalk::walker::mask_evidence::{MaskEvidence, MaskInference};
use vmwalk::walker::software_pte::InvalidPteMask;

const MASK_46: u64 = 1 << 45;
const DEMAND_ZERO: u64 = 4 << 5;
const GIB: u64 = 1 << 30;

fn conclude(physical_end: u64, entries: &[u64]) -> MaskInference {
    let mut evidence = MaskEvidence::new(physical_end);
    for entry in entries {
        evidence.observe(PageTableEntry(*entry));
    }
    evidence.conclude()
}

#[test]
fn demand_zero_and_transition_entries_vote_for_their_high_bit() {
    let entries = [
        DEMAND_ZERO | MASK_46,
        0x1234 << 12 | 1 << 11 | DEMAND_ZERO | MASK_46,
    ];
    assert_eq!(
        conclude(4 * GIB, &entries),
        MaskInference::Swizzled {
            mask: InvalidPteMask(MASK_46),
            agreeing: 2,
            voters: 2
        }
    );
}

#[test]
fn entries_that_carry_no_evidence_do_not_vote() {
    let entries = [
        0x5063,                                    // present
        DEMAND_ZERO | MASK_46 | 1 << 4,            // SwizzleBit set: not swizzled
        0xffff_c182_cc1f_fdf8_u64 << 16 | 1 << 10, // prototype: an address
        0x0006_8dc0_0000_1000 & !0xfff,            // freed: bits 11:0 clear
        0xdef3_u64 << 32 | 2 << 12 | 3 << 5,       // page file: the offset fills 63:32
        0,
    ];
    assert_eq!(conclude(4 * GIB, &entries), MaskInference::NoEvidence);
}

#[test]
fn a_transition_frame_inside_physical_memory_is_no_mask() {
    // Frame 0x2_0000_0000 (8 GiB) in a 16 GiB capture: a real frame bit.
    let transition = (8 * GIB) | 1 << 11 | DEMAND_ZERO;
    assert_eq!(
        conclude(16 * GIB, &[transition]),
        MaskInference::Unswizzled { voters: 1 }
    );
    // The same entry in a 4 GiB capture: bit 33 is beyond it, but no
    // x86-64 CPU has MAXPHYADDR 34: no vote.
    assert_eq!(conclude(4 * GIB, &[transition]), MaskInference::NoEvidence);
}

#[test]
fn a_bit_inside_physical_memory_or_a_split_vote_conflicts() {
    // Bit 38 (256 GiB) in a 512 GiB capture: demand-zero entries say 38, but
    // a frame there would be real.
    let mask = 1_u64 << 38;
    assert_eq!(
        conclude(512 * GIB, &[DEMAND_ZERO | mask; 3]),
        MaskInference::Conflicting {
            bit: 38,
            agreeing: 3,
            voters: 3
        }
    );
    // 19 of 20 agree: enough (95 %); 18 of 20: not.
    let mut entries = vec![DEMAND_ZERO | MASK_46; 19];
    entries.push(DEMAND_ZERO | 1 << 38);
    assert!(matches!(
        conclude(4 * GIB, &entries),
        MaskInference::Swizzled {
            agreeing: 19,
            voters: 20,
            ..
        }
    ));
    entries[0] = DEMAND_ZERO;
    assert!(matches!(
        conclude(4 * GIB, &entries),
        MaskInference::Conflicting {
            bit: 45,
            agreeing: 18,
            voters: 20
        }
    ));
}
