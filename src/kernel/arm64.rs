//! The driver's walks on ARM64: `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1`,
//! the level 0 self-map, and each descriptor with the virtual address
//! Windows gives it.

use super::api::{Arm64Registers, KernelApi};
use super::line::log;
use super::physical::KernelMemory;
use super::walk::{self, Leaf, SelfMapTexts, Split, WalkFailed, Walked};
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL};
use crate::walker::VirtAddr;
use crate::walker::aarch64::windbg::PteBlock;
use crate::walker::aarch64::{Paging, Path, SelfMap, VaRange};

/// The translation regime and the self-map.
pub(super) struct Arm64Tables {
    paging: Paging,
    self_map: Option<SelfMap>,
}

impl Arm64Tables {
    /// Reads the regime from `registers`, logging it; `None` (logged) when
    /// `TCR_EL1` describes a translation the walker does not model.
    pub(super) fn new<K: KernelApi>(
        kernel: &K,
        registers: Arm64Registers,
        split: Split,
        memory: &KernelMemory<'_, K>,
    ) -> Option<Self> {
        let Arm64Registers { ttbr0, ttbr1, tcr } = registers;
        let paging = match Paging::from_registers(ttbr0, ttbr1, tcr) {
            Ok(paging) => paging,
            Err(error) => {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!(
                        "vmwalk: paging: TTBR0_EL1 {ttbr0:#x} TTBR1_EL1 {ttbr1:#x} TCR_EL1 {tcr:#x}: {error}; no address is walked\n"
                    ),
                );
                return None;
            }
        };
        let (lower, upper) = (paging.range(VaRange::Lower), paging.range(VaRange::Upper));
        let shared_table = lower.table_base() & !0xfff == upper.table_base() & !0xfff;
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: paging: TTBR0_EL1 {ttbr0:#x} TTBR1_EL1 {ttbr1:#x} TCR_EL1 {tcr:#x}, {}-bit lower and {}-bit upper range, {}-bit output, 4 KiB granule\n",
                lower.va_bits,
                upper.va_bits,
                paging.pa_bits()
            ),
        );
        if shared_table {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!(
                    "vmwalk: TTBR0_EL1's table (phys {:#x}) and TTBR1_EL1's ({:#x}) are one page: user and kernel entries in one top-level table\n",
                    lower.table_base(),
                    upper.table_base()
                ),
            );
        } else {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!(
                    "vmwalk: TTBR0_EL1's table is at phys {:#x}, TTBR1_EL1's at {:#x}\n",
                    lower.table_base(),
                    upper.table_base()
                ),
            );
        }
        split.log(kernel);
        Some(Self {
            paging,
            self_map: find_self_map(kernel, &paging, memory),
        })
    }

    /// Logs each descriptor of `va`'s walk with its virtual address.
    pub(super) fn walk<K: KernelApi>(
        &self,
        kernel: &K,
        memory: &KernelMemory<'_, K>,
        va: u64,
    ) -> Result<Walked, WalkFailed> {
        let result = self.paging.translate(memory, VirtAddr(va));
        let path = walk::path_of(&result);
        let range = VaRange::of(va);
        if !path.is_empty() {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!(
                    "vmwalk:   through {range}, table at phys {:#x}\n",
                    self.paging.range(range).table_base()
                ),
            );
        }
        let self_map = self
            .self_map
            .filter(|map| map.names(&self.paging, VirtAddr(va)));
        for visited in path.iter() {
            let kind = visited.entry.kind(visited.level);
            let (level, at, descriptor) = (visited.level, visited.addr.0, visited.entry);
            match self_map {
                Some(map) => log(
                    kernel,
                    DPFLTR_INFO_LEVEL,
                    format_args!(
                        "vmwalk:   {level} descriptor at {:#018x} (phys {at:#x}): {descriptor} {kind}\n",
                        map.entry_address(VirtAddr(va), level).0
                    ),
                ),
                None => log(
                    kernel,
                    DPFLTR_INFO_LEVEL,
                    format_args!(
                        "vmwalk:   {level} descriptor at phys {at:#x}: {descriptor} {kind}\n"
                    ),
                ),
            }
        }
        if let Some(map) = self_map {
            log_pte_block(kernel, map, va, &path);
        }
        walk::walked(result, Leaf::Arm64, WalkFailed::Arm64)
    }
}

/// Logs the block `!pte va` prints on ARM64, line for line.
fn log_pte_block<K: KernelApi>(kernel: &K, self_map: SelfMap, va: u64, path: &Path) {
    // An address outside both ranges has no descriptors to show.
    if path.is_empty() {
        return;
    }
    let block = PteBlock {
        va: VirtAddr(va),
        path,
        self_map,
    };
    walk::log_pte_block(kernel, va, block.lines());
}

/// Finds and logs the level 0 descriptor that maps its own table.
fn find_self_map<K: KernelApi>(
    kernel: &K,
    paging: &Paging,
    memory: &KernelMemory<'_, K>,
) -> Option<SelfMap> {
    let found = SelfMap::find(paging, memory);
    let texts = SelfMapTexts {
        entry: "TTBR1_EL1's level 0 entry",
        maps: "maps the page it is in",
        none: "no level 0 entry of TTBR1_EL1's table maps the page it is in",
        table: "TTBR1_EL1's level 0 table",
    };
    walk::log_self_map(kernel, found, &texts, |map| (map.index(), map.pte_base()))
}
