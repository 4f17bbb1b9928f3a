//! The walker against the `x86_64` crate and the memory-latency limit, on one
//! image with a realistic mix of 4 KiB / 2 MiB / 1 GiB mappings and on the
//! committed Linux-guest fixtures; ranged against independent walks; full
//! enumeration. `scripts/bench.sh` turns the results into ratios.
//!
//! With `VMWALK_BENCH_EXPORT=DIR`, it also writes for `scripts/bench_peers.py`
//! the Linux 4-level guest's addresses and our answers (`DIR/linux_la48.*`).
// Bench code on a 64-bit host: index casts cannot truncate.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::fmt::Write as _;
use std::hint::black_box;

use common::{BATCH, Machine, pointer_chase};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vmwalk::walker::{ImageMemory, Paging, PagingMode, PhysicalMemory, VirtAddr};
use x86_64::structures::paging::OffsetPageTable;
use x86_64::structures::paging::mapper::{Translate as _, TranslateResult};

/// Linux's espfix area (PML4 slot 510): 65 536 aliases of a few pages. Left
/// out of random addresses so they are not mostly one PT, and because
/// volatility3 reads its all-identical tables as unmapped.
const ESPFIX: std::ops::Range<u64> = 0xffff_ff00_0000_0000..0xffff_ff80_0000_0000;

/// Sums translations so none can be optimised away.
fn translate_all<M: PhysicalMemory + ?Sized>(
    paging: &Paging,
    memory: &M,
    addresses: &[u64],
) -> u64 {
    addresses.iter().fold(0, |sum, &va| {
        let pa = paging.translate(memory, VirtAddr(va)).map_or(0, |t| t.pa.0);
        sum.wrapping_add(pa)
    })
}

fn translate_all_x86_64(table: &OffsetPageTable<'_>, addresses: &[u64]) -> u64 {
    addresses.iter().fold(0, |sum, &va| {
        let pa = match table.translate(x86_64::VirtAddr::new(va)) {
            TranslateResult::Mapped { frame, offset, .. } => {
                frame.start_address().as_u64() + offset
            }
            TranslateResult::NotMapped | TranslateResult::InvalidFrameAddress(_) => 0,
        };
        sum.wrapping_add(pa)
    })
}

fn chase_all(machine: &Machine, plan: &[(u64, u32)]) -> u64 {
    fn sum<const LEVELS: u32>(words: &[u64], root: u64, plan: &[(u64, u32)]) -> u64 {
        plan.iter().fold(0, |sum, &(va, loads)| {
            sum.wrapping_add(pointer_chase::<LEVELS>(words, root, va, loads))
        })
    }
    let (words, root) = (machine.image.words(), machine.paging.root().0);
    match machine.paging.mode() {
        PagingMode::FourLevel => sum::<4>(words, root, plan),
        PagingMode::FiveLevel => sum::<5>(words, root, plan),
    }
}

/// Single translations of random mapped addresses: ours, the pointer chase
/// and (4-level) the `x86_64` crate, on the same memory and addresses.
fn single_translation(c: &mut Criterion, machine: &Machine, addresses: &[u64]) {
    let plan = machine.chase_plan(addresses);
    let expected = translate_all(&machine.paging, &machine.image.memory(), addresses);
    assert_eq!(
        chase_all(machine, &plan),
        expected,
        "the chase computes the same addresses"
    );
    let mut group = c.benchmark_group(format!("{}/translate", machine.name));
    group.throughput(Throughput::Elements(BATCH as u64));
    {
        let (paging, memory) = (machine.paging, machine.image.memory());
        group.bench_function("vmwalk", |b| {
            b.iter(|| translate_all(&paging, black_box(&memory), black_box(addresses)));
        });
    }
    group.bench_function("pointer_chase", |b| {
        b.iter(|| chase_all(black_box(machine), black_box(&plan)));
    });
    if machine.paging.mode() == PagingMode::FourLevel {
        let mut level_4 = machine.image.x86_64_level_4(machine.paging.root().0);
        let table = machine.image.x86_64_table(&mut level_4);
        assert_eq!(
            translate_all_x86_64(&table, addresses),
            expected,
            "x86_64 agrees"
        );
        group.bench_function("x86_64", |b| {
            b.iter(|| translate_all_x86_64(black_box(&table), black_box(addresses)));
        });
    }
    group.finish();
}

