//! The walker's answers in the model's terms.

use vmwalk::walker::x86_64::{Fault, FaultKind, Level, Mapping, Paging, PagingMode, Translation};

use super::{Cpu, Outcome, Words, canonical, enumerate};
use vmwalk::walker::{PhysicalMemory, VirtAddr};

pub fn paging_of(cpu: Cpu, cr3: u64) -> Paging {
    let mode = if cpu.levels == 5 {
        PagingMode::FiveLevel
    } else {
        PagingMode::FourLevel
    };
    Paging::new(cr3, mode)
        .with_nx(cpu.nxe)
        .with_gigabyte_pages(cpu.gb_pages)
        .with_max_phys_bits(cpu.maxphy)
        .unwrap()
}

fn depth_of(paging: &Paging, level: Level) -> u32 {
    paging
        .mode()
        .levels()
        .iter()
        .position(|l| *l == level)
        .unwrap() as u32
}

fn mapped(m: &Mapping, pa: u64) -> Outcome {
    Outcome::Mapped {
        pa,
        size: m.size.bytes(),
        w: m.access.writable,
        u: m.access.user,
        x: m.access.executable,
        leaf: m.entry.0,
    }
}

pub fn fault_outcome<E>(paging: &Paging, fault: &Fault<E>) -> Outcome {
    match fault.kind {
        FaultKind::NonCanonical { .. } => Outcome::NonCanonical,
        FaultKind::NotPresent { level, .. } => Outcome::NotPresent {
            depth: depth_of(paging, level),
        },
        FaultKind::ReservedBit { level, .. } => Outcome::Reserved {
            depth: depth_of(paging, level),
        },
        FaultKind::ReadFailed { level, .. } => Outcome::Unreadable {
            depth: depth_of(paging, level),
        },
    }
}

pub fn translation_outcome<E>(paging: &Paging, result: &Result<Translation, Fault<E>>) -> Outcome {
    match result {
        Ok(t) => mapped(&t.mapping, t.pa.0),
        Err(f) => fault_outcome(paging, f),
    }
}

/// Enumerated leaves (and skipped entries) as (va, outcome).
pub fn leaf_outcomes<E>(
    paging: &Paging,
    items: impl Iterator<Item = Result<Mapping, Fault<E>>>,
) -> Vec<(u64, Outcome)> {
    items
        .map(|item| match item {
            Ok(m) => (m.va.0, mapped(&m, m.pa.0)),
            Err(f) => (f.va.0, fault_outcome(paging, &f)),
        })
        .collect()
}

/// `leaves_in` over linear `first..=last` agrees with the model's enumeration.
pub fn assert_range_agrees<M: PhysicalMemory>(
    paging: &Paging,
    memory: &M,
    words: &Words,
    cpu: Cpu,
    cr3: u64,
    (first, last): (u64, u64),
    context: &str,
) {
    let leaves = || {
        paging
            .leaves_in(
                memory,
                VirtAddr(canonical(cpu, first)),
                VirtAddr(canonical(cpu, last)),
            )
            .unwrap()
    };
    let model = enumerate(words, cpu, cr3, first, last);
    assert_eq!(
        leaf_outcomes(paging, leaves()),
        model,
        "{context} range {first:#x}..={last:#x}"
    );
    // Internal iteration has its own loop (tables held whole scanned by
    // their present bits, kept for the next visit).
    let folded = leaves().fold(Vec::new(), |mut outcomes, item| {
        outcomes.extend(leaf_outcomes(paging, core::iter::once(item)));
        outcomes
    });
    assert_eq!(
        folded, model,
        "{context} range {first:#x}..={last:#x}: fold"
    );
}
