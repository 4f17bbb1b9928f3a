//! Memory images as physical memory: raw (offset = physical address), an
//! ELF core (QEMU `dump-guest-memory`, `VirtualBox` `dumpvmcore`) or a
//! Windows kernel crash dump (`PAGEDU64`, see `crash_dump.rs`); what the file
//! is comes from `format.rs`, which refuses the files ptwalk cannot read.

use std::cell::Cell;
use std::fs::File;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use memmap2::Mmap;
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use vmwalk::walker::{ImageMemory, OutsideImage, PhysAddr, PhysicalMemory};

use crate::crash_dump::Machine;
use crate::format::{self, Format};
use crate::segment::Segment;

/// What kind of capture an image is, and what its container records.
pub enum Container {
    Raw,
    ElfCore,
    CrashDump {
        /// The header's `DirectoryTableBase`.
        directory_table_base: u64,
        /// The header's `MachineImageType`.
        machine: Machine,
    },
}

/// An opened, memory-mapped image.
pub struct Image {
    /// Shared with kdmp-parser while it opens a crash dump.
    map: Option<Rc<Mmap>>,
    /// The file, as errors name it.
    name: String,
    container: Container,
    /// Where the physical memory of an ELF core or a crash dump is in the
    /// file, sorted by physical address; `None` for a raw image.
    segments: Option<Vec<Segment>>,
    /// Pages of `segments` read recently: slot `page % RECENT_PAGES` holds
    /// `(page + 1, file offset of the page)`, or 0 when empty. A walk reads the
    /// same few tables again and again; a hit skips the search of the segments
    /// (its mispredicted branches made a walk on a dump 3.7 times slower).
    recent_pages: [Cell<(u64, usize)>; RECENT_PAGES],
}

const RECENT_PAGES: usize = 256;

impl Image {
    /// Maps `path` and reads it as `format::identify` says: an ELF core, a
    /// crash dump, or raw memory; a file it refuses is an error.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            bail!("{} is a directory, not a memory image", path.display());
        }
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only; another process truncating the image
            // while we run is outside what this tool defends against.
            Some(Rc::new(
                unsafe { Mmap::map(&file) }
                    .with_context(|| format!("cannot map {}", path.display()))?,
            ))
        };
        Self::from_map(map, &path.display().to_string())
    }

    /// Reads the bytes of `map` (`None`: an empty file) as an ELF core, a
    /// crash dump or raw memory; `name` names the file in errors.
    pub fn from_map(map: Option<Rc<Mmap>>, name: &str) -> Result<Self> {
        let mut image = Self {
            map,
            name: name.to_owned(),
            container: Container::Raw,
            segments: None,
            recent_pages: [const { Cell::new((0, 0)) }; RECENT_PAGES],
        };
        match format::identify(image.bytes()).map_err(|what| anyhow!("{name} is {what}"))? {
            Format::Raw => {}
            Format::ElfCore => {
                image.segments = Some(
                    elf_segments(image.bytes())
                        .with_context(|| format!("{name} is not a usable ELF core"))?,
                );
                image.container = Container::ElfCore;
            }
            Format::CrashDump => {
                let map = image
                    .map
                    .as_ref()
                    .context("an empty file is no crash dump")?;
                let dump = crate::crash_dump::open(map)
                    .with_context(|| format!("{name} is not a usable Windows crash dump"))?;
                image.segments = Some(dump.segments);
                image.container = Container::CrashDump {
                    directory_table_base: dump.directory_table_base,
                    machine: dump.machine,
                };
            }
        }
        Ok(image)
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().map_or(&[], |map| map)
    }

    /// The file, as errors name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What kind of capture it is, and what its container records.
    pub const fn container(&self) -> &Container {
        &self.container
    }

    /// The machine a crash dump says it was written on; `None` for other images.
    pub const fn dump_machine(&self) -> Option<Machine> {
        match self.container {
            Container::CrashDump { machine, .. } => Some(machine),
            _ => None,
        }
    }

    /// Every whole 4 KiB page of physical memory whose bytes are in the
    /// file, in ascending physical order: its physical address and bytes.
    /// (An ELF segment's memory beyond its file bytes is zeros: no tables.)
    pub fn pages(&self) -> Box<dyn Iterator<Item = (u64, &[u8])> + '_> {
        const PAGE: usize = 4096;
        let bytes = self.bytes();
        let Some(segments) = &self.segments else {
            return Box::new(
                bytes
                    .chunks_exact(PAGE)
                    .zip((0..).step_by(PAGE))
                    .map(|(page, pa)| (pa, page)),
            );
        };
        Box::new(segments.iter().flat_map(move |segment| {
            // The first whole page of the segment, if its start is not page-aligned.
            let skip = segment.paddr.wrapping_neg() & 0xfff;
            let start = segment
                .offset
                .saturating_add(usize::try_from(skip).unwrap_or(usize::MAX));
            let len = usize::try_from(segment.file_size.saturating_sub(skip)).unwrap_or(0);
            let in_file = bytes.get(start..start.saturating_add(len)).unwrap_or(&[]);
            let first = segment.paddr.checked_add(skip);
            // Pages up to the top of the physical address space, not past it.
            in_file
                .chunks_exact(PAGE)
                .zip(0_u64..)
                .map_while(move |(page, i)| Some((first?.checked_add(i * PAGE as u64)?, page)))
        }))
    }

    /// How many bytes of physical memory [`Self::pages`] covers.
    pub fn scanned_bytes(&self) -> u64 {
        self.segments.as_ref().map_or_else(
            || self.bytes().len() as u64 & !0xfff,
            |segments| segments.iter().map(|s| s.file_size).sum(),
        )
    }

    /// One past the highest physical address the image holds.
    pub fn physical_end(&self) -> u64 {
        self.segments.as_ref().map_or_else(
            || self.bytes().len() as u64,
            |segments| {
                segments
                    .iter()
                    .map(|s| s.paddr.saturating_add(s.memory_size))
                    .max()
                    .unwrap_or(0)
            },
        )
    }

    /// Fails unless the 4 KiB table at `table` can be read in full.
    pub fn check_table(&self, table: PhysAddr) -> Result<()> {
        for offset in (0..4096).step_by(8) {
            if let Err(error) = self.read_u64(PhysAddr(table.0 + offset)) {
                bail!("the top-level table at {table} (from CR3) is not in the image: {error}");
            }
        }
        Ok(())
    }
}

