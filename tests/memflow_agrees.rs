//! memflow 0.2.4, the peer of `benches/memflow.rs`, gives our answers on the
//! benchmark's images, address for address; where it cannot, the test
//! names why and checks that the difference is exactly that:
//!
//! - `AArch64`: memflow sign-extends bit 47 as on x86-64 and takes no
//!   `TCR_EL1`, so with 48-bit ranges (T0SZ = T1SZ = 16) it refuses
//!   `[2^47, 2^64 - 2^47)`, which both TTBRs translate.
//! - Large pages: memflow ORs the leaf's bits 12 and up into the address
//!   (`mmu/spec.rs`), so a 2 MiB leaf with PAT (bit 12, Intel SDM vol. 3A,
//!   table 4-18) gives another frame; the CPU, and we, ignore PAT there.
//! - Reserved bits: memflow checks none; an entry with a bit above
//!   MAXPHYADDR set faults on the CPU (and here) and translates in memflow.
//! - Batches: memflow's batch walk takes a leaf equal to the one before it
//!   for a different page as unmapped (a guard against tables whose entries
//!   are all equal), so pages aliased through shared tables (Linux's espfix
//!   area) fail in its batches; its one-address calls find them.
#![allow(clippy::cast_possible_truncation, reason = "test images of a few MiB")]

#[path = "../benches/common/mod.rs"]
mod common;

use common::memflow_peer::{Memory, batch, memory, one};
use memflow::architecture::arm::aarch64;
use memflow::architecture::x86::x64;
use memflow::prelude::v1::*;
use vmwalk::walker::{Paging, PagingMode, VirtAddr};

/// memflow's batch translation of `vas`.
fn memflow_batch<T: VirtualTranslate3>(
    memory: &mut Memory<'_>,
    translator: &T,
    vas: &[u64],
) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    batch(
        memory,
        &mut DirectTranslate::with_capacity(16 << 20),
        translator,
        vas,
        &mut out,
    );
    out
}

/// Our answers for `vas` on `machine`, after checking that memflow gives
/// each of them one address at a time.
fn ours_and_memflow_one_at_a_time(machine: &common::Machine, vas: &[u64]) -> Vec<Option<u64>> {
    let ours = machine.image.memory();
    let mut theirs = memory(machine.image.bytes());
    let translator = x64::new_translator(Address::from(machine.paging.root().0));
    let want: Vec<Option<u64>> = vas
        .iter()
        .map(|&va| {
            machine
                .paging
                .translate(&ours, VirtAddr(va))
                .ok()
                .map(|t| t.pa.0)
        })
        .collect();
    for (&va, &pa) in vas.iter().zip(&want) {
        assert_eq!(one(&mut theirs, &translator, va), pa, "{va:#x}");
    }
    want
}

/// Addresses to compare on `machine`: the benchmark's random ones, the
/// first and last byte of every leaf, and the page after each leaf.
fn addresses(machine: &common::Machine) -> Vec<u64> {
    let mut vas = machine.random_addresses_of(4096, [60, 30, 10], |_| false);
    for &(va, size) in &machine.leaves {
        vas.extend([va, va + size - 1, va.wrapping_add(size)]);
    }
    vas
}

#[test]
fn x86_64_memflow_gives_our_answer_for_every_address_one_at_a_time_and_in_batches() {
    let machine = common::mixed();
    let vas = addresses(&machine);
    let want = ours_and_memflow_one_at_a_time(&machine, &vas);
    assert!(
        want.iter().filter(|pa| pa.is_some()).count() > 4096,
        "most addresses translate"
    );
    let mut theirs = memory(machine.image.bytes());
    let translator = x64::new_translator(Address::from(machine.paging.root().0));
    assert_eq!(memflow_batch(&mut theirs, &translator, &vas), want);
}

