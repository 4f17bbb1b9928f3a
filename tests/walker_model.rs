//! The walker against the reference model (`tests/model`) over random page
//! tables: every page size, flag, reserved bit, garbage entry, shared and
//! cyclic table, and tables outside the image.
// Test code on a 64-bit host: index casts cannot truncate, and `const` buys nothing.
#![allow(clippy::cast_possible_truncation, clippy::missing_const_for_fn)]

mod model;

use std::collections::BTreeSet;

use model::compare::{assert_range_agrees, leaf_outcomes, paging_of, translation_outcome};
use model::world::{Rng, world};
use model::{Outcome, bit, bits, canonical, enumerate, translate, width, words_of};
use proptest::prelude::*;
use vmwalk::walker::{ImageMemory, VirtAddr};

fn check_translations(seed: u64) {
    let world = world(seed);
    let words = words_of(&world.image);
    let memory = ImageMemory::new(&world.image);
    let paging = paging_of(world.cpu, world.cr3);
    for &va in &world.probes {
        let expected = translate(&words, world.cpu, world.cr3, va);
        let result = paging.translate(&memory, VirtAddr(va));
        // The path holds one entry per level read, the failing one included.
        let read = match &result {
            Ok(t) => t.path.as_slice().len(),
            Err(f) => f.path.as_slice().len(),
        };
        let expected_read = match expected {
            Outcome::Mapped { size, .. } => {
                (world.cpu.levels - (size.trailing_zeros() - 12) / 9) as usize
            }
            Outcome::NonCanonical => 0,
            Outcome::NotPresent { depth } | Outcome::Reserved { depth } => depth as usize + 1,
            Outcome::Unreadable { depth } => depth as usize,
        };
        if let Ok(t) = &result {
            let m = t.mapping;
            let pat_bit = if m.size.bytes() == 4096 { 7 } else { 12 };
            assert_eq!(
                m.memory_type().pat,
                bit(m.entry.0, pat_bit),
                "seed {seed} va {va:#x}: PAT bit"
            );
            assert_eq!(m.memory_type().cache_disable, bit(m.entry.0, 4));
            assert_eq!(m.memory_type().write_through, bit(m.entry.0, 3));
            assert_eq!(
                (m.global(), m.dirty(), m.accessed()),
                (bit(m.entry.0, 8), bit(m.entry.0, 6), bit(m.entry.0, 5))
            );
            assert_eq!(
                m.va.0,
                va & !(m.size.bytes() - 1),
                "seed {seed} va {va:#x}: page base"
            );
        }
        let cpu = world.cpu;
        let cr3 = world.cr3;
        assert_eq!(
            translation_outcome(&paging, &result),
            expected,
            "seed {seed} cpu {cpu:?} cr3 {cr3:#x} va {va:#x}"
        );
        assert_eq!(
            read, expected_read,
            "seed {seed} va {va:#x}: entries in the path"
        );
    }
}

fn check_enumeration(seed: u64) {
    let world = world(seed);
    let words = words_of(&world.image);
    let memory = ImageMemory::new(&world.image);
    let (cpu, cr3) = (world.cpu, world.cr3);
    let paging = paging_of(cpu, cr3);
    let everything = enumerate(&words, cpu, cr3, 0, bits(0, width(cpu) - 1));
    assert_eq!(
        leaf_outcomes(&paging, paging.leaves(&memory)),
        everything,
        "seed {seed}"
    );
    // `fold` scans PTs in its own loop: it must yield the same items as `next`.
    let mut folded = Vec::new();
    paging.leaves(&memory).for_each(|leaf| folded.push(leaf));
    assert_eq!(
        folded,
        paging.leaves(&memory).collect::<Vec<_>>(),
        "seed {seed}: fold"
    );

    let mut rng = Rng(seed ^ 0x5555);
    let (a, b) = (rng.below(1 << width(cpu)), rng.below(1 << width(cpu)));
    let (first, last) = (a.min(b), a.max(b));
    assert_range_agrees(
        &paging,
        &memory,
        &words,
        cpu,
        cr3,
        (first, last),
        &format!("seed {seed}"),
    );
    let mut folded = Vec::new();
    let range = || {
        let (first, last) = (canonical(cpu, first), canonical(cpu, last));
        paging
            .leaves_in(&memory, VirtAddr(first), VirtAddr(last))
            .unwrap()
    };
    range().for_each(|leaf| folded.push(leaf));
    assert_eq!(
        folded,
        range().collect::<Vec<_>>(),
        "seed {seed}: fold in range"
    );

    // Runs: the model's leaves merged naively by contiguity and attributes.
    let attributes = |leaf: u64, size: u64, access: (bool, bool, bool)| {
        let pat = bit(leaf, if size == 4096 { 7 } else { 12 });
        (size, access, bit(leaf, 8), bit(leaf, 3), bit(leaf, 4), pat)
    };
    let mut runs: Vec<(u64, u64, u64, _)> = Vec::new();
    for (va, outcome) in &everything {
        let Outcome::Mapped {
            pa,
            size,
            w,
            u,
            x,
            leaf,
        } = *outcome
        else {
            continue;
        };
        let attrs = attributes(leaf, size, (w, u, x));
        match runs.last_mut() {
            Some(run) if run.3 == attrs && run.0 + run.2 == *va && run.1 + run.2 == pa => {
                run.2 += size;
            }
            _ => runs.push((*va, pa, size, attrs)),
        }
    }
    let expected: Vec<_> = runs.iter().map(|r| (r.0, r.1, r.2)).collect();
    let actual: Vec<_> = paging
        .leaves(&memory)
        .runs()
        .filter_map(Result::ok)
        .map(|r| (r.va.0, r.pa.0, r.bytes))
        .collect();
    assert_eq!(actual, expected, "seed {seed}: runs");
}

/// The generator reaches every outcome and page size, so the properties
/// below cannot pass by testing only easy cases.
#[test]
fn random_worlds_cover_every_outcome() {
    let mut seen = BTreeSet::new();
    for seed in 0..300 {
        let world = world(seed);
        let words = words_of(&world.image);
        for &va in &world.probes {
            seen.insert(match translate(&words, world.cpu, world.cr3, va) {
                Outcome::Mapped { size, .. } => {
                    format!("mapped {size:#x} levels {}", world.cpu.levels)
                }
                Outcome::NonCanonical => "non-canonical".to_owned(),
                Outcome::NotPresent { depth } => format!("not present at {depth}"),
                Outcome::Reserved { depth } => format!("reserved at {depth}"),
                Outcome::Unreadable { depth } => format!("unreadable at {depth}"),
            });
        }
    }
    for levels in [4, 5] {
        for size in [0x1000, 0x20_0000, 0x4000_0000] {
            assert!(
                seen.contains(&format!("mapped {size:#x} levels {levels}")),
                "{seen:?}"
            );
        }
    }
    for depth in 0..5 {
        for kind in ["not present", "reserved"] {
            assert!(
                seen.contains(&format!("{kind} at {depth}")),
                "{kind} at {depth}: {seen:?}"
            );
        }
    }
    for depth in 1..5 {
        assert!(
            seen.contains(&format!("unreadable at {depth}")),
            "unreadable at {depth}: {seen:?}"
        );
    }
    assert!(seen.contains("non-canonical"));
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
}