/// Every leaf of the image.
fn enumeration(c: &mut Criterion, machine: &Machine) {
    let memory = machine.image.memory();
    let leaves = machine.paging.leaves(&memory).count();
    assert_eq!(leaves, machine.leaves.len());
    let mut group = c.benchmark_group(format!("{}/enumerate", machine.name));
    group.throughput(Throughput::Elements(leaves as u64));
    group.bench_function("vmwalk", |b| {
        b.iter(|| {
            black_box(&machine.paging)
                .leaves(black_box(&memory))
                .fold(0u64, |sum, leaf| {
                    sum.wrapping_add(leaf.map_or(0, |m| m.pa.0))
                })
        });
    });
    group.finish();
}

/// `BATCH` consecutive 4 KiB pages from `first`: one ranged translation
/// against independent walks.
fn ranged(c: &mut Criterion, machine: &Machine, label: &str, first: u64) {
    let memory = machine.image.memory();
    let paging = machine.paging;
    let last = first + (BATCH as u64) * 4096 - 1;
    let pages: Vec<u64> = (0..BATCH as u64).map(|i| first + i * 4096).collect();
    let ranged_sum = |paging: &Paging, memory: &ImageMemory<'_>| {
        paging
            .translate_range(memory, VirtAddr(first), VirtAddr(last))
            .expect("canonical range")
            .fold(0u64, |sum, page| {
                sum.wrapping_add(page.pa().map_or(0, |pa| pa.0))
            })
    };
    assert_eq!(
        ranged_sum(&paging, &memory),
        translate_all(&paging, &memory, &pages)
    );
    let mut group = c.benchmark_group(format!("{}/range", machine.name));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::new("ranged", label), |b| {
        b.iter(|| ranged_sum(black_box(&paging), black_box(&memory)));
    });
    group.bench_function(BenchmarkId::new("independent", label), |b| {
        b.iter(|| translate_all(black_box(&paging), black_box(&memory), black_box(&pages)));
    });
    group.finish();
}

/// For `scripts/bench_peers.py`: the addresses, our translations, and our
/// enumeration's totals, so the peers are run on the same work and checked.
fn export(machine: &Machine, addresses: &[u64]) {
    let Some(dir) = std::env::var_os("VMWALK_BENCH_EXPORT") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("export directory");
    let memory = machine.image.memory();
    let mut text = String::new();
    for &va in addresses {
        let pa = machine
            .paging
            .translate(&memory, VirtAddr(va))
            .expect("mapped");
        writeln!(text, "{va:#x} {:#x}", pa.pa.0).expect("write");
    }
    let path = dir.join(format!("{}.translations", machine.name));
    std::fs::write(&path, text).expect("write translations");
    // Leaves under a table whose 512 entries are all equal: volatility3 skips them.
    let uniform = |table: u64| {
        let first = machine.image.read_u64(table);
        (0..512).all(|i| machine.image.read_u64(table + 8 * i) == first)
    };
    let (mut uniform_pages, mut phys_end) = (0, machine.image.bytes().len() as u64);
    for &(va, size) in &machine.leaves {
        let t = machine
            .paging
            .translate(&memory, VirtAddr(va))
            .expect("leaf");
        if t.path.as_slice().iter().any(|v| uniform(v.addr.0 & !0xfff)) {
            uniform_pages += size / 4096;
        }
        phys_end = phys_end.max(t.pa.0 + size);
    }
    let pages: u64 = machine.leaves.iter().map(|&(_, size)| size / 4096).sum();
    let summary = format!(
        "cr3={:#x}\nphys_end={phys_end:#x}\nleaves={}\npages_4k={pages}\npages_4k_in_uniform_tables={uniform_pages}\n",
        machine.paging.root().0,
        machine.leaves.len(),
    );
    std::fs::write(dir.join(format!("{}.summary", machine.name)), summary).expect("write summary");
}

fn mixed_image(c: &mut Criterion) {
    let machine = common::mixed();
    // 60 % of addresses in 4 KiB pages, 30 % in 2 MiB, 10 % in 1 GiB.
    let addresses = machine.random_addresses([60, 30, 10], |_| false);
    single_translation(c, &machine, &addresses);
    ranged(c, &machine, "4k", common::HEAP_RANGE);
    ranged(c, &machine, "2m", 0xffff_ffff_8000_0000);
    enumeration(c, &machine);
}

fn linux_images(c: &mut Criterion) {
    for name in ["la48", "la57"] {
        let machine = common::linux(name);
        let addresses = machine.random_addresses([60, 30, 10], |va| ESPFIX.contains(&va));
        export(&machine, &addresses);
        single_translation(c, &machine, &addresses);
        enumeration(c, &machine);
    }
}

criterion_group!(benches, mixed_image, linux_images);
criterion_main!(benches);
