//! The AArch64 walker against its reference model (`tests/model_aarch64`)
//! over random tables and registers: every descriptor type and block size,
//! AP/XN and table-restriction combinations, garbage and reserved encodings,
//! TBI, both TTBRs, several T0SZ/T1SZ/IPS values.
// Test code on a 64-bit host: index casts cannot truncate, and `const` buys nothing.
#![allow(
    clippy::cast_possible_truncation,
    clippy::missing_const_for_fn,
    clippy::doc_markdown
)]

mod model_aarch64;

use std::collections::BTreeSet;

use model_aarch64::compare::{leaf_outcomes, paging_of, translation_outcome};
use model_aarch64::world::{dense_world, world};
use model_aarch64::{
    Outcome, bit, bits, enumerate, params, start_level, supported, translate, words_of,
};
use proptest::prelude::*;
use vmwalk::walker::ImageMemory;
use vmwalk::walker::VirtAddr;

fn check_translations(seed: u64) {
    let world = world(seed);
    let regs = world.regs;
    let words = words_of(&world.image);
    let memory = ImageMemory::new(&world.image);
    let Some(paging) = paging_of(regs) else {
        assert!(!supported(regs), "seed {seed} {regs:x?}: rejected");
        return;
    };
    assert!(supported(regs), "seed {seed} {regs:x?}: accepted");
    for &va in &world.probes {
        let expected = translate(&words, regs, va);
        let result = paging.translate(&memory, VirtAddr(va));
        assert_eq!(
            translation_outcome(&result),
            expected,
            "seed {seed} {regs:x?} va {va:#x}"
        );
        // The path: one descriptor per level read, the faulting one included.
        let first = start_level(64 - params(regs, bit(va, 55)).txsz);
        let expected_read = match expected {
            Outcome::Mapped { size, .. } => 3 - (size.trailing_zeros() - 12) / 9 - first + 1,
            Outcome::Invalid { level }
            | Outcome::Reserved { level }
            | Outcome::AddressSize { level } => level - first + 1,
            Outcome::Unreadable { level } => level - first,
            _ => 0,
        };
        let path = match &result {
            Ok(t) => t.path,
            Err(f) => f.path,
        };
        assert_eq!(
            path.len() as u32,
            expected_read,
            "seed {seed} va {va:#x}: path"
        );
        let levels: Vec<u32> = path.iter().map(|v| v.level.number().into()).collect();
        assert_eq!(levels, (first..first + expected_read).collect::<Vec<_>>());
        if let Ok(t) = &result {
            assert_eq!(
                t.path.iter().last().map(|v| v.entry),
                Some(t.mapping.descriptor)
            );
        }
    }
}

fn check_enumeration(seed: u64) {
    let world = world(seed);
    let regs = world.regs;
    let Some(paging) = paging_of(regs) else {
        return;
    };
    let words = words_of(&world.image);
    let memory = ImageMemory::new(&world.image);
    let expected = enumerate(&words, regs);
    assert_eq!(
        leaf_outcomes(paging.leaves(&memory)),
        expected,
        "seed {seed} {regs:x?}"
    );
    // Runs: the model's leaves merged naively by contiguity and attributes.
    let mut runs: Vec<(u64, u64, u64, _)> = Vec::new();
    for (va, outcome) in &expected {
        let Outcome::Mapped {
            pa,
            size,
            pw,
            ur,
            uw,
            px,
            ux,
            leaf,
            ..
        } = *outcome
        else {
            continue;
        };
        // AttrIndx, SH, AF, nG, Contiguous.
        let attrs = (
            size,
            (pw, ur, uw, px, ux),
            leaf & (bits(2, 4) | bits(8, 11) | 1 << 52),
        );
        match runs.last_mut() {
            Some(run) if run.3 == attrs && run.0 + run.2 == *va && run.1 + run.2 == pa => {
                run.2 += size;
            }
            _ => runs.push((*va, pa, size, attrs)),
        }
    }
    let expected_runs: Vec<_> = runs.iter().map(|r| (r.0, r.1, r.2)).collect();
    let actual: Vec<_> = paging
        .leaves(&memory)
        .runs()
        .filter_map(Result::ok)
        .map(|r| (r.va.0, r.pa.0, r.bytes))
        .collect();
    assert_eq!(actual, expected_runs, "seed {seed}: runs");
}

