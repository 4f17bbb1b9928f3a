//! vmwalk against memflow 0.2.4, the Rust memory-introspection framework a
//! `ptwalk` user would otherwise pick, on the same images and tables
//! (scripts/bench.sh's `memflow_*` rows), and enumeration against the
//! limit of reading the tables it visits (`scan_limit_ratio`).
//!
//! - Batches: N = 1, 64 and 4096 of the mixed image's random addresses
//!   (4 KiB, 2 MiB and 1 GiB pages, user and kernel), shuffled and sorted,
//!   on x86-64 and on the same tables as `AArch64` descriptors. Ours: one
//!   `translate` per address. memflow: `virt_to_phys_iter` (its batch
//!   translation, which groups a batch's walks by shared tables) over a
//!   `DirectTranslate`, one call per half of the address space (a call that
//!   spans both loops over every 512 GiB slot between them).
//! - Page map: every mapping, merged into runs. Ours: `leaves().runs()`,
//!   what `ptwalk dump` prints. memflow: `virt_translation_map_range` over
//!   each half (leaves merged where virtually and physically contiguous).
//! - Scan limit: enumeration of every leaf against a plain read of every
//!   word of exactly the table pages a walk of all present entries visits
//!   (found without the walker), on the Linux-guest image and a
//!   Windows-like one.
//!
//! Every contender's answers are checked equal first. Prints
//! `name nanoseconds-per-operation` lines, measured interleaved
//! (`common/interleaved.rs`).
// Bench code on a 64-bit host: index casts cannot truncate.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::cell::RefCell;
use std::hint::black_box;

use common::interleaved::{Contender, medians};
use common::memflow_peer::{self, UPPER_HALF};
use memflow::architecture::arm::aarch64;
use memflow::architecture::x86::x64;
use memflow::mem::virt_translate::VirtualTranslation;
use memflow::prelude::v1::*;
use vmwalk::walker::{ImageMemory, VirtAddr};

/// Whether `measure smoke` (scripts/bench.sh --smoke) asked for a few
/// rounds only, to see it run.
fn smoke() -> bool {
    std::env::args().nth(2).as_deref() == Some("smoke")
}

/// Addresses translated in every batch contender's run.
const ADDRESSES: usize = 4096;
/// The batch sizes compared.
const BATCH_SIZES: [usize; 3] = [1, 64, 4096];
/// memflow's batch translation of `batch`: the sum of the physical
/// addresses it finds.
fn sum_of<T: VirtualTranslate3>(
    memory: &mut memflow_peer::Memory<'_>,
    vat: &mut DirectTranslate,
    translator: &T,
    batch: &[u64],
    found: &mut Vec<Option<u64>>,
) -> u64 {
    memflow_peer::batch(memory, vat, translator, batch, found);
    found
        .iter()
        .flatten()
        .fold(0, |sum, pa| sum.wrapping_add(*pa))
}

/// The batch contenders of one architecture: ours (`translate`) and
/// memflow's, for each batch size and order.
fn batches(
    arch: &str,
    addresses: &[u64],
    ours: &dyn Fn(u64) -> u64,
    memflow: &dyn Fn(&[u64]) -> u64,
    rounds: usize,
) {
    for &n in &BATCH_SIZES {
        for order in ["shuffled", "sorted"] {
            if n == 1 && order == "sorted" {
                continue; // one address is both
            }
            let mut batch = addresses.to_vec();
            if order == "sorted" {
                batch.chunks_mut(n).for_each(<[u64]>::sort_unstable);
            }
            let batch = &batch;
            let contenders: Vec<(&str, Contender<'_>)> = vec![
                (
                    "vmwalk",
                    Box::new(move || {
                        black_box(batch)
                            .iter()
                            .fold(0u64, |sum, &va| sum.wrapping_add(ours(va)))
                    }),
                ),
                (
                    "memflow",
                    Box::new(move || {
                        black_box(batch)
                            .chunks(n)
                            .fold(0u64, |sum, chunk| sum.wrapping_add(memflow(chunk)))
                    }),
                ),
            ];
            let sums: Vec<u64> = contenders.iter().map(|(_, run)| run()).collect();
            assert_eq!(sums[0], sums[1], "{arch} N={n} {order}: memflow agrees");
            let times = medians(&contenders, rounds, batch.len());
            for ((who, _), time) in contenders.iter().zip(times) {
                println!("memflow/{arch}/batch/{n}/{order}/{who} {time:.3}");
            }
        }
    }
}

