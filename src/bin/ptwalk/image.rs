//! Memory images as physical memory: raw (offset = physical address) or an
//! ELF core (QEMU `dump-guest-memory`, `VirtualBox` `dumpvmcore`).

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use memmap2::Mmap;
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use vmwalk::walker::{ImageMemory, OutsideImage, PhysAddr, PhysicalMemory};

/// An opened, memory-mapped image.
pub struct Image {
    map: Option<Mmap>,
    /// `PT_LOAD` segments of an ELF core, sorted by physical address; `None` for a raw image.
    segments: Option<Vec<Segment>>,
}

/// Where one `PT_LOAD` segment's bytes are.
struct Segment {
    paddr: u64,
    offset: usize,
    file_size: u64,
    memory_size: u64,
}

impl Image {
    /// Maps `path`; an ELF file is read as a core, anything else as raw memory.
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
            Some(
                unsafe { Mmap::map(&file) }
                    .with_context(|| format!("cannot map {}", path.display()))?,
            )
        };
        let mut image = Self {
            map,
            segments: None,
        };
        if image.bytes().starts_with(b"\x7fELF") {
            image.segments = Some(
                elf_segments(image.bytes())
                    .with_context(|| format!("{} is not a usable ELF core", path.display()))?,
            );
        }
        Ok(image)
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
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
        segments.push(Segment {
            paddr: header.p_paddr(endian),
            offset: usize::try_from(offset)?,
            file_size,
            memory_size: header.p_memsz(endian),
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
        let outside = OutsideImage {
            addr,
            image_len: self.bytes().len() as u64,
        };
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
        self.bytes()
            .get(start..start + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(outside)
    }
}
