//! What the driver shows after mapping: the paging registers, the self-map,
//! and a walk of its own addresses, cross-checked against what Windows says.
//! Only a walk that contradicts the alias fails the load; a disagreement
//! with Windows or a walker error is logged.

use super::line::log;
use super::memory::address;
use super::{Alias, DriverError, KernelApi, KernelMemory};
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, PVOID};
use crate::walker::software_pte::InvalidPteMask;
use crate::walker::windbg::{EntryLine, PteBlock};
use crate::walker::{Paging, PagingMode, Path, PhysAddr, PhysicalMemory, SelfMap, VirtAddr};

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

/// The paging state of the current processor and how to read its tables.
pub(super) struct Walker<'k, K: KernelApi> {
    kernel: &'k K,
    paging: Paging,
    memory: KernelMemory<'k, K>,
    self_map: Option<SelfMap>,
    split: Split,
    invalid_pte_mask: InvalidPteMask,
}

/// Where a walk ended: the physical address and the leaf entry's.
#[derive(Clone, Copy)]
pub(super) struct Walked {
    pa: PhysAddr,
    leaf_entry: PhysAddr,
}

/// Walks and logs the driver's own addresses, as `!pte` shows them.
///
/// The alias's two addresses, `code` (`DriverEntry`) and a stack address;
/// the two addresses are checked against `MmGetPhysicalAddress` and the
/// MDL's PFN array.
///
/// # Errors
/// [`DriverError::WalkContradicts`] when both addresses translate but through
/// one PTE, or to two different frames (logged).
pub fn inspect<K: KernelApi>(alias: &Alias<'_, K>, code: VirtAddr) -> Result<(), DriverError> {
    let walker = Walker::new(alias.kernel());
    let (first_name, second_name) = alias.names();
    let mdl_pfn = alias.pfn();
    let first = walker.walk_and_check(first_name, address(alias.first()), mdl_pfn);
    let second = walker.walk_and_check(second_name, address(alias.second()), mdl_pfn);
    if let (Some(a), Some(b)) = (first, second) {
        let (a_pfn, b_pfn) = (a.pa.0 >> 12, b.pa.0 >> 12);
        if a.leaf_entry == b.leaf_entry {
            log(
                walker.kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: {first_name} and {second_name} translate through one PTE, at phys {:#x}: not two mappings\n",
                    a.leaf_entry.0
                ),
            );
            return Err(DriverError::WalkContradicts);
        }
        if a_pfn != b_pfn {
            log(
                walker.kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: {first_name} and {second_name} do not share a page: PFN {a_pfn:#x} and {b_pfn:#x}\n"
                ),
            );
            return Err(DriverError::WalkContradicts);
        }
        log(
            walker.kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: {first_name} and {second_name} share PFN {a_pfn:#x} through two PTEs, at phys {:#x} and {:#x}\n",
                a.leaf_entry.0, b.leaf_entry.0
            ),
        );
    }
    walker.walk("DriverEntry", code.0);
    let on_stack = 0_u8;
    walker.walk("stack", (&raw const on_stack).addr() as u64);
    Ok(())
}