fn main() {
    // `cargo bench` runs every bench target with `--bench`: measure only when asked.
    if std::env::args().nth(1).as_deref() != Some("measure") {
        return;
    }
    let rounds = if smoke() { 5 } else { 200 };
    let machine = common::mixed();
    let addresses = machine.random_addresses_of(ADDRESSES, [60, 30, 10], |_| false);
    let memory = machine.image.memory();
    let flow = RefCell::new((
        memflow_peer::memory(machine.image.bytes()),
        DirectTranslate::new(),
        Vec::new(),
    ));
    let x86 = x64::new_translator(Address::from(machine.paging.root().0));
    let paging = machine.paging;
    let ours = |va: u64| {
        paging
            .translate(&memory, VirtAddr(va))
            .map_or(0, |t| t.pa.0)
    };
    let memflow = |batch: &[u64]| {
        let (memory, vat, found) = &mut *flow.borrow_mut();
        sum_of(memory, vat, &x86, batch, found)
    };
    batches("x86_64", &addresses, &ours, &memflow, rounds);
    map(
        "x86_64",
        machine.image.bytes(),
        x64::ARCH,
        x86,
        &|| {
            paging
                .leaves(&memory)
                .runs()
                .fold(0, |sum, run| sum.wrapping_add(run.map_or(0, |r| r.bytes)))
        },
        rounds,
    );

    let arm = common::mixed_aarch64();
    let arm_memory = arm.image.memory();
    let arm_paging = arm.paging;
    let arm_flow = RefCell::new((
        memflow_peer::memory(arm.image.bytes()),
        DirectTranslate::new(),
        Vec::new(),
    ));
    let root = Address::from(arm.root);
    let arm_translator = aarch64::new_translator(root, root);
    let ours = |va: u64| {
        arm_paging
            .translate(&arm_memory, VirtAddr(va))
            .map_or(0, |t| t.pa.0)
    };
    let memflow = |batch: &[u64]| {
        let (memory, vat, found) = &mut *arm_flow.borrow_mut();
        sum_of(memory, vat, &arm_translator, batch, found)
    };
    batches("aarch64", &addresses, &ours, &memflow, rounds);
    // Both TTBRs point at one table with 48-bit ranges: each range maps every
    // level 0 entry. memflow serves only [0, 2^47) and [2^64 - 2^47, 2^64).
    let in_memflow_halves = |va: u64| !(1 << 47..UPPER_HALF).contains(&va);
    map(
        "aarch64",
        arm.image.bytes(),
        aarch64::ARCH,
        arm_translator,
        &|| {
            arm_paging.leaves(&arm_memory).runs().fold(0, |sum, run| {
                let bytes = run.map_or(0, |r| {
                    if in_memflow_halves(r.va.0) {
                        r.bytes
                    } else {
                        0
                    }
                });
                sum.wrapping_add(bytes)
            })
        },
        rounds,
    );

    for machine in [common::linux("la48"), common::windows_like()] {
        scan_limit(&machine, rounds);
    }
}

/// Every mapping merged into runs, ours against memflow's: the bytes mapped
/// (equal) and the time.
fn map<T: VirtualTranslate3>(
    arch: &str,
    image: &[u8],
    arch_obj: ArchitectureObj,
    translator: T,
    ours: &dyn Fn() -> u64,
    rounds: usize,
) {
    let dma = RefCell::new(VirtualDma::with_vat(
        memflow_peer::memory(image),
        arch_obj,
        translator,
        DirectTranslate::new(),
    ));
    let theirs = || {
        let mut dma = dma.borrow_mut();
        let mut bytes = 0;
        for (start, end) in [(0, UPPER_HALF >> 16), (UPPER_HALF, u64::MAX)] {
            let mut add = |t: VirtualTranslation| {
                bytes += t.size;
                true
            };
            dma.virt_translation_map_range(
                Address::from(start),
                Address::from(end),
                (&mut add).into(),
            );
        }
        bytes
    };
    let contenders: Vec<(&str, Contender<'_>)> =
        vec![("vmwalk", Box::new(ours)), ("memflow", Box::new(theirs))];
    let sums: Vec<u64> = contenders.iter().map(|(_, run)| run()).collect();
    assert_eq!(sums[0], sums[1], "{arch}: memflow maps as many bytes");
    let times = medians(&contenders, rounds.div_ceil(10), 1);
    for ((who, _), time) in contenders.iter().zip(times) {
        println!("memflow/{arch}/map/{who} {time:.3}");
    }
}

/// Enumeration against reading every word of the table pages it visits.
fn scan_limit(machine: &common::Machine, rounds: usize) {
    let memory: ImageMemory<'_> = machine.image.memory();
    let paging = machine.paging;
    let words = machine.image.words();
    let visited = common::visited_tables(machine);
    let contenders: Vec<(&str, Contender<'_>)> = vec![
        (
            "enumerate",
            Box::new(|| {
                paging.leaves(black_box(&memory)).fold(0u64, |sum, leaf| {
                    sum.wrapping_add(leaf.map_or(0, |m| m.pa.0))
                })
            }),
        ),
        (
            "read_tables",
            Box::new(|| {
                black_box(&visited).iter().fold(0u64, |sum, &table| {
                    let start = (table / 8) as usize;
                    words[start..start + 512]
                        .iter()
                        .fold(sum, |sum, &word| sum.wrapping_add(word))
                })
            }),
        ),
    ];
    let times = medians(&contenders, rounds.div_ceil(4), 1);
    for ((what, _), time) in contenders.iter().zip(times) {
        println!("scan/{}/{what} {time:.3}", machine.name);
    }
    println!("scan/{}/tables {}", machine.name, visited.len());
}