#[test]
fn aarch64_memflow_gives_our_answer_inside_its_two_47_bit_halves_and_refuses_the_rest() {
    let machine = common::mixed();
    let arm = common::mixed_aarch64();
    let ours = arm.image.memory();
    let mut theirs = memory(arm.image.bytes());
    let root = Address::from(arm.root);
    let translator = aarch64::new_translator(root, root);
    let mut vas = addresses(&machine);
    // Inside both 48-bit ranges, outside memflow's halves: the lower range's
    // top half and the upper range's bottom half (the same tables' entries).
    vas.extend(machine.leaves.iter().step_by(97).map(|&(va, _)| {
        if va >> 63 == 1 {
            va & 0x0000_ffff_ffff_ffff // kernel entries, through TTBR0
        } else {
            va | 0xffff_0000_0000_0000 // user entries, through TTBR1
        }
    }));
    let mut outside = 0;
    for &va in &vas {
        let want = arm
            .paging
            .translate(&ours, VirtAddr(va))
            .ok()
            .map(|t| t.pa.0);
        let got = one(&mut theirs, &translator, va);
        if (1 << 47..0xffff_8000_0000_0000).contains(&va) {
            assert_eq!(got, None, "{va:#x}: outside memflow's halves");
            outside += usize::from(want.is_some());
        } else {
            assert_eq!(got, want, "{va:#x}");
        }
    }
    assert!(
        outside >= 64,
        "addresses we translate and memflow refuses: {outside}"
    );
}

/// One 2 MiB page at VA `0x20_0000` from a PD entry `pde`; PML4 0x1000,
/// PDPT 0x2000, PD 0x3000.
fn one_large_page(pde: u64) -> Vec<u8> {
    let mut image = vec![0_u8; 0x4000];
    let mut put = |at: usize, value: u64| image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(0x1000, 0x2003);
    put(0x2000, 0x3003);
    put(0x3008, pde);
    image
}

#[test]
fn a_large_page_with_pat_set_is_another_frame_only_in_memflow() {
    let pat = 1 << 12;
    let image = one_large_page(0x4000_0000 | pat | 0x83);
    let paging = Paging::new(0x1000, PagingMode::FourLevel);
    let va = 0x20_1234;
    let ours = paging.translate(&vmwalk::walker::ImageMemory::new(&image), VirtAddr(va));
    assert_eq!(ours.unwrap().pa.0, 0x4000_1234, "PAT is not an address bit");
    let translator = x64::new_translator(Address::from(0x1000_u64));
    assert_eq!(
        one(&mut memory(&image), &translator, va),
        Some(0x4000_1234 | pat)
    );
}

#[test]
fn a_reserved_bit_faults_here_and_translates_in_memflow() {
    let image = one_large_page(1 << 50 | 0x4000_0000 | 0x83);
    let paging = Paging::new(0x1000, PagingMode::FourLevel)
        .with_max_phys_bits(46)
        .unwrap();
    let va = 0x20_1234;
    let ours = paging.translate(&vmwalk::walker::ImageMemory::new(&image), VirtAddr(va));
    assert!(ours.unwrap_err().kind.to_string().contains("reserved bit"));
    let translator = x64::new_translator(Address::from(0x1000_u64));
    assert_eq!(
        one(&mut memory(&image), &translator, va),
        Some(1 << 50 | 0x4000_1234)
    );
}

#[test]
fn linux_guest_memflow_agrees_one_at_a_time_and_its_batches_miss_only_aliased_pages() {
    let machine = common::linux("la48");
    let ours = machine.image.memory();
    let vas = addresses(&machine);
    let want = ours_and_memflow_one_at_a_time(&machine, &vas);
    let mut theirs = memory(machine.image.bytes());
    let translator = x64::new_translator(Address::from(machine.paging.root().0));
    // Its batches: where they differ, memflow says unmapped, and the leaf
    // entry equals another page's (the aliases it takes for a table of
    // equal entries).
    let got = memflow_batch(&mut theirs, &translator, &vas);
    let mut pages_of_entry = std::collections::HashMap::new();
    for &(va, _) in &machine.leaves {
        let entry = machine
            .paging
            .translate(&ours, VirtAddr(va))
            .unwrap()
            .mapping
            .entry;
        *pages_of_entry.entry(entry).or_insert(0_usize) += 1;
    }
    let mut missed = 0;
    for ((&va, &pa), &batch) in vas.iter().zip(&want).zip(&got) {
        if batch == pa {
            continue;
        }
        assert_eq!(batch, None, "{va:#x}: only misses");
        let leaf = machine
            .paging
            .translate(&ours, VirtAddr(va))
            .unwrap()
            .mapping
            .entry;
        assert!(
            pages_of_entry[&leaf] > 1,
            "{va:#x}: its leaf entry is another page's too"
        );
        missed += 1;
    }
    assert!(missed > 0, "the espfix aliases show memflow's heuristic");
}