fn elf_segments(bytes: &[u8]) -> Result<Vec<Segment>> {
    let elf = ElfFile64::<object::Endianness>::parse(bytes)?;
    let endian = elf.endian();
    let mut segments = Vec::new();
    for header in elf.elf_program_headers() {
        if header.p_type(endian) != PT_LOAD {
            continue;
        }
        let (offset, file_size) = (header.p_offset(endian), header.p_filesz(endian));
        if offset
            .checked_add(file_size)
            .is_none_or(|end| end > bytes.len() as u64)
        {
            bail!("a PT_LOAD segment at file offset {offset:#x} runs past the end of the file");
        }
        let memory_size = header.p_memsz(endian);
        if file_size > memory_size {
            bail!(
                "a PT_LOAD segment at file offset {offset:#x} has more file bytes ({file_size:#x}) than memory ({memory_size:#x})"
            );
        }
        segments.push(Segment {
            paddr: header.p_paddr(endian),
            offset: usize::try_from(offset)?,
            file_size,
            memory_size,
        });
    }
    if segments.is_empty() {
        bail!("it has no PT_LOAD segment");
    }
    segments.sort_by_key(|s| s.paddr);
    Ok(segments)
}

impl PhysicalMemory for Image {
    type Error = OutsideImage;

    fn read_u64(&self, addr: PhysAddr) -> Result<u64, OutsideImage> {
        let Some(segments) = &self.segments else {
            return ImageMemory::new(self.bytes()).read_u64(addr);
        };
        let (page, within_page) = (addr.0 >> 12, addr.0 & 0xfff);
        #[allow(clippy::cast_possible_truncation, reason = "a hash, and under 4096")]
        let (recent, within_page_usize) = (
            &self.recent_pages[page as usize % RECENT_PAGES],
            within_page as usize,
        );
        let (key, page_offset) = recent.get();
        if key == page + 1 && within_page <= 0xff8 {
            let start = page_offset + within_page_usize;
            if let Some(bytes) = self.bytes().get(start..start + 8) {
                return Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()));
            }
        }
        let outside = OutsideImage {
            addr,
            image_len: self.bytes().len() as u64,
        };
        // Eight bytes that would run past the top of the address space are none.
        if addr.0.checked_add(8).is_none() {
            return Err(outside);
        }
        let index = segments.partition_point(|s| s.paddr <= addr.0);
        let segment = index
            .checked_sub(1)
            .and_then(|i| segments.get(i))
            .ok_or(outside)?;
        let within = addr.0 - segment.paddr;
        if within
            .checked_add(8)
            .is_none_or(|end| end > segment.memory_size)
        {
            return Err(outside);
        }
        if within >= segment.file_size {
            return Ok(0); // ELF: memory beyond the file bytes reads as zero
        }
        if within + 8 > segment.file_size {
            return Err(outside); // half in the file, half not: a malformed core
        }
        let start = segment.offset + usize::try_from(within).map_err(|_| outside)?;
        // A segment need not start on a page boundary: then the page's start
        // may lie before it.
        let page_start = within.checked_sub(within_page);
        if let Some(page_start) =
            page_start.filter(|start| start.saturating_add(4096) <= segment.file_size)
        {
            // The whole page is file bytes of this segment.
            if let Ok(page_start) = usize::try_from(page_start) {
                recent.set((page + 1, segment.offset + page_start));
            }
        }
        self.bytes()
            .get(start..start + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(outside)
    }

    /// The page's bytes when the file holds all 4096 of them in one piece:
    /// a raw image's, or a whole page inside one segment's file bytes.
    fn page(&self, addr: PhysAddr) -> Option<&[u8; 4096]> {
        if !addr.0.is_multiple_of(4096) {
            return None;
        }
        let start = match &self.segments {
            None => usize::try_from(addr.0).ok()?,
            Some(segments) => {
                let index = segments.partition_point(|s| s.paddr <= addr.0);
                let segment = segments.get(index.checked_sub(1)?)?;
                let within = addr.0 - segment.paddr;
                if within.checked_add(4096)? > segment.file_size {
                    return None;
                }
                segment.offset.checked_add(usize::try_from(within).ok()?)?
            }
        };
        self.bytes()
            .get(start..start.checked_add(4096)?)?
            .try_into()
            .ok()
    }
}
