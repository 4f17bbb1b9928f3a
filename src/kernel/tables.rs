//! The running processor's tables, whichever architecture it is: the one
//! place that turns its paging registers into an architecture's walk, so
//! that what drives the walks (`inspect.rs`, `named.rs`) never names one.

use super::api::{KernelApi, PagingRegisters};
use super::arm64::Arm64Tables;
use super::physical::KernelMemory;
use super::walk::{Split, WalkFailed, Walked};
use super::x64::X64Tables;

/// The current processor's tables; ARM64's are `None` when its registers
/// describe a translation the walker does not model (logged).
pub(super) enum CpuTables {
    X64(X64Tables),
    Arm64(Option<Arm64Tables>),
}

impl CpuTables {
    /// The tables the current processor's registers describe, each setting logged.
    pub(super) fn new<K: KernelApi>(
        kernel: &K,
        split: Split,
        memory: &KernelMemory<'_, K>,
    ) -> Self {
        match kernel.paging_registers() {
            PagingRegisters::X64(registers) => {
                Self::X64(X64Tables::new(kernel, registers, split, memory))
            }
            PagingRegisters::Arm64(registers) => {
                Self::Arm64(Arm64Tables::new(kernel, registers, split, memory))
            }
        }
    }

    /// Logs the walk of `va`; `None` when these tables are not walked.
    pub(super) fn walk<K: KernelApi>(
        &self,
        kernel: &K,
        memory: &KernelMemory<'_, K>,
        va: u64,
    ) -> Option<Result<Walked, WalkFailed>> {
        match self {
            Self::X64(tables) => Some(tables.walk(kernel, memory, va)),
            Self::Arm64(Some(tables)) => Some(tables.walk(kernel, memory, va)),
            Self::Arm64(None) => None,
        }
    }

    /// Why [`Self::walk`] returned `None`.
    pub(super) const fn not_walked(&self) -> &'static str {
        match self {
            Self::X64(_) | Self::Arm64(Some(_)) => "these tables are walked",
            Self::Arm64(None) => "TCR_EL1 is not walked",
        }
    }
}
