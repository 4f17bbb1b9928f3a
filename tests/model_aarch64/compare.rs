//! The walker's answers in the model's terms.

use vmwalk::walker::aarch64::{Fault, FaultKind, Mapping, Paging, Translation};

use super::{Outcome, Regs};

pub fn paging_of(regs: Regs) -> Option<Paging> {
    Paging::from_registers(regs.ttbr0, regs.ttbr1, regs.tcr).ok()
}

pub fn mapped(m: &Mapping, pa: u64) -> Outcome {
    let a = m.access;
    Outcome::Mapped {
        base: m.va.0,
        pa,
        size: m.size.bytes(),
        pw: a.privileged_write,
        ur: a.unprivileged_read,
        uw: a.unprivileged_write,
        px: a.privileged_execute,
        ux: a.unprivileged_execute,
        leaf: m.descriptor.0,
        af_fault: m.access_flag_fault,
    }
}

pub fn fault_outcome<E>(fault: &Fault<E>) -> Outcome {
    match fault.kind {
        FaultKind::OutsideRanges { .. } => Outcome::OutOfRange,
        FaultKind::WalksDisabled { .. } => Outcome::WalkDisabled,
        FaultKind::TableBaseBeyondPaSize { .. } => Outcome::BaseAddressSize,
        FaultKind::Invalid { level, .. } => Outcome::Invalid {
            level: level.number().into(),
        },
        FaultKind::Reserved { level, .. } => Outcome::Reserved {
            level: level.number().into(),
        },
        FaultKind::AddressSize { level, .. } => Outcome::AddressSize {
            level: level.number().into(),
        },
        FaultKind::ReadFailed { level, .. } => Outcome::Unreadable {
            level: level.number().into(),
        },
    }
}

pub fn translation_outcome<E>(result: &Result<Translation, Fault<E>>) -> Outcome {
    match result {
        Ok(t) => mapped(&t.mapping, t.pa.0),
        Err(f) => fault_outcome(f),
    }
}

/// Enumerated leaves and faults as (va, outcome).
pub fn leaf_outcomes<E>(
    items: impl Iterator<Item = Result<Mapping, Fault<E>>>,
) -> Vec<(u64, Outcome)> {
    items.map(|item| leaf_outcome(&item)).collect()
}

/// [`leaf_outcomes`] through the iterator's `fold` (its internal
/// iteration), not `next`.
pub fn fold_outcomes<E>(
    items: impl Iterator<Item = Result<Mapping, Fault<E>>>,
) -> Vec<(u64, Outcome)> {
    items.fold(Vec::new(), |mut outcomes, item| {
        outcomes.push(leaf_outcome(&item));
        outcomes
    })
}

fn leaf_outcome<E>(item: &Result<Mapping, Fault<E>>) -> (u64, Outcome) {
    match item {
        Ok(m) => (m.va.0, mapped(m, m.pa.0)),
        Err(f) => (f.va.0, fault_outcome(f)),
    }
}
