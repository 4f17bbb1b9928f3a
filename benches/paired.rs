//! The ratios of `scripts/bench.sh`, measured interleaved: on these shared
//! 2-core machines the speed changes from second to second, so Criterion's
//! benchmarks, run one after the other, can compare a quiet moment with a
//! busy one. Here every round times one batch of each contender in turn
//! (rotating the order), and each gets the median of its rounds. Same image,
//! addresses and work as `benches/walker.rs`'s mixed-image groups; then the
//! same image as ARM64 descriptors (`arm64/...`: the ARM64 walker, the
//! pointer chase and `aarch64-paging`). Prints `name nanoseconds-per-operation`
//! lines.
// Bench code on a 64-bit host: index casts cannot truncate.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::hint::black_box;

use common::interleaved::Contender;
use common::{BATCH, pointer_chase};
use vmwalk::walker::VirtAddr;
use x86_64::structures::paging::mapper::{Translate as _, TranslateResult};

/// Rounds measured, after as many again to warm up (about 2.5 s in all);
/// `measure smoke` (scripts/bench.sh --smoke) runs a hundredth, to see it run.
fn rounds() -> usize {
    if std::env::args().nth(2).as_deref() == Some("smoke") {
        500
    } else {
        50_000
    }
}

fn main() {
    // `cargo bench` runs every bench target with `--bench`: measure only when asked.
    if std::env::args().nth(1).as_deref() != Some("measure") {
        return;
    }
    let machine = common::mixed();
    let addresses = machine.random_addresses([60, 30, 10], |_| false);
    let plan = machine.chase_plan(&addresses);
    let (paging, root) = (machine.paging, machine.paging.root().0);
    let (words, memory) = (machine.image.words(), machine.image.memory());
    let (pages, last) = heap_pages();
    let mut level_4 = machine.image.x86_64_level_4(root);
    let table = machine.image.x86_64_table(&mut level_4);

    let translate = |addresses: &[u64]| {
        addresses.iter().fold(0u64, |sum, &va| {
            let pa = paging
                .translate(&memory, VirtAddr(va))
                .map_or(0, |t| t.pa.0);
            sum.wrapping_add(pa)
        })
    };
    let contenders: Vec<(&str, Contender<'_>)> = vec![
        (
            "translate/vmwalk",
            Box::new(|| translate(black_box(&addresses))),
        ),
        (
            "translate/x86_64",
            Box::new(|| {
                black_box(&addresses).iter().fold(0u64, |sum, &va| {
                    let pa = match table.translate(x86_64::VirtAddr::new(va)) {
                        TranslateResult::Mapped { frame, offset, .. } => {
                            frame.start_address().as_u64() + offset
                        }
                        TranslateResult::NotMapped | TranslateResult::InvalidFrameAddress(_) => 0,
                    };
                    sum.wrapping_add(pa)
                })
            }),
        ),
        (
            "translate/pointer_chase",
            Box::new(|| chase(words, root, black_box(&plan[..]))),
        ),
        (
            "range/ranged/4k",
            Box::new(|| {
                paging
                    .translate_range(
                        black_box(&memory),
                        VirtAddr(common::HEAP_RANGE),
                        VirtAddr(last),
                    )
                    .expect("canonical range")
                    .fold(0u64, |sum, page| {
                        sum.wrapping_add(page.pa().map_or(0, |pa| pa.0))
                    })
            }),
        ),
        (
            "range/independent/4k",
            Box::new(|| translate(black_box(&pages))),
        ),
    ];
    let expected: Vec<u64> = contenders.iter().map(|(_, run)| run()).collect();
    assert_eq!(expected[0], expected[1], "x86_64 agrees");
    assert_eq!(expected[0], expected[2], "the chase agrees");
    assert_eq!(expected[3], expected[4], "ranged and independent agree");

    measure(&contenders);
    arm64(&addresses, &plan);
}

/// The mixed image as ARM64 descriptors, the same addresses and pages; the
/// same tables, so the same chase plan.
fn arm64(addresses: &[u64], plan: &[(u64, u32)]) {
    let machine = common::mixed_aarch64();
    let (paging, root) = (machine.paging, machine.root);
    let (words, memory) = (machine.image.words(), machine.image.memory());
    let roots = common::aarch64_paging_roots(&machine);
    let (pages, last) = heap_pages();
    let translate = |addresses: &[u64]| {
        addresses.iter().fold(0u64, |sum, &va| {
            let pa = paging
                .translate(&memory, VirtAddr(va))
                .map_or(0, |t| t.pa.0);
            sum.wrapping_add(pa)
        })
    };
    let contenders: Vec<(&str, Contender<'_>)> = vec![
        (
            "arm64/translate/vmwalk",
            Box::new(|| translate(black_box(addresses))),
        ),
        (
            "arm64/translate/aarch64_paging",
            Box::new(|| {
                black_box(addresses).iter().fold(0u64, |sum, &va| {
                    sum.wrapping_add(common::aarch64_paging_translate(&roots, va))
                })
            }),
        ),
        (
            "arm64/translate/pointer_chase",
            Box::new(|| chase(words, root, black_box(plan))),
        ),
        (
            "arm64/range/ranged/4k",
            Box::new(|| {
                paging
                    .translate_range(
                        black_box(&memory),
                        VirtAddr(common::HEAP_RANGE),
                        VirtAddr(last),
                    )
                    .expect("one range")
                    .fold(0u64, |sum, page| {
                        sum.wrapping_add(page.pa().map_or(0, |pa| pa.0))
                    })
            }),
        ),
        (
            "arm64/range/independent/4k",
            Box::new(|| translate(black_box(&pages))),
        ),
    ];
    let expected: Vec<u64> = contenders.iter().map(|(_, run)| run()).collect();
    assert_eq!(expected[0], expected[1], "aarch64-paging agrees");
    assert_eq!(expected[0], expected[2], "the chase agrees");
    assert_eq!(expected[3], expected[4], "ranged and independent agree");
    measure(&contenders);
}

/// The `BATCH` heap pages of the ranged contenders, and the last byte.
fn heap_pages() -> (Vec<u64>, u64) {
    let pages = (0..BATCH as u64)
        .map(|i| common::HEAP_RANGE + i * 4096)
        .collect();
    (pages, common::HEAP_RANGE + BATCH as u64 * 4096 - 1)
}

/// The pointer chase of every planned address, summed.
fn chase(words: &[u64], root: u64, plan: &[(u64, u32)]) -> u64 {
    plan.iter().fold(0u64, |sum, &(va, loads)| {
        sum.wrapping_add(pointer_chase::<4>(words, root, va, loads))
    })
}

/// Times the contenders in interleaved rounds; prints each one's median.
fn measure(contenders: &[(&str, Contender<'_>)]) {
    let medians = common::interleaved::medians(contenders, rounds(), BATCH);
    for ((name, _), median) in contenders.iter().zip(medians) {
        println!("{name} {median:.3}");
    }
}