/// Ranged translation, page by page, against the model's independent walks:
/// ~700 pages around each of a few probes, across level 2 and 3 boundaries.
/// Returns how many pages were mapped by pages and by blocks.
fn check_ranges(seed: u64) -> (usize, usize) {
    let mut mapped = (0, 0);
    let world = dense_world(seed);
    let regs = world.regs;
    let Some(paging) = paging_of(regs) else {
        return mapped;
    };
    let words = words_of(&world.image);
    let memory = ImageMemory::new(&world.image);
    for &probe in world.probes.iter().step_by(25) {
        let upper = bit(probe, 55);
        let va_bits = 64 - params(regs, upper).txsz;
        let ia = probe & bits(0, va_bits - 1);
        let first_ia = (ia & !0x1f_ffff).saturating_sub(16 << 12);
        let last_ia = (first_ia + (700 << 12)).min(bits(0, va_bits - 1));
        let va = |ia: u64| {
            if upper {
                ia | !bits(0, va_bits - 1)
            } else {
                ia
            }
        };
        let Ok(pages) =
            paging.translate_range(&memory, VirtAddr(va(first_ia)), VirtAddr(va(last_ia)))
        else {
            assert!(
                matches!(translate(&words, regs, va(first_ia)), Outcome::OutOfRange),
                "seed {seed} {regs:x?}: range from {:#x} refused",
                va(first_ia)
            );
            continue;
        };
        // Internal iteration (`fold`, a tighter loop) gives what `next` gives.
        let pages: Vec<_> = pages.collect();
        let folded = paging
            .translate_range(&memory, VirtAddr(va(first_ia)), VirtAddr(va(last_ia)))
            .expect("accepted above")
            .fold(Vec::new(), |mut all, page| {
                all.push(page);
                all
            });
        assert_eq!(folded, pages, "seed {seed}: fold and next");
        let mut count = 0;
        for page in pages {
            let expected = match translate(&words, regs, page.va.0) {
                Outcome::Mapped {
                    pa,
                    pw,
                    ur,
                    uw,
                    px,
                    ux,
                    leaf,
                    ..
                } => Some((pa, (pw, ur, uw, px, ux), leaf)),
                _ => None,
            };
            let got = page.mapping.map(|m| {
                let a = m.access;
                (
                    page.pa().map_or(0, |pa| pa.0),
                    (
                        a.privileged_write,
                        a.unprivileged_read,
                        a.unprivileged_write,
                        a.privileged_execute,
                        a.unprivileged_execute,
                    ),
                    m.descriptor.0,
                )
            });
            assert_eq!(got, expected, "seed {seed} {regs:x?} page {:#x}", page.va.0);
            count += 1;
            match page.mapping.map(|m| m.size.bytes()) {
                Some(4096) => mapped.0 += 1,
                Some(_) => mapped.1 += 1,
                None => {}
            }
        }
        assert_eq!(
            count,
            ((last_ia - first_ia) >> 12) + 1,
            "seed {seed}: pages"
        );
    }
    mapped
}

/// The ranged check above meets pages and blocks, not only faults.
#[test]
fn ranged_checks_meet_pages_and_blocks() {
    let (pages, blocks) = (0..100)
        .map(check_ranges)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(
        pages > 1000 && blocks > 1000,
        "{pages} pages, {blocks} in blocks"
    );
}

/// The generator reaches every outcome, level and block size, so the
/// properties below cannot pass by testing only easy cases.
#[test]
fn random_worlds_cover_every_outcome() {
    let mut seen = BTreeSet::new();
    for seed in 0..400 {
        let world = world(seed);
        let words = words_of(&world.image);
        for &va in &world.probes {
            let outcome = translate(&words, world.regs, va);
            let name = match outcome {
                Outcome::Mapped {
                    size,
                    base,
                    ux,
                    px,
                    uw,
                    ..
                } => {
                    seen.insert(format!("mapped {} upper {}", size, base >> 63));
                    seen.insert(format!("x {ux} {px} uw {uw}"));
                    if va >> 56 != base >> 56 {
                        seen.insert("tagged".to_owned());
                    }
                    format!("mapped {size:#x}")
                }
                Outcome::Invalid { level } => format!("invalid at {level}"),
                Outcome::Reserved { level } => format!("reserved at {level}"),
                Outcome::AddressSize { level } => format!("address size at {level}"),
                Outcome::Unreadable { level } => format!("unreadable at {level}"),
                other => format!("{other:?}"),
            };
            seen.insert(name);
        }
    }
    let mut wanted: Vec<String> = vec![
        "Unsupported".into(),
        "OutOfRange".into(),
        "WalkDisabled".into(),
        "BaseAddressSize".into(),
        "tagged".into(),
    ];
    for size in [0x1000, 0x20_0000, 0x4000_0000] {
        wanted.push(format!("mapped {size:#x}"));
        wanted.push(format!("mapped {size} upper 1"));
        wanted.push(format!("mapped {size} upper 0"));
    }
    for level in 0..4 {
        wanted.push(format!("invalid at {level}"));
        wanted.push(format!("address size at {level}"));
        wanted.push(format!("unreadable at {level}"));
    }
    wanted.push("reserved at 0".into());
    wanted.push("reserved at 3".into());
    for ux in [false, true] {
        for px in [false, true] {
            wanted.push(format!("x {ux} {px} uw false"));
        }
    }
    wanted.push("x true false uw true".into());
    for w in wanted {
        assert!(seen.contains(&w), "{w}: {seen:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn translation_matches_the_model(seed in any::<u64>()) {
        check_translations(seed);
    }

    #[test]
    fn enumeration_matches_the_model(seed in any::<u64>()) {
        check_enumeration(seed);
    }

    #[test]
    fn ranged_translation_matches_the_model(seed in any::<u64>()) {
        check_ranges(seed);
    }
}
