//! What one walk of an address found, and how it is logged: shared by the
//! x64 and ARM64 walks (`x64.rs`, `arm64.rs`) and by `inspect.rs`, which
//! drives them, so that neither architecture imports its driver back.

use core::fmt;

use super::api::KernelApi;
use super::line::log;
use super::physical::CopyFailed;
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL};
use crate::walker::{Architecture, Fault, Path, PhysAddr, Translation, VirtAddr, aarch64, x86_64};

/// Where Windows splits user and system space.
#[derive(Clone, Copy)]
pub(super) struct Split {
    highest_user: u64,
    system_start: u64,
}

impl Split {
    /// `MmHighestUserAddress` and `MmSystemRangeStart`.
    pub(super) fn of<K: KernelApi>(kernel: &K) -> Self {
        Self {
            highest_user: kernel.mm_highest_user_address().addr() as u64,
            system_start: kernel.mm_system_range_start().addr() as u64,
        }
    }

    /// Logs both values.
    pub(super) fn log<K: KernelApi>(self, kernel: &K) {
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: MmHighestUserAddress {:#x}, MmSystemRangeStart {:#x}\n",
                self.highest_user, self.system_start
            ),
        );
    }

    pub(super) const fn side(self, va: u64) -> &'static str {
        if va <= self.highest_user {
            "user space"
        } else if va >= self.system_start {
            "kernel space"
        } else {
            "neither side"
        }
    }
}

/// Where a walk ended: the physical address, the leaf entry's, and the leaf.
#[derive(Clone, Copy)]
pub(super) struct Walked {
    pub(super) pa: PhysAddr,
    pub(super) leaf_entry: PhysAddr,
    pub(super) leaf: Leaf,
}

/// The entries a walk read, whether it translated or not.
pub(super) const fn path_of<A: Architecture>(
    result: &Result<Translation<A>, Fault<A, CopyFailed>>,
) -> Path<A> {
    match result {
        Ok(translation) => translation.path,
        Err(fault) => fault.path,
    }
}

/// What a walk found, in the driver's terms: `leaf` and `failed` name the
/// architecture's mapping and fault.
pub(super) fn walked<A: Architecture>(
    result: Result<Translation<A>, Fault<A, CopyFailed>>,
    leaf: fn(A::Mapping) -> Leaf,
    failed: fn(A::FaultKind<CopyFailed>) -> WalkFailed,
) -> Result<Walked, WalkFailed> {
    match result {
        Ok(translation) => Ok(Walked {
            pa: translation.pa,
            leaf_entry: translation
                .path
                .last()
                .map_or(PhysAddr(0), |leaf| leaf.addr),
            leaf: leaf(translation.mapping),
        }),
        Err(fault) => Err(failed(fault.kind)),
    }
}

/// The page or large page a walk ended in.
#[derive(Clone, Copy)]
pub(super) enum Leaf {
    X64(x86_64::Mapping),
    Arm64(aarch64::Mapping),
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X64(mapping) => mapping.fmt(f),
            Self::Arm64(mapping) => mapping.fmt(f),
        }
    }
}

/// Why a walk did not translate, in the architecture's terms.
pub(super) enum WalkFailed {
    X64(x86_64::FaultKind<CopyFailed>),
    Arm64(aarch64::FaultKind<CopyFailed>),
}

impl fmt::Display for WalkFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X64(kind) => kind.fmt(f),
            Self::Arm64(kind) => kind.fmt(f),
        }
    }
}

/// Logs the block `!pte va` prints, after a line saying so: each
/// architecture's `PteBlock` lines.
pub(super) fn log_pte_block<K: KernelApi, L: fmt::Display>(
    kernel: &K,
    va: u64,
    lines: impl IntoIterator<Item = L>,
) {
    log(
        kernel,
        DPFLTR_INFO_LEVEL,
        format_args!("vmwalk: as !pte {va:#x} shows it:\n"),
    );
    for line in lines {
        log(kernel, DPFLTR_INFO_LEVEL, format_args!("vmwalk: {line}\n"));
    }
}

/// How one architecture's self-map lines name its table and entry.
pub(super) struct SelfMapTexts {
    /// The entry found: `PML4 entry`.
    pub(super) entry: &'static str,
    /// What it maps: `maps its own table`.
    pub(super) maps: &'static str,
    /// The line when there is none.
    pub(super) none: &'static str,
    /// The table read: `the PML4`.
    pub(super) table: &'static str,
}

/// Logs the outcome of a self-map search: its index and PTE base, that
/// there is none, or why the table could not be read; the self-map found.
pub(super) fn log_self_map<K: KernelApi, S: Copy, E: fmt::Display>(
    kernel: &K,
    found: Result<Option<S>, E>,
    texts: &SelfMapTexts,
    index_and_base: impl Fn(S) -> (u64, VirtAddr),
) -> Option<S> {
    match found {
        Ok(Some(map)) => {
            let (index, base) = index_and_base(map);
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!(
                    "vmwalk: self-map: {} {index:#x} ({index}) {}; PTE base {:#018x}\n",
                    texts.entry, texts.maps, base.0
                ),
            );
            Some(map)
        }
        Ok(None) => {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!("vmwalk: self-map: {}\n", texts.none),
            );
            None
        }
        Err(error) => {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: self-map: reading {} failed: {error}\n",
                    texts.table
                ),
            );
            None
        }
    }
}
