//! The caching walker and ranged translation against `Paging::translate`,
//! over the random page tables of `tests/model/world.rs`: whatever entries
//! they reuse, every answer must be the same (the caching walker's in full:
//! address, mapping, path, fault; the range's page by page: its mapping).
// Test code on a 64-bit host: index casts cannot truncate, and `const` buys nothing.
#![allow(clippy::cast_possible_truncation, clippy::missing_const_for_fn)]

mod model;

use model::compare::paging_of;
use model::world::{Rng, world};
use model::{canonical, linear, width};
use proptest::prelude::*;
use vmwalk::walker::{ImageMemory, Paging, RangeError, VirtAddr};

/// Addresses in an order with locality (as a range or a sorted batch has)
/// and without: each probe, its neighbours in the same page, the next pages,
/// the next 2 MiB and 1 GiB entries, then all of it again shuffled.
fn walk_order(probes: &[u64], rng: &mut Rng) -> Vec<u64> {
    let mut order = Vec::new();
    for &va in probes {
        order.push(va);
        order.push(va ^ 0x8);
        for step in [0x1000, 0x2000, 0x20_0000, 0x4000_0000, 1 << 39] {
            order.push(va.wrapping_add(step));
        }
    }
    let mut shuffled = order.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    order.extend(sorted);
    order.extend(shuffled);
    order
}

fn check_cached_walker(seed: u64) {
    let world = world(seed);
    let memory = ImageMemory::new(&world.image);
    let paging = paging_of(world.cpu, world.cr3);
    let mut walker = paging.cached_walker(&memory);
    let mut rng = Rng(seed ^ 0xa5a5);
    for va in walk_order(&world.probes, &mut rng) {
        let expected = paging.translate(&memory, VirtAddr(va));
        assert_eq!(
            walker.translate(VirtAddr(va)),
            expected,
            "seed {seed} va {va:#x}"
        );
    }
    walker.flush();
    for &va in world.probes.iter().rev() {
        let expected = paging.translate(&memory, VirtAddr(va));
        assert_eq!(
            walker.translate(VirtAddr(va)),
            expected,
            "seed {seed} va {va:#x}"
        );
    }
}

/// Ranges of up to ~1500 pages around probes and at random: they cross PT,
/// PD and PDPT boundaries, large pages and holes.
fn check_ranges(seed: u64) {
    let world = world(seed);
    let memory = ImageMemory::new(&world.image);
    let (cpu, cr3) = (world.cpu, world.cr3);
    let paging = paging_of(cpu, cr3);
    let mut rng = Rng(seed ^ 0x3c3c);
    let top = 1u64 << width(cpu);
    for round in 0..6 {
        let centre = if round % 2 == 0 {
            linear(
                cpu,
                world.probes[rng.below(world.probes.len() as u64) as usize],
            )
        } else {
            rng.below(top)
        };
        let before = rng.below(700) * 0x1000 + rng.below(0x1000);
        let after = rng.below(800) * 0x1000 + rng.below(0x1000);
        let first = centre.saturating_sub(before);
        let last = (centre + after).min(top - 1);
        let (first_va, last_va) = (canonical(cpu, first), canonical(cpu, last));
        let range = || {
            paging
                .translate_range(&memory, VirtAddr(first_va), VirtAddr(last_va))
                .unwrap()
        };
        let expected_pages = (last >> 12) - (first >> 12) + 1;
        assert_eq!(range().size_hint().0 as u64, expected_pages);
        // External iteration (`next`) and internal (`fold`, which runs
        // through PTs in a tighter loop) must both give translate's answers.
        // A `for` loop calls `next`; `for_each` calls `fold`.
        let mut by_next = Vec::new();
        for page in range() {
            by_next.push(page);
        }
        let mut by_fold = Vec::new();
        range().for_each(|page| by_fold.push(page));
        assert_eq!(
            by_next.len() as u64,
            expected_pages,
            "seed {seed} range {first:#x}..={last:#x}"
        );
        assert_eq!(by_fold, by_next, "seed {seed} range {first:#x}..={last:#x}");
        for (i, page) in by_next.iter().enumerate() {
            let va = canonical(cpu, ((first >> 12) + i as u64) << 12);
            let expected = paging.translate(&memory, VirtAddr(va)).ok();
            let at = format!("seed {seed} range {first:#x}..={last:#x} page {va:#x}");
            assert_eq!(page.va, VirtAddr(va), "{at}");
            assert_eq!(page.mapping, expected.map(|t| t.mapping), "{at}");
            assert_eq!(page.pa(), expected.map(|t| t.pa), "{at}");
        }
    }
}

/// The last pages of the address space end the iteration, without overflow.
#[test]
fn range_ends_at_the_top_of_the_address_space() {
    let image = vec![0u8; 0x2000];
    let memory = ImageMemory::new(&image);
    let paging = Paging::new(0x1000, vmwalk::walker::PagingMode::FourLevel);
    let range = paging
        .translate_range(&memory, VirtAddr(0xffff_ffff_ffff_d000), VirtAddr(u64::MAX))
        .unwrap();
    assert_eq!(range.count(), 3);
    assert!(matches!(
        paging.translate_range(&memory, VirtAddr(0x2000), VirtAddr(0x1000)),
        Err(RangeError::Reversed(..))
    ));
    assert!(matches!(
        paging.translate_range(&memory, VirtAddr(0), VirtAddr(1 << 47)),
        Err(RangeError::NonCanonical(..))
    ));
}

/// `leaves_in` gives the leaves that map some byte of the range, by `next`
/// and by `fold` alike, also when the range starts inside an entry of an
/// upper table (a fold that stops at that entry once went on from the
/// entry's first address, listing the leaves below the range; the fuzzer
/// found it).
#[test]
fn a_range_inside_an_upper_entry_lists_only_its_leaves() {
    // PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 (VA 0..2 MiB) and
    // PT 0x5000 (VA 2..4 MiB). Leaves: VA 0 -> 0x10000, VA 0x300000 -> 0x11000.
    let mut image = vec![0u8; 0x6000];
    for (at, value) in [
        (0x1000, 0x2003_u64),
        (0x2000, 0x3003),
        (0x3000, 0x4003),
        (0x3008, 0x5003),
        (0x4000, 0x1_0003),
        (0x5000 + 8 * 0x100, 0x1_1003),
    ] {
        image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    let memory = ImageMemory::new(&image);
    let paging = Paging::new(0x1000, vmwalk::walker::PagingMode::FourLevel);
    let range = || {
        paging
            .leaves_in(&memory, VirtAddr(0x30_0000), VirtAddr(0x30_0fff))
            .unwrap()
    };
    // A leaf as its first virtual and physical addresses; a fault as its address.
    let first_byte = |leaf: Result<vmwalk::walker::Mapping, vmwalk::walker::x86_64::Fault<_>>| {
        leaf.map(|m| (m.va.0, m.pa.0)).map_err(|fault| fault.va.0)
    };
    let stepped: Vec<_> = range().map(first_byte).collect();
    let mut folded = Vec::new();
    range().for_each(|leaf| folded.push(first_byte(leaf)));
    assert_eq!(stepped, [Ok((0x30_0000, 0x1_1000))]);
    assert_eq!(folded, stepped);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cached_walker_matches_translate(seed in any::<u64>()) {
        check_cached_walker(seed);
    }

    #[test]
    fn ranged_translation_matches_translate(seed in any::<u64>()) {
        check_ranges(seed);
    }
}
