//! Arbitrary images, TTBR0/TTBR1/TCR and addresses: the AArch64 walker must
//! not panic and must agree with its reference model, for translation, for
//! ranged translation (64 pages from the first address) and for the
//! enumeration of both ranges.
#![no_main]

#[path = "../../tests/model_aarch64/mod.rs"]
mod model_aarch64;

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use model_aarch64::compare::{fold_outcomes, leaf_outcomes, paging_of, translation_outcome};
use model_aarch64::{Regs, enumerate, supported, translate, words_of};
use vmwalk::walker::{ImageMemory, VirtAddr};

/// Options byte, TTBR0, TTBR1, TCR, four addresses.
const HEADER: usize = 1 + 3 * 8 + 4 * 8;
/// TG0, T1SZ's top bits, TG1, DS: cleared unless the options ask for raw TCR.
const SUPPORTED_ONLY: u64 = 0b11 << 14 | 0b11 << 30 | 1 << 59;

fn word(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let mut tcr = word(data, 17);
    if data[0] & 1 == 0 {
        // Mostly supported registers: 4 KiB granules, TxSZ in 16..=39.
        tcr = tcr & !SUPPORTED_ONLY & !(0x3f | 0x3f << 16) | 0b10 << 30;
        tcr |= 16 + (word(data, 17) & 0x3f) % 24;
        tcr |= (16 + ((word(data, 17) >> 16) & 0x3f) % 24) << 16;
    }
    let regs = Regs {
        ttbr0: word(data, 1),
        ttbr1: word(data, 9),
        tcr,
    };
    let image = &data[HEADER..];
    let words = words_of(image);
    let memory = ImageMemory::new(image);
    let Some(paging) = paging_of(regs) else {
        assert!(!supported(regs), "{regs:x?} rejected");
        return;
    };
    assert!(supported(regs), "{regs:x?} accepted");
    let mut text = String::new();
    for i in 0..4 {
        let va = word(data, 25 + 8 * i);
        let result = paging.translate(&memory, VirtAddr(va));
        assert_eq!(
            translation_outcome(&result),
            translate(&words, regs, va),
            "{regs:x?} va {va:#x}"
        );
        match &result {
            Ok(t) => write!(text, "{}", t.mapping).unwrap(),
            Err(f) => write!(text, "{f}").unwrap(),
        }
    }
    // Ranged: each page as the model translates it (a tag is ignored or
    // faults as the model says; a refused range is one the model faults at).
    let first = word(data, 25) & !0xfff;
    if let Ok(pages) = paging.translate_range(&memory, VirtAddr(first), VirtAddr(first | 0x3f_fff))
    {
        pages.fold((), |(), page| {
            let expected = match translate(&words, regs, page.va.0) {
                model_aarch64::Outcome::Mapped { pa, leaf, .. } => Some((pa, leaf)),
                _ => None,
            };
            let got = page
                .mapping
                .map(|m| (page.pa().map_or(0, |pa| pa.0), m.descriptor.0));
            assert_eq!(got, expected, "{regs:x?} page {:#x}", page.va.0);
        });
    }
    // Shared and cyclic tables make enumeration grow as (table descriptors)^3:
    // bounded by enumerating only images with a few of them.
    let tables = words.values().filter(|d| *d & 0b11 == 0b11).count();
    if tables <= 8 {
        let model = enumerate(&words, regs);
        assert_eq!(leaf_outcomes(paging.leaves(&memory)), model, "{regs:x?}");
        // Internal iteration: tables scanned by their present bits.
        assert_eq!(
            fold_outcomes(paging.leaves(&memory)),
            model,
            "{regs:x?}: fold"
        );
    }
});
