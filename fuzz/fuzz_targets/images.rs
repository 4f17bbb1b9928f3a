//! Arbitrary bytes as `ptwalk`'s image readers see a file: raw memory, an ELF
//! core or a Windows crash dump (the first bytes decide, as for a real file).
//! Opening and walking must not panic, hang or allocate without bound; the
//! readers' errors are fine. What an opened image reads must equal a second,
//! simple reading of the same bytes: the file itself for raw memory, the
//! program headers read by hand for an ELF core (file bytes, zero up to
//! `p_memsz`, an error across the file's end), the header's runs or bitmap read
//! by hand for a crash dump. The first input byte picks 4- or 5-level paging.
#![no_main]

#[path = "../../src/bin/ptwalk/crash_dump.rs"]
mod crash_dump;
#[path = "../../src/bin/ptwalk/image.rs"]
mod image;
#[path = "../../src/bin/ptwalk/segment.rs"]
mod segment;

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use memmap2::MmapMut;
use vmwalk::walker::{Paging, PhysAddr, PhysicalMemory, VirtAddr};

const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_NXE: u64 = 1 << 11;

fuzz_target!(|data: &[u8]| {
    let Some((&options, file)) = data.split_first() else {
        return;
    };
    let map = if file.is_empty() {
        None
    } else {
        let mut map = MmapMut::map_anon(file.len()).expect("anonymous memory");
        map.copy_from_slice(file);
        Some(Rc::new(map.make_read_only().expect("read-only")))
    };
    let Ok(image) = image::Image::from_map(map, "the input") else {
        return;
    };
    second_reading(&image, file);
    let cr3 = image.dump_cr3().unwrap_or(0x1000);
    let cr4 = CR4_PAE | if options & 1 != 0 { CR4_LA57 } else { 0 };
    let paging = Paging::from_registers(cr3, cr4, EFER_NXE);
    let _ = image.check_table(paging.root());
    for va in [
        0,
        0xffff_f800_0000_0000,
        0x7ffe_0000,
        u64::from(options) << 39,
        0xff11_0000_0000_0000,
    ] {
        let _ = paging.translate(&image, VirtAddr(va));
    }
});

