//! Walks laid out as `WinDbg`'s `!pte` shows them, so the two can be compared.

use core::fmt;

use super::entry::PageTableEntry;
use super::level::Level;
use super::outcome::{Path, Visited};
use super::self_map::SelfMap;
use super::software_pte::{InvalidPteMask, SoftwarePte};
use crate::walker::address::VirtAddr;
use crate::walker::pte_block::{COLUMN, large_page, separate};

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
        let large = e.is_large_at(self.level);
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

/// The block `WinDbg` prints for `!pte VA`, one line at a time (no
/// allocation: the driver prints each line with its own `DbgPrintEx`).
///
/// ```text
///                                            VA fffff8071a6948f0
/// PXE at FFFFFCFE7F3F9F80    PPE at FFFFFCFE7F3F00E0    PDE at FFFFFCFE7E01C698    PTE at FFFFFCFC038D34A0
/// contains 0000000001208063  contains 0000000001209063  contains 0000000001217063  contains 0000FEF300002064
/// pfn 1208      ---DA--KWEV  pfn 1209      ---DA--KWEV  pfn 1217      ---DA--KWEV  not valid
///                                                                                   PageFile:  2
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PteBlock<'a> {
    /// The address `!pte` was given.
    pub va: VirtAddr,
    /// Its walk.
    pub path: &'a Path,
    /// Where the entries are visible in virtual memory.
    pub self_map: SelfMap,
    /// What Windows set in non-present entries against L1TF.
    pub invalid_pte_mask: InvalidPteMask,
}

impl<'a> PteBlock<'a> {
    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = PteLine<'a>> + use<'a> {
        let block = *self;
        let details = self.not_valid().map_or(0, |(_, pte)| {
            pte.line_count() + usize::from(self.stops_above_pte())
        });
        (0..4 + details).map(move |line| PteLine { block, line })
    }

    /// How many columns below the walk's last entry show `contains 0`: those
    /// below a present large leaf, which `WinDbg` does not read (the would-be
    /// PTE slot lies inside the large page: data, not an entry).
    fn zeros_below_leaf(&self) -> usize {
        let levels = self.self_map.mode().levels().len();
        let walked = self.path.as_slice().len();
        let large_leaf = self
            .path
            .last()
            .is_some_and(|leaf| leaf.entry.is_present() && leaf.entry.is_large_at(leaf.level));
        if large_leaf {
            levels.saturating_sub(walked)
        } else {
            0
        }
    }

    /// Whether the walk ends at a non-present entry above the PTE.
    fn stops_above_pte(&self) -> bool {
        self.path
            .last()
            .is_some_and(|v| v.level != Level::Pt && !v.entry.is_present())
    }

    fn not_valid(&self) -> Option<(usize, SoftwarePte)> {
        let column = self.path.as_slice().len().checked_sub(1)?;
        let last = self.path.last()?;
        SoftwarePte::decode(last.entry, self.invalid_pte_mask).map(|pte| (column, pte))
    }
}

// Deliberately as in aarch64/windbg.rs: each architecture's block yields its lines.
/// One line of a [`PteBlock`].
#[derive(Clone, Copy, Debug)]
pub struct PteLine<'a> {
    block: PteBlock<'a>,
    line: usize,
}

impl fmt::Display for PteLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = &self.block;
        let visited = block.path.as_slice();
        let levels = block.self_map.mode().levels();
        match self.line {
            0 => write!(f, "{:43}VA {:016x}", "", block.va.0),
            1 => levels.iter().enumerate().try_for_each(|(i, level)| {
                let at = block.self_map.entry_address(block.va, *level).0;
                write!(f, "{} at {at:016X}", level.windbg_name())?;
                separate(f, level.windbg_name().len() + 20, i + 1 < levels.len())
            }),
            2 => {
                let below = block.zeros_below_leaf();
                let count = visited.len() + below;
                visited
                    .iter()
                    .map(|v| v.entry.0)
                    .chain(core::iter::repeat_n(0, below))
                    .enumerate()
                    .try_for_each(|(i, value)| {
                        write!(f, "contains {value:016X}")?;
                        separate(f, 25, i + 1 < count)
                    })
            }
            3 => status_row(f, block),
            detail => {
                let Some((mut column, pte)) = block.not_valid() else {
                    return Ok(());
                };
                let mut detail = detail - 4;
                if block.stops_above_pte() {
                    if detail == 0 {
                        return f.write_str("not valid");
                    }
                    (column, detail) = (0, detail - 1);
                }
                // One column right of `not valid`, every kind alike.
                let indent = COLUMN * column + 1;
                write!(f, "{:indent$}", "")?;
                pte.write_line(f, detail)
            }
        }
    }
}

fn status_row(f: &mut fmt::Formatter<'_>, block: &PteBlock<'_>) -> fmt::Result {
    let visited = block.path.as_slice();
    for (i, v) in visited.iter().enumerate() {
        let more = i + 1 < visited.len();
        if !v.entry.is_present() {
            // Above the PTE, WinDbg repeats the value here and says
            // `not valid` on the next line.
            return if v.level == Level::Pt {
                f.write_str("not valid")
            } else {
                write!(f, "contains {:016X}", v.entry.0)
            };
        }
        let flags = Flags {
            entry: v.entry,
            level: v.level,
        };
        write!(f, "pfn {:<10x}{flags}", v.entry.pfn())?;
        let large = !more && v.entry.is_large_at(v.level);
        if large {
            let size_bits = v.level.shift();
            let frame = v.entry.address(size_bits, 52).0 + (block.va.0 & ((1 << size_bits) - 1));
            f.write_str("  ")?;
            large_page(f, frame >> 12)?;
        } else {
            separate(f, 25, more)?;
        }
    }
    Ok(())
}
