//! Windows kernel crash dumps (`PAGEDU64`: full, bitmap and kernel-memory
//! dumps) as physical memory. kdmp-parser reads the container and says which
//! file offset holds each physical page; we read those bytes from our own map
//! of the file and translate with vmwalk's walker, never with kdmp-parser's
//! (4 levels only, no canonical check, PAT bit 12 kept in large-page frames).

use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use anyhow::{Result, bail};
use kdmp_parser::gxa::{Gpa, Gxa as _};
use kdmp_parser::parse::KernelDumpParser;
use kdmp_parser::structs::{
    BmpHeader64, DumpType, FullRdmpHeader64, Header64, KernelRdmpHeader64, PfnRange, PhysmemDesc,
    PhysmemRun, Pod,
};
use memmap2::Mmap;

use crate::segment::Segment;

const PAGE: u64 = 4096;

/// The machine a dump was written on: the header's `MachineImageType`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Machine {
    /// `IMAGE_FILE_MACHINE_AMD64`, 0x8664.
    X64,
    /// `IMAGE_FILE_MACHINE_ARM64`, 0xAA64.
    Arm64,
}

/// What ptwalk needs from an opened dump.
pub struct Dump {
    /// The header's `DirectoryTableBase`: on x64, CR3 when the dump was
    /// written; on ARM64, the top-level table both TTBRs point into.
    pub directory_table_base: u64,
    pub machine: Machine,
    /// Where the physical pages are in the file, sorted by physical address.
    pub segments: Vec<Segment>,
}

/// Opens the dump in `file` (which starts with `PAGE`; `format.rs` has
/// refused 32-bit and triage dumps).
pub fn open(file: &Rc<Mmap>) -> Result<Dump> {
    let bytes: &[u8] = file;
    let Some(header) = read_pod::<Header64>(bytes, 0) else {
        bail!(
            "it is {:#x} bytes, shorter than a crash dump header ({:#x})",
            bytes.len(),
            size_of::<Header64>()
        );
    };
    let machine = match header.machine_image_type {
        0x8664 => Machine::X64,
        0xaa64 => Machine::Arm64,
        other => bail!(
            "its MachineImageType (at 0x30) is {other:#x}, neither x64's 0x8664 nor ARM64's 0xAA64, the machines ptwalk walks"
        ),
    };
    // kdmp-parser puts every page a dump claims in a map before anything
    // checks the file holds them: bound that by the file's size first.
    let claimed = claimed_pages(bytes);
    let room = bytes.len() as u64 / PAGE;
    if claimed > room {
        bail!(
            "it claims {claimed} pages but the {:#x}-byte file holds at most {room}: truncated or corrupt",
            bytes.len()
        );
    }
    let parser = KernelDumpParser::with_reader(OpeningReader {
        file: Rc::clone(file),
        position: 0,
        memory_refused: false,
    })?;
    let segments = segments(parser.physmem(), bytes.len() as u64)?;
    Ok(Dump {
        directory_table_base: parser.headers().directory_table_base,
        machine,
        segments,
    })
}

/// Joins the page map (page address -> file offset) into runs that are
/// contiguous in both, and fails if a page lies past the end of the file.
fn segments(pages: impl Iterator<Item = (Gpa, u64)>, file_len: u64) -> Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::new();
    // The map is a BTreeMap: pages come sorted by physical address.
    for (gpa, offset) in pages {
        let paddr = gpa.u64();
        if offset.checked_add(PAGE).is_none_or(|end| end > file_len) {
            bail!(
                "it is truncated: physical page {paddr:#x} would be at file offset {offset:#x}, past the end of the {file_len:#x}-byte file"
            );
        }
        if let Some(last) = segments.last_mut() {
            let last_offset = last.offset as u64;
            if last.paddr + last.file_size == paddr && last_offset + last.file_size == offset {
                last.file_size += PAGE;
                last.memory_size += PAGE;
                continue;
            }
        }
        segments.push(Segment {
            paddr,
            offset: usize::try_from(offset)?,
            file_size: PAGE,
            memory_size: PAGE,
        });
    }
    Ok(segments)
}

