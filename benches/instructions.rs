//! Instruction counts for `valgrind --tool=callgrind`, on the mixed image:
//! `instructions vmwalk|x86_64|pointer_chase` translates the benchmark's
//! random addresses `ROUNDS` times, `range` translates `BATCH` heap pages
//! `ROUNDS` times, `enumerate` lists every leaf once (`enumerate_linux`: of the
//! 4-level Linux-guest fixture), each inside one
//! `#[inline(never)]` function named `measured_*`, which `scripts/bench.sh`
//! passes to `--toggle-collect`. It prints `operations=N`: instructions / N
//! is the cost of one translation, page or leaf.
// Bench code on a 64-bit host: index casts cannot truncate.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::hint::black_box;

use common::{BATCH, Machine, pointer_chase};
use vmwalk::walker::{ImageMemory, Paging, VirtAddr};
use x86_64::structures::paging::OffsetPageTable;
use x86_64::structures::paging::mapper::{Translate as _, TranslateResult};

/// Translations measured: `ROUNDS` passes over `BATCH` addresses.
const ROUNDS: usize = 16;

#[inline(never)]
fn measured_vmwalk(paging: &Paging, memory: &ImageMemory<'_>, addresses: &[u64]) -> u64 {
    let mut sum = 0u64;
    for _ in 0..ROUNDS {
        for &va in addresses {
            let pa = paging.translate(memory, VirtAddr(va)).map_or(0, |t| t.pa.0);
            sum = sum.wrapping_add(black_box(pa));
        }
    }
    sum
}

#[inline(never)]
fn measured_x86_64(table: &OffsetPageTable<'_>, addresses: &[u64]) -> u64 {
    let mut sum = 0u64;
    for _ in 0..ROUNDS {
        for &va in addresses {
            let pa = match table.translate(x86_64::VirtAddr::new(va)) {
                TranslateResult::Mapped { frame, offset, .. } => {
                    frame.start_address().as_u64() + offset
                }
                TranslateResult::NotMapped | TranslateResult::InvalidFrameAddress(_) => 0,
            };
            sum = sum.wrapping_add(black_box(pa));
        }
    }
    sum
}

#[inline(never)]
fn measured_pointer_chase(machine: &Machine, plan: &[(u64, u32)]) -> u64 {
    let (words, root) = (machine.image.words(), machine.paging.root().0);
    let mut sum = 0u64;
    for _ in 0..ROUNDS {
        for &(va, loads) in plan {
            sum = sum.wrapping_add(black_box(pointer_chase::<4>(words, root, va, loads)));
        }
    }
    sum
}

/// Every leaf of the image, once.
#[inline(never)]
fn measured_enumerate(paging: &Paging, memory: &ImageMemory<'_>) -> u64 {
    paging.leaves(memory).fold(0u64, |sum, leaf| {
        sum.wrapping_add(black_box(leaf.map_or(0, |m| m.pa.0)))
    })
}

/// `BATCH` consecutive 4 KiB pages of the heap, `ROUNDS` times: ranged.
#[inline(never)]
fn measured_range(paging: &Paging, memory: &ImageMemory<'_>, first: u64) -> u64 {
    let last = first + BATCH as u64 * 4096 - 1;
    let mut sum = 0u64;
    for _ in 0..ROUNDS {
        let range = paging.translate_range(memory, VirtAddr(first), VirtAddr(last));
        sum = range.expect("a canonical range").fold(sum, |sum, page| {
            sum.wrapping_add(black_box(page.pa().map_or(0, |pa| pa.0)))
        });
    }
    sum
}

/// The ARM64 walker: the same addresses on the mixed image as ARM64 descriptors.
#[inline(never)]
fn measured_arm64(
    paging: &vmwalk::walker::aarch64::Paging,
    memory: &ImageMemory<'_>,
    addresses: &[u64],
) -> u64 {
    let mut sum = 0u64;
    for _ in 0..ROUNDS {
        for &va in addresses {
            let pa = paging.translate(memory, VirtAddr(va)).map_or(0, |t| t.pa.0);
            sum = sum.wrapping_add(black_box(pa));
        }
    }
    sum
}

/// The ARM64 walker's ranged translation of the heap pages.
#[inline(never)]
fn measured_arm64_range(
    paging: &vmwalk::walker::aarch64::Paging,
    memory: &ImageMemory<'_>,
    first: u64,
) -> u64 {
    let last = first + BATCH as u64 * 4096 - 1;
    let mut sum = 0u64;
    for _ in 0..ROUNDS {
        let range = paging.translate_range(memory, VirtAddr(first), VirtAddr(last));
        sum = range.expect("one range").fold(sum, |sum, page| {
            sum.wrapping_add(black_box(page.pa().map_or(0, |pa| pa.0)))
        });
    }
    sum
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let machine = common::mixed();
    let addresses = machine.random_addresses([60, 30, 10], |_| false);
    let sum = match which.as_str() {
        "vmwalk" => measured_vmwalk(&machine.paging, &machine.image.memory(), &addresses),
        "enumerate" => measured_enumerate(&machine.paging, &machine.image.memory()),
        "enumerate_linux" => {
            let linux = common::linux("la48");
            let sum = measured_enumerate(&linux.paging, &linux.image.memory());
            println!("{which}: operations={} sum={sum:#x}", linux.leaves.len());
            return;
        }
        "range" => measured_range(&machine.paging, &machine.image.memory(), common::HEAP_RANGE),
        "pointer_chase" => measured_pointer_chase(&machine, &machine.chase_plan(&addresses)),
        "arm64" | "arm64_range" => {
            let arm64 = common::mixed_aarch64();
            if which == "arm64" {
                measured_arm64(&arm64.paging, &arm64.image.memory(), &addresses)
            } else {
                measured_arm64_range(&arm64.paging, &arm64.image.memory(), common::HEAP_RANGE)
            }
        }
        "x86_64" => {
            let mut level_4 = machine.image.x86_64_level_4(machine.paging.root().0);
            measured_x86_64(&machine.image.x86_64_table(&mut level_4), &addresses)
        }
        // `cargo bench` runs every bench target with `--bench`: nothing to do.
        _ => return,
    };
    let operations = if which == "enumerate" {
        machine.leaves.len()
    } else {
        ROUNDS * BATCH
    };
    println!("{which}: operations={operations} sum={sum:#x}");
}
