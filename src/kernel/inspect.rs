//! What the driver shows after mapping: the paging registers, the self-map,
//! and a walk of its own addresses, cross-checked against what Windows says.
//! Only a walk that contradicts the alias fails the load; a disagreement
//! with Windows or a walker error is logged.

use super::alias::Alias;
use super::api::KernelApi;
use super::error::DriverError;
use super::line::log;
use super::memory::address;
use super::physical::KernelMemory;
use super::tables::CpuTables;
use super::walk::{Split, Walked};
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, PVOID};
use crate::walker::VirtAddr;

/// The paging state of the current processor and how to read its tables.
pub(super) struct Walker<'k, K: KernelApi> {
    kernel: &'k K,
    memory: KernelMemory<'k, K>,
    split: Split,
    tables: CpuTables,
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
        let memory = KernelMemory::new(kernel);
        let split = Split::of(kernel);
        let tables = CpuTables::new(kernel, split, &memory);
        Self {
            kernel,
            memory,
            split,
            tables,
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
        let Some(walked) = self.tables.walk(kernel, &self.memory, va) else {
            let why = self.tables.not_walked();
            log(
                kernel,
                DPFLTR_ERROR_LEVEL,
                format_args!("vmwalk: walk of {name} {va:#x} skipped: {why}\n"),
            );
            return None;
        };
        match walked {
            Ok(walked) => {
                log(
                    kernel,
                    DPFLTR_INFO_LEVEL,
                    format_args!(
                        "vmwalk: {name} {va:#x} -> physical {:#x} ({})\n",
                        walked.pa.0, walked.leaf
                    ),
                );
                Some(walked)
            }
            Err(why) => {
                log(
                    kernel,
                    DPFLTR_ERROR_LEVEL,
                    format_args!("vmwalk: walk of {name} {va:#x} failed: {why}\n"),
                );
                None
            }
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