impl<'k, K: KernelApi> Walker<'k, K> {
    pub(super) fn new(kernel: &'k K) -> Self {
        let registers = kernel.paging_registers();
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
        let split = Split::of(kernel);
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!(
                "vmwalk: MmHighestUserAddress {:#x}, MmSystemRangeStart {:#x}\n",
                split.highest_user, split.system_start
            ),
        );
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
        let memory = KernelMemory::new(kernel);
        let self_map = find_self_map(kernel, &paging, &memory);
        Self {
            kernel,
            paging,
            memory,
            self_map,
            split,
            invalid_pte_mask,
        }
    }

    /// Logs the walk of `va` and its result; the physical address if it translates.
    pub(super) fn walk(&self, name: &str, va: u64) -> Option<Walked> {
        let kernel = self.kernel;
        let side = self.split.side(va);
        log(
            kernel,
            DPFLTR_INFO_LEVEL,
            format_args!("vmwalk: walk of {name} {va:#x} ({side}):\n"),
        );
        let result = self.paging.translate(&self.memory, VirtAddr(va));
        let path = match &result {
            Ok(translation) => translation.path,
            Err(fault) => fault.path,
        };
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
        self.log_pte_block(va, &path);
        match result {
            Ok(translation) => {
                let (pa, mapping) = (translation.pa, translation.mapping);
                log(
                    kernel,
                    DPFLTR_INFO_LEVEL,
                    format_args!(
                        "vmwalk: {name} {va:#x} -> physical {:#x} ({mapping})\n",
                        pa.0
                    ),
                );
                let leaf_entry = path.last().map_or(PhysAddr(0), |leaf| leaf.addr);
                Some(Walked { pa, leaf_entry })
            }
            Err(fault) => {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!("vmwalk: walk of {name} {va:#x} failed: {}\n", fault.kind),
                );
                None
            }
        }
    }

    /// Logs the block `!pte va` prints, line for line (needs the self-map).
    fn log_pte_block(&self, va: u64, path: &Path) {
        // A non-canonical address has no entries: nothing for `!pte` to show.
        let (Some(self_map), false) = (self.self_map, path.as_slice().is_empty()) else {
            return;
        };
        let below_large_leaf = PteBlock::below_large_leaf(path, VirtAddr(va))
            .and_then(|at| self.memory.read_u64(PhysAddr(at)).ok());
        let block = PteBlock {
            va: VirtAddr(va),
            path,
            self_map,
            invalid_pte_mask: self.invalid_pte_mask,
            below_large_leaf,
        };
        log(
            self.kernel,
            DPFLTR_INFO_LEVEL,
            format_args!("vmwalk: as !pte {va:#x} shows it:\n"),
        );
        for line in block.lines() {
            log(
                self.kernel,
                DPFLTR_INFO_LEVEL,
                format_args!("vmwalk: {line}\n"),
            );
        }
    }

    /// Walks `va` and compares the result with `MmGetPhysicalAddress` and the
    /// MDL's PFN (a disagreement is logged); where the walk ended.
    fn walk_and_check(&self, name: &str, va: u64, mdl_pfn: u64) -> Option<Walked> {
        let walked = self.walk(name, va)?;
        // SAFETY: `va` is one of the two addresses of the driver's page:
        // valid and nonpaged while the alias lives.
        let windows = unsafe { self.kernel.mm_get_physical_address(va as PVOID) };
        // SAFETY: every bit pattern of the union is a valid QuadPart.
        let windows = unsafe { windows.QuadPart }.cast_unsigned();
        let pfn = walked.pa.0 >> 12;
        if walked.pa.0 == windows && pfn == mdl_pfn {
            log(
                self.kernel,
                DPFLTR_INFO_LEVEL,
                format_args!(
                    "vmwalk: {name} {va:#x}: MmGetPhysicalAddress {windows:#x} and MDL PFN {mdl_pfn:#x} agree with the walk\n"
                ),
            );
        } else {
            log(
                self.kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!(
                    "vmwalk: disagreement for {name} {va:#x}: walk {:#x}, MmGetPhysicalAddress {windows:#x}, MDL PFN {mdl_pfn:#x}\n",
                    walked.pa.0
                ),
            );
        }
        Some(walked)
    }
}

/// Finds and logs the top-level entry that maps its own table.
fn find_self_map<K: KernelApi>(
    kernel: &K,
    paging: &Paging,
    memory: &KernelMemory<'_, K>,
) -> Option<SelfMap> {
    let top = match paging.mode() {
        PagingMode::FourLevel => "PML4",
        PagingMode::FiveLevel => "PML5",
    };
    match SelfMap::find(paging, memory) {
        Ok(Some(map)) => {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!(
                    "vmwalk: self-map: {top} entry {:#x} ({}) maps its own table; PTE base {:#018x}\n",
                    map.index(),
                    map.index(),
                    map.pte_base().0
                ),
            );
            Some(map)
        }
        Ok(None) => {
            log(
                kernel,
                DPFLTR_INFO_LEVEL,
                format_args!("vmwalk: self-map: no {top} entry maps its own table\n"),
            );
            None
        }
        Err(error) => {
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!("vmwalk: self-map: reading the {top} failed: {error}\n"),
            );
            None
        }
    }
}
