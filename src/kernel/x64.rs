//! The driver's walks on x64: CR3, CR4 and EFER, the PML4 (or PML5)
//! self-map, each entry as `!pte` names it, and the block `!pte` prints.

use super::api::{KernelApi, X64Registers};
use super::line::log;
use super::physical::KernelMemory;
use super::walk::{self, Leaf, SelfMapTexts, Split, WalkFailed, Walked};
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL};
use crate::walker::VirtAddr;
use crate::walker::software_pte::InvalidPteMask;
use crate::walker::windbg::{EntryLine, PteBlock};
use crate::walker::x86_64::{Paging, PagingMode, Path, SelfMap};

/// The paging mode, the self-map and how Windows encodes invalid PTEs.
pub(super) struct X64Tables {
    paging: Paging,
    self_map: Option<SelfMap>,
    invalid_pte_mask: InvalidPteMask,
}

impl X64Tables {
    /// Reads the tables' settings from `registers`, logging each.
    pub(super) fn new<K: KernelApi>(
        kernel: &K,
        registers: X64Registers,
        split: Split,
        memory: &KernelMemory<'_, K>,
    ) -> Self {
        let paging = Paging::from_registers(registers.cr3, registers.cr4, registers.efer)
            .with_gigabyte_pages(registers.gigabyte_pages);
        let paging = paging
            .with_max_phys_bits(registers.max_phys_bits)
            .unwrap_or_else(|error| {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!("vmwalk: {error}; using 52\n"),
                );
                paging
            });
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: paging: CR3 {:#x} CR4 {:#x} EFER {:#x}, MAXPHYADDR {}, {}-level\n",
                registers.cr3,
                registers.cr4,
                registers.efer,
                paging.max_phys_bits(),
                paging.mode().levels().len()
            ),
        );
        split.log(kernel);
        // nt!MiState is not exported: use what Windows computes from MAXPHYADDR.
        let invalid_pte_mask = InvalidPteMask::for_max_phys_bits(paging.max_phys_bits());
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: invalid-PTE mask {:#x} (1 << (MAXPHYADDR - 1), as Windows computes it), removed from non-present entries whose bit 4 is clear\n",
                invalid_pte_mask.0
            ),
        );
        Self {
            paging,
            self_map: find_self_map(kernel, &paging, memory),
            invalid_pte_mask,
        }
    }

    /// Logs each entry of `va`'s walk as `!pte` names it, then the `!pte` block.
    pub(super) fn walk<K: KernelApi>(
        &self,
        kernel: &K,
        memory: &KernelMemory<'_, K>,
        va: u64,
    ) -> Result<Walked, WalkFailed> {
        let result = self.paging.translate(memory, VirtAddr(va));
        let path = walk::path_of(&result);
        for visited in path.as_slice() {
            let virtual_address = self
                .self_map
                .map(|map| map.entry_address(VirtAddr(va), visited.level));
            let line = EntryLine {
                visited,
                virtual_address,
                invalid_pte_mask: self.invalid_pte_mask,
            };
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!("vmwalk:   {line}\n"),
            );
        }
        self.log_pte_block(kernel, va, &path);
        walk::walked(result, Leaf::X64, WalkFailed::X64)
    }

    /// Logs the block `!pte va` prints, line for line (needs the self-map).
    fn log_pte_block<K: KernelApi>(&self, kernel: &K, va: u64, path: &Path) {
        // A non-canonical address has no entries: nothing for `!pte` to show.
        let (Some(self_map), false) = (self.self_map, path.as_slice().is_empty()) else {
            return;
        };
        let block = PteBlock {
            va: VirtAddr(va),
            path,
            self_map,
            invalid_pte_mask: self.invalid_pte_mask,
        };
        walk::log_pte_block(kernel, va, block.lines());
    }
}

/// Finds and logs the top-level entry that maps its own table.
fn find_self_map<K: KernelApi>(
    kernel: &K,
    paging: &Paging,
    memory: &KernelMemory<'_, K>,
) -> Option<SelfMap> {
    let found = SelfMap::find(paging, memory);
    let texts = match paging.mode() {
        PagingMode::FourLevel => SelfMapTexts {
            entry: "PML4 entry",
            maps: "maps its own table",
            none: "no PML4 entry maps its own table",
            table: "the PML4",
        },
        PagingMode::FiveLevel => SelfMapTexts {
            entry: "PML5 entry",
            maps: "maps its own table",
            none: "no PML5 entry maps its own table",
            table: "the PML5",
        },
    };
    walk::log_self_map(kernel, found, &texts, |map| {
        (map.index() as u64, map.pte_base())
    })
}
