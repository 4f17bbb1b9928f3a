//! Arbitrary images, CR3 and settings: the walker must not panic and must
//! agree with the reference model, for translation and range enumeration.
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use model::compare::{assert_range_agrees, paging_of, translation_outcome};
use model::{Cpu, translate, width, words_of};
use vmwalk::walker::mask_evidence::{MaskEvidence, MaskInference};
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::windbg::PathLines;
use vmwalk::walker::{ImageMemory, PageTableEntry, VirtAddr};

const HEADER: usize = 2 + 8 + 4 * 8 + 16;

fn word(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let cpu = Cpu {
        levels: if data[0] & 1 == 0 { 4 } else { 5 },
        nxe: data[0] & 2 != 0,
        gb_pages: data[0] & 4 != 0,
        maxphy: 32 + u32::from(data[1]) % 21,
    };
    let cr3 = word(data, 2);
    let image = &data[HEADER..];
    let words = words_of(image);
    let memory = ImageMemory::new(image);
    let paging = paging_of(cpu, cr3);
    let mask = InvalidPteMask::for_max_phys_bits(cpu.maxphy);
    let mut text = String::new();
    for i in 0..4 {
        let va = word(data, 10 + 8 * i);
        let result = paging.translate(&memory, VirtAddr(va));
        assert_eq!(
            translation_outcome(&paging, &result),
            translate(&words, cpu, cr3, va),
            "va {va:#x}"
        );
        match &result {
            Ok(t) => write!(text, "{}", PathLines(&t.path, mask)).unwrap(),
            Err(f) => write!(text, "{f}{}", PathLines(&f.path, mask)).unwrap(),
        }
    }
    // A range of at most 4 MiB keeps the work bounded even with cyclic tables.
    let span_mask = (1 << width(cpu)) - 1;
    let first = word(data, 42) & span_mask;
    let last = (first + word(data, 50) % (4 << 20)).min(span_mask);
    assert_range_agrees(&paging, &memory, &words, cpu, cr3, (first, last), "fuzz");

    // The mask every word of the image votes for: one bit a CPU can have,
    // beyond the image, named by at most as many entries as voted.
    let mut evidence = MaskEvidence::new(image.len() as u64);
    for word in words.values() {
        evidence.observe(PageTableEntry(*word));
    }
    if let MaskInference::Swizzled {
        mask,
        agreeing,
        voters,
    } = evidence.conclude()
    {
        assert!(mask.0.is_power_of_two() && (35..=51).contains(&mask.0.trailing_zeros()));
        assert!(mask.0 >= image.len() as u64);
        assert!(0 < agreeing && agreeing <= voters && voters as usize <= words.len());
    }
});
