//! Walks laid out as `WinDbg`'s `!pte` shows them, so the two can be compared.

use core::fmt;

use super::address::{Level, VirtAddr};
use super::entry::PageTableEntry;
use super::path::{Path, Visited};
use super::software_pte::{InvalidPteMask, SoftwarePte};

/// Windows keeps copy-on-write in bit 9, one of the bits the CPU ignores.
const COPY_ON_WRITE: u64 = 1 << 9;

/// The `!pte` flag string of a present entry, e.g. `-G-DA--KW-V`: copy-on-write,
/// global, large, dirty, accessed, cache-disable, write-through,
/// kernel/user, writable/read-only, executable, valid.
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    /// The entry.
    pub entry: PageTableEntry,
    /// Its level (PS means "large" only in a PDPTE or PDE).
    pub level: Level,
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let large =
            matches!(self.level, Level::Pdpt | Level::Pd) && e.has(PageTableEntry::PAGE_SIZE);
        let pick = |set: bool, yes: char, no: char| if set { yes } else { no };
        let chars = [
            pick(e.has(COPY_ON_WRITE), 'C', '-'),
            pick(e.has(PageTableEntry::GLOBAL), 'G', '-'),
            pick(large, 'L', '-'),
            pick(e.has(PageTableEntry::DIRTY), 'D', '-'),
            pick(e.has(PageTableEntry::ACCESSED), 'A', '-'),
            pick(e.has(PageTableEntry::CACHE_DISABLE), 'N', '-'),
            pick(e.has(PageTableEntry::WRITE_THROUGH), 'T', '-'),
            pick(e.has(PageTableEntry::USER), 'U', 'K'),
            pick(e.has(PageTableEntry::WRITABLE), 'W', 'R'),
            pick(e.has(PageTableEntry::NO_EXECUTE), '-', 'E'),
            pick(e.is_present(), 'V', '-'),
        ];
        chars.iter().try_for_each(|c| fmt::Write::write_char(f, *c))
    }
}

/// One `!pte` line: `PXE at <entry address> contains <value> pfn <pfn> <flags>`.
///
/// A non-present entry shows its software meaning instead of pfn and flags.
/// With the entry's virtual address (through the self-map) it reads like
/// `!pte`: `PXE at 0xfffff6fb7dbedf80 (phys 0x1aaf80) contains ...`.
#[derive(Clone, Copy, Debug)]
pub struct EntryLine<'a> {
    /// The entry.
    pub visited: &'a Visited,
    /// Where the entry is visible in virtual memory, if known.
    pub virtual_address: Option<VirtAddr>,
    /// What Windows set in non-present entries against L1TF.
    pub invalid_pte_mask: InvalidPteMask,
}

impl fmt::Display for EntryLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Visited { level, addr, entry } = *self.visited;
        match self.virtual_address {
            Some(va) => write!(
                f,
                "{} at {:#x} (phys {:#x})",
                level.windbg_name(),
                va.0,
                addr.0
            )?,
            None => write!(f, "{} at phys {:#x}", level.windbg_name(), addr.0)?,
        }
        write!(f, " contains {:#018x} ", entry.0)?;
        match SoftwarePte::decode(entry, self.invalid_pte_mask) {
            None => write!(f, "pfn {:x} {}", entry.pfn(), Flags { entry, level }),
            Some(SoftwarePte::Zero) => f.write_str("not valid"),
            Some(software) => write!(f, "not valid: {}", software.windbg_lines(", ")),
        }
    }
}

/// Every entry of a walk, one [`EntryLine`] per line; non-present entries
/// are decoded with the mask.
#[derive(Clone, Copy, Debug)]
pub struct PathLines<'a>(pub &'a Path, pub InvalidPteMask);

impl fmt::Display for PathLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_slice().iter().try_for_each(|visited| {
            let line = EntryLine {
                visited,
                virtual_address: None,
                invalid_pte_mask: self.1,
            };
            writeln!(f, "{line}")
        })
    }
}
