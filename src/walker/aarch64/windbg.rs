//! `WinDbg`'s `!pte` on Windows for ARM64.
//!
//! The same four columns as on x64 (PXE, PPE, PDE and PTE, at their self-map
//! addresses), with ARM64's descriptor bits read as Windows names them in
//! `_MMPTE_HARDWARE`. Read from seven transcripts of real ARM64 kernel
//! debuggers (C. McGarr, "ARM64 Windows internals: the basics", 2025, Windows
//! 11; M. Suiche, SMBaloo, 2020, Windows 10; in `tests/windbg/arm64/`): the
//! flags are ten columns, `-` where clear:
//!
//! | column | shows | when |
//! | --- | --- | --- |
//! | 2 | `W` / `R` | Writable (bit 55, a Windows software bit) set / clear |
//! | 3 | `X` | executable: PXN (bit 53) clear for a kernel address, UXN (bit 54) for a user address |
//! | 4 | `G` | nG (bit 11) clear |
//! | 5 | `A` | AF (bit 10) set |
//! | 6 | `D` | NotDirty, AP\[2\] (bit 7), clear |
//! | 7 | `U` / `K` | Owner, AP\[1\] (bit 6), set / clear |
//! | 9 | `L` | a block (NotLargePage, bit 1, clear at level 1 or 2) |
//! | 10 | `V` | Valid (bit 0) |
//!
//! Columns 1 and 8 are `-` in every transcript: what sets them is not known,
//! and they are printed as `-`. Which XN bit column 3 reads for a user
//! address is inferred (the user transcript has both set), as MemProcFS
//! reads it. Invalid descriptors print `not valid`: Windows's ARM64
//! software-PTE layout is not decoded. Below a 2 MiB block the PTE column
//! `contains` 0, read from nowhere, as on x64.
//!
//! The columns are x64's: the ten letters right-aligned in x64's
//! 11-character flag field (they start at columns 15, 42, 69 and 96), two
//! blanks before `LARGE PAGE` (column 81). Measured on the screenshots and
//! in M. Suiche's text transcripts (Windows 10 18362 ARM64, 2020).

use core::fmt;

use super::descriptor::{Descriptor, DescriptorKind, Level};
use super::outcome::Path;
use super::self_map::SelfMap;
use crate::walker::VirtAddr;
use crate::walker::pte_block::{large_page, separate};

/// `_MMPTE_HARDWARE.Writable`: bit 55, a software bit (writes are allowed
/// by AP\[2\], which Windows calls NotDirty, once the page is dirty).
pub const WRITABLE: u64 = 1 << 55;

/// The names `!pte` gives the levels on ARM64 (x64's).
const fn name(level: Level) -> &'static str {
    match level {
        Level::L0 => "PXE",
        Level::L1 => "PPE",
        Level::L2 => "PDE",
        Level::L3 => "PTE",
    }
}

/// The ten flag columns of a valid descriptor at `level`.
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    /// The descriptor.
    pub descriptor: Descriptor,
    /// Its level.
    pub level: Level,
    /// The address is a kernel (upper-range) address.
    pub kernel: bool,
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.descriptor;
        let pick = |set: bool, yes: char, no: char| if set { yes } else { no };
        let no_execute = if self.kernel {
            Descriptor::PXN
        } else {
            Descriptor::UXN
        };
        let chars = [
            '-',
            pick(d.has(WRITABLE), 'W', 'R'),
            pick(d.has(no_execute), '-', 'X'),
            pick(d.has(Descriptor::NOT_GLOBAL), '-', 'G'),
            pick(d.has(Descriptor::ACCESSED), 'A', '-'),
            pick(d.has(Descriptor::AP_READ_ONLY), '-', 'D'),
            pick(d.has(Descriptor::AP_EL0), 'U', 'K'),
            '-',
            pick(d.kind(self.level) == DescriptorKind::Block, 'L', '-'),
            pick(d.has(Descriptor::VALID), 'V', '-'),
        ];
        chars.iter().try_for_each(|c| fmt::Write::write_char(f, *c))
    }
}

/// The block `WinDbg` prints for `!pte VA` on ARM64, one line at a time.
///
/// ```text
///                                            VA fffff78000000000
/// PXE at FFFFD3E9F4FA7F78    PPE at FFFFD3E9F4FEF000    PDE at FFFFD3E9FDE00000    PTE at FFFFD3FBC0000000
/// contains 00600000009B0F03  contains 00600000009AFF03  contains 00600000009AEF03  contains A0600000009AD783
/// pfn 9b0       -R--ADK--V   pfn 9af       -R--ADK--V   pfn 9ae       -R--ADK--V   pfn 9ad       -R-GA-K--V
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PteBlock<'a> {
    /// The address `!pte` was given.
    pub va: VirtAddr,
    /// Its walk, from level 0.
    pub path: &'a Path,
    /// Where the descriptors are visible in virtual memory.
    pub self_map: SelfMap,
}

impl<'a> PteBlock<'a> {
    /// The four lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = PteLine<'a>> + use<'a> {
        let block = *self;
        (0..4).map(move |line| PteLine { block, line })
    }
}

// Deliberately as in x86_64/windbg.rs: each architecture's block yields its lines.
/// One line of a [`PteBlock`].
#[derive(Clone, Copy, Debug)]
pub struct PteLine<'a> {
    block: PteBlock<'a>,
    line: usize,
}

impl fmt::Display for PteLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = &self.block;
        let visited: &[_] = &[0, 1, 2, 3].map(|i| block.path.iter().nth(i).copied());
        let count = block.path.len();
        match self.line {
            0 => write!(f, "{:43}VA {:016x}", "", block.va.0),
            1 => Level::ALL.iter().enumerate().try_for_each(|(i, &level)| {
                let at = block.self_map.entry_address(block.va, level).0;
                write!(f, "{} at {at:016X}", name(level))?;
                separate(f, 23, i + 1 < Level::ALL.len())
            }),
            2 => {
                // Below a 2 MiB block: 0; WinDbg reads nothing there.
                let below = visited
                    .iter()
                    .flatten()
                    .last()
                    .filter(|v| {
                        v.level == Level::L2 && v.entry.kind(v.level) == DescriptorKind::Block
                    })
                    .map(|_| 0);
                let total = count + usize::from(below.is_some());
                visited
                    .iter()
                    .flatten()
                    .map(|v| v.entry.0)
                    .chain(below)
                    .enumerate()
                    .try_for_each(|(i, value)| {
                        write!(f, "contains {value:016X}")?;
                        separate(f, 25, i + 1 < total)
                    })
            }
            _ => {
                let kernel = block.va.0 >> 55 & 1 == 1;
                for (i, v) in visited.iter().flatten().enumerate() {
                    let more = i + 1 < count;
                    if v.entry.kind(v.level) == DescriptorKind::Invalid {
                        return f.write_str("not valid");
                    }
                    let flags = Flags {
                        descriptor: v.entry,
                        level: v.level,
                        kernel,
                    };
                    // x64's 11-character flag field, the ten letters right-aligned.
                    write!(f, "pfn {:<10x} {flags}", v.entry.output_address(12) >> 12)?;
                    if !more && v.entry.kind(v.level) == DescriptorKind::Block {
                        let offset = block.va.0 & (v.level.entry_span() - 1);
                        let frame = v.entry.output_address(v.level.shift()) + offset;
                        f.write_str("  ")?;
                        large_page(f, frame >> 12)?;
                    } else {
                        separate(f, 25, more)?;
                    }
                }
                Ok(())
            }
        }
    }
}