fn u16_at(file: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        file.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn u64_at(file: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(
        file.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A full or bitmap dump's pages, `(physical address, file offset)`, in file
/// order; `None` for other dump types.
fn dump_pages(file: &[u8]) -> Option<Vec<(u64, u64)>> {
    const PAGE: u64 = 4096;
    let dump_type = u32::from_le_bytes(file.get(0xf98..0xf9c)?.try_into().ok()?);
    let mut pages = Vec::new();
    match dump_type {
        // Full: PHYSICAL_MEMORY_DESCRIPTOR64 at 0x88 (NumberOfRuns, then runs
        // of BasePage, PageCount from +0x10, within its 700 bytes); the pages
        // follow the 0x2000-byte header, run after run.
        1 => {
            let runs = u32::from_le_bytes(file.get(0x88..0x8c)?.try_into().ok()?);
            let mut offset = 0x2000_u64;
            for run in 0..u64::from(runs).min((700 - 16) / 16) {
                let base = u64_at(file, 0x98 + run * 16)?;
                let count = u64_at(file, 0xa0 + run * 16)?;
                for page in 0..count {
                    if pages.len() >= 64 || offset >= file.len() as u64 {
                        return Some(pages);
                    }
                    pages.push((base.checked_add(page)?.checked_mul(PAGE)?, offset));
                    offset += PAGE;
                }
            }
        }
        // Bitmap: "SDMP"/"FDMP" "DUMP" at 0x2000, the first page's offset at
        // 0x2020, the bit count at 0x2030, the bitmap at 0x2038.
        5 | 6 => {
            let signature = file.get(0x2000..0x2008)?;
            if signature != b"SDMPDUMP" && signature != b"FDMPDUMP" {
                return None;
            }
            let mut offset = u64_at(file, 0x2020)?;
            let bits = u64_at(file, 0x2030)?;
            for page in 0..bits {
                let byte = *file.get(0x2038 + usize::try_from(page / 8).ok()?)?;
                if byte >> (page % 8) & 1 == 1 {
                    if pages.len() >= 64 || offset >= file.len() as u64 {
                        return Some(pages);
                    }
                    pages.push((page * PAGE, offset));
                    offset += PAGE;
                }
            }
        }
        _ => return None,
    }
    Some(pages)
}

/// The image's reads against a second reading of `file`.
fn second_reading(image: &image::Image, file: &[u8]) {
    let ours = |pa: u64| image.read_u64(PhysAddr(pa)).ok();
    if file.starts_with(b"PAGE") {
        // Which file offset holds each physical page, read by hand from the
        // layouts in tests/crash_dump/mod.rs (as rizin's dmp_specs.h has them).
        let Some(pages) = dump_pages(file) else {
            return; // a type read only through kdmp-parser: no second reading
        };
        let mut seen = std::collections::HashMap::new();
        for &(page, _) in &pages {
            *seen.entry(page).or_insert(0) += 1;
        }
        for &(page, offset) in pages.iter().filter(|(page, _)| seen[page] == 1).take(64) {
            for within in [0, 0x7f8, 0xff8] {
                let pa = page.saturating_add(within);
                let theirs = u64_at(file, offset.saturating_add(within));
                assert_eq!(ours(pa), theirs, "crash dump, physical {pa:#x}");
            }
        }
    } else if file.starts_with(b"\x7fELF") {
        // ELF64, little-endian (what the reader accepted): the PT_LOADs by hand.
        let (Some(phoff), Some(phentsize), Some(phnum)) =
            (u64_at(file, 32), u16_at(file, 54), u16_at(file, 56))
        else {
            return;
        };
        let mut loads = Vec::new();
        for i in 0..phnum {
            let at = phoff.saturating_add(i * phentsize);
            let Some(kind) = u64_at(file, at) else { return };
            if kind & 0xffff_ffff != 1 {
                continue;
            }
            let field = |n: u64| u64_at(file, at.saturating_add(n));
            let (Some(offset), Some(paddr), Some(filesz), Some(memsz)) =
                (field(8), field(24), field(32), field(40))
            else {
                return;
            };
            loads.push((paddr, offset, filesz, memsz));
        }
        let overlap = loads.iter().enumerate().any(|(i, a)| {
            loads.iter().skip(i + 1).any(|b| {
                a.0 < b.0.saturating_add(b.3.max(8)) && b.0 < a.0.saturating_add(a.3.max(8))
            })
        });
        if overlap {
            return; // which segment answers is then a choice, not a rule
        }
        // Eight bytes at `pa`: from the segment whose memory holds `pa`.
        let theirs = |pa: u64| {
            let &(paddr, offset, filesz, memsz) = loads
                .iter()
                .find(|(paddr, _, _, memsz)| pa >= *paddr && pa - paddr < *memsz)?;
            let within = pa - paddr;
            // Eight bytes past the end of the address space are no bytes at all.
            if within.checked_add(8).is_none_or(|end| end > memsz) {
                None
            } else if within >= filesz {
                Some(0)
            } else if within + 8 > filesz {
                None
            } else {
                u64_at(file, offset.saturating_add(within))
            }
        };
        for &(paddr, _, filesz, memsz) in &loads {
            // In this order: a read in a page the file bytes end in, then
            // past their end in the same page, then around the memory's end.
            let page = paddr.saturating_add(filesz) & !0xfff;
            for pa in [
                page.max(paddr),
                paddr.saturating_add(filesz).saturating_sub(8).max(paddr),
                paddr.saturating_add(filesz),
                paddr.saturating_add(filesz).saturating_add(4),
                paddr.saturating_add(memsz).saturating_sub(8),
                paddr.saturating_add(memsz),
            ] {
                assert_eq!(ours(pa), theirs(pa), "ELF core, physical {pa:#x}");
            }
        }
    } else {
        let len = file.len() as u64;
        for pa in [
            0,
            8,
            len.saturating_sub(8),
            len.saturating_sub(4),
            len,
            0x1000,
        ] {
            assert_eq!(ours(pa), u64_at(file, pa), "raw image, physical {pa:#x}");
        }
    }
}