/// An upper bound of the pages kdmp-parser will put in its page map: what the
/// header's runs, the bitmap's set bits or the PFN ranges add up to. Each of
/// these is read through kdmp-parser's own structure definitions. 0 when the
/// headers are not of a type it reads (it then refuses the dump itself).
fn claimed_pages(bytes: &[u8]) -> u64 {
    let Some(header) = read_pod::<Header64>(bytes, 0) else {
        return 0;
    };
    let after_header = size_of::<Header64>();
    match DumpType::try_from(header.dump_type) {
        Ok(DumpType::Full) => {
            // PHYSICAL_MEMORY_DESCRIPTOR64 and its runs, inside the header.
            let buffer = &header.physical_memory_block_buffer;
            let Some(descriptor) = read_pod::<PhysmemDesc>(buffer, 0) else {
                return 0;
            };
            (0..descriptor.number_of_runs as usize)
                .map_while(|i| {
                    let at = size_of::<PhysmemDesc>() + i * size_of::<PhysmemRun>();
                    read_pod::<PhysmemRun>(buffer, at)
                })
                .fold(0, |sum: u64, run| sum.saturating_add(run.page_count))
        }
        Ok(DumpType::Bmp | DumpType::LiveKernelMemory) => {
            let Some(bmp) = read_pod::<BmpHeader64>(bytes, after_header) else {
                return 0;
            };
            let start = after_header + size_of::<BmpHeader64>();
            let bitmap = bytes.get(start..).unwrap_or_default();
            let wanted = usize::try_from(bmp.pages.div_ceil(8)).unwrap_or(usize::MAX);
            let bitmap = bitmap.get(..wanted).unwrap_or(bitmap);
            let mut set: u64 = bitmap.iter().map(|b| u64::from(b.count_ones())).sum();
            // Bits past `pages` in the last byte are not pages.
            let spare = (bmp.pages % 8) as u32;
            if let (Some(last), true) = (bitmap.last(), bitmap.len() == wanted && spare != 0) {
                set -= u64::from((last >> spare).count_ones());
            }
            set
        }
        Ok(DumpType::KernelMemory | DumpType::KernelAndUserMemory) => {
            let Some(rdmp) = read_pod::<KernelRdmpHeader64>(bytes, after_header) else {
                return 0;
            };
            let ranges = after_header + size_of::<KernelRdmpHeader64>();
            pfn_range_pages(bytes, ranges, rdmp.hdr.metadata_size, None)
        }
        Ok(DumpType::CompleteMemory) => {
            let Some(rdmp) = read_pod::<FullRdmpHeader64>(bytes, after_header) else {
                return 0;
            };
            let ranges = after_header + size_of::<FullRdmpHeader64>();
            let limit = Some(rdmp.total_number_of_pages);
            pfn_range_pages(bytes, ranges, rdmp.hdr.metadata_size, limit)
        }
        Err(_) => 0,
    }
}

/// The pages of the PFN ranges at `start`, counted as kdmp-parser takes them:
/// up to `metadata_size` bytes of ranges, a zero PFN ends them, and a
/// complete-memory dump stops at its total.
fn pfn_range_pages(bytes: &[u8], start: usize, metadata_size: u64, limit: Option<u64>) -> u64 {
    let count = metadata_size / size_of::<PfnRange>() as u64;
    let mut sum = 0u64;
    for i in 0..count {
        if limit.is_some_and(|total| sum >= total) {
            break;
        }
        let Some(range) = usize::try_from(i)
            .ok()
            .and_then(|i| i.checked_mul(size_of::<PfnRange>()))
            .and_then(|at| read_pod::<PfnRange>(bytes, start.checked_add(at)?))
        else {
            break; // past the end of the file: kdmp-parser fails there too
        };
        if range.page_file_number == 0 {
            break;
        }
        sum = sum.saturating_add(range.number_of_pages);
    }
    sum
}

/// A copy of the `T` at `offset` in `bytes`, if it is all there.
fn read_pod<T: Pod>(bytes: &[u8], offset: usize) -> Option<T> {
    let slice = bytes.get(offset..offset.checked_add(size_of::<T>())?)?;
    // SAFETY: `slice` holds size_of::<T>() readable bytes; `read_unaligned`
    // needs no alignment; kdmp-parser's `Pod` contract is that every bit
    // pattern is a valid `T` (plain integers and byte arrays).
    Some(unsafe { slice.as_ptr().cast::<T>().read_unaligned() })
}

/// The dump file as kdmp-parser sees it while it opens the dump.
///
/// `KernelDumpParser::with_reader` first reads the headers and the page map
/// from the start of the file, in order (its only seek there asks for the
/// current position). Then, with no option to skip it, it follows
/// `PsLoadedModuleList` and the KPRCBs through the dump's own page tables:
/// on a crafted dump a module list that never comes back to its head loops
/// forever. Those walks reach the file only through seeks to absolute
/// offsets, so from the first such seek this reader refuses to read. Each
/// walk then stops at its first page-table read, which kdmp-parser takes as
/// "page not in the dump" and skips: opening costs the headers, the page map
/// and a few failed reads, whatever the dump's memory holds.
/// ptwalk needs neither module list.
struct OpeningReader {
    file: Rc<Mmap>,
    position: u64,
    memory_refused: bool,
}

impl Read for OpeningReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.memory_refused {
            return Err(io::Error::other(
                "ptwalk reads no dump memory while the dump opens",
            ));
        }
        let rest = usize::try_from(self.position)
            .ok()
            .and_then(|start| self.file.get(start..))
            .unwrap_or_default();
        let count = rest.len().min(buf.len());
        buf[..count].copy_from_slice(&rest[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for OpeningReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(offset) => {
                self.memory_refused = true;
                Some(offset)
            }
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
            SeekFrom::End(delta) => (self.file.len() as u64).checked_add_signed(delta),
        };
        self.position = position.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the file's start")
        })?;
        Ok(self.position)
    }
}
