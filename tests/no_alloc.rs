//! The walker never allocates: translation (mapped or faulting), the caching
//! walker, ranged translation and enumeration are run under a global
//! allocator that counts, over the random page tables of `tests/model`
//! (every page size, fault and unreadable table) and a Linux-like layout.
// Test code on a 64-bit host: index casts cannot truncate, and `const` buys nothing.
#![allow(clippy::cast_possible_truncation, clippy::missing_const_for_fn)]

mod model;
mod model_aarch64;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use model::compare::paging_of;
use model::world::world;
use vmwalk::walker::{ImageMemory, Paging, PagingMode, VirtAddr};

/// Counts the allocations of the current thread (the test harness runs
/// other tests on other threads at the same time).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches
// only a const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations made by `work` on this thread.
fn allocations_in(work: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

/// Everything the walker does, on one image; returns how many answers it gave.
fn walk_everything(paging: &Paging, image: &[u8], probes: &[u64]) -> usize {
    let memory = ImageMemory::new(image);
    let mut answers = 0;
    let mut cached = paging.cached_walker(&memory);
    for &va in probes {
        black_box(paging.translate(&memory, VirtAddr(va)).ok());
        black_box(cached.translate(VirtAddr(va)).ok());
        answers += 2;
    }
    for leaf in paging.leaves(&memory) {
        black_box(leaf.ok());
        answers += 1;
    }
    answers += paging
        .leaves(&memory)
        .fold(0, |n, leaf| n + usize::from(leaf.is_ok()));
    answers += paging.leaves(&memory).runs().count();
    let bits = paging.mode().address_bits();
    let (low_end, high_start) = ((1u64 << (bits - 1)) - 1, u64::MAX << (bits - 1));
    for (first, last) in [
        (0, 0x3f_ffff),
        (high_start, high_start + 0x3f_ffff),
        (low_end - 0x1f_ffff, low_end),
    ] {
        let range = paging.translate_range(&memory, VirtAddr(first), VirtAddr(last));
        for page in range.into_iter().flatten() {
            black_box(page.pa());
            answers += 1;
        }
        let range = paging.translate_range(&memory, VirtAddr(first), VirtAddr(last));
        answers += range
            .into_iter()
            .flatten()
            .fold(0, |n, page| n + usize::from(page.mapping.is_some()));
    }
    answers
}

#[test]
fn the_walker_never_allocates() {
    // Built before counting: the images and the probes are the test's, not the walker's.
    let worlds: Vec<_> = (0..200).map(world).collect();
    let mut total = 0;
    for (seed, world) in worlds.iter().enumerate() {
        let paging = paging_of(world.cpu, world.cr3);
        let allocations = allocations_in(|| {
            total += walk_everything(&paging, &world.image, &world.probes);
        });
        assert_eq!(allocations, 0, "seed {seed}: the walker allocated");
    }

    // A 4-level table with a PT of 4 KiB pages, a 2 MiB and a 1 GiB page.
    let mut image = vec![0u8; 5 * 4096];
    let mut put =
        |addr: usize, value: u64| image[addr..addr + 8].copy_from_slice(&value.to_le_bytes());
    put(0x1000, 0x2000 | 0x7); // PML4[0] -> PDPT
    put(0x2000, 0x3000 | 0x7); // PDPT[0] -> PD
    put(0x2008, 0x4000_0000 | 0x87); // PDPT[1]: 1 GiB page
    put(0x3000, 0x4000 | 0x7); // PD[0] -> PT
    put(0x3008, 0x20_0000 | 0x87); // PD[1]: 2 MiB page
    for i in 0..512 {
        put(0x4000 + 8 * i, ((0x100 + i as u64) << 12) | 0x7);
    }
    let paging = Paging::new(0x1000, PagingMode::FourLevel);
    let probes: Vec<u64> = (0..64)
        .map(|i| i * 0x3_0000 + 0x123)
        .chain([0x4000_1234, u64::MAX])
        .collect();
    let allocations = allocations_in(|| total += walk_everything(&paging, &image, &probes));
    assert_eq!(
        allocations, 0,
        "the walker allocated on the 4 KiB/2 MiB/1 GiB table"
    );

    // The counter works: this allocates.
    assert!(allocations_in(|| drop(black_box(vec![0u8; 16]))) > 0);
    assert!(total > 10_000, "only {total} answers");
}

#[test]
fn the_aarch64_walker_never_allocates() {
    let worlds: Vec<_> = (0..200).map(model_aarch64::world::world).collect();
    let mut answers = 0;
    for (seed, world) in worlds.iter().enumerate() {
        let Some(paging) = model_aarch64::compare::paging_of(world.regs) else {
            continue;
        };
        let memory = ImageMemory::new(&world.image);
        let allocations = allocations_in(|| {
            for &va in &world.probes {
                black_box(paging.translate(&memory, VirtAddr(va)).ok());
                answers += 1;
            }
            answers += paging.leaves(&memory).count() + paging.leaves(&memory).runs().count();
        });
        assert_eq!(allocations, 0, "seed {seed}: the AArch64 walker allocated");
    }
    assert!(answers > 10_000, "only {answers} answers");
}
