//! Arbitrary bytes as `ptwalk`'s image readers see a file: raw memory, an ELF
//! core or a Windows crash dump (the first bytes decide, as for a real file).
//! Opening and walking must not panic, hang or allocate without bound; the
//! readers' errors are fine. What an opened image reads must equal a second,
//! simple reading of the same bytes: the file itself for raw memory, the
//! program headers read by hand for an ELF core (file bytes, zero up to
//! `p_memsz`, an error across the file's end), kdmp-parser's own physical
//! reader for a crash dump. The first input byte picks 4- or 5-level paging.
#![no_main]

#[path = "../../src/bin/ptwalk/dump.rs"]
mod dump;
#[path = "../../src/bin/ptwalk/image.rs"]
mod image;

use std::io::Cursor;
use std::rc::Rc;

use kdmp_parser::gxa::{Gpa, Gxa as _};
use kdmp_parser::parse::KernelDumpParser;
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

/// The image's reads against a second reading of `file`.
fn second_reading(image: &image::Image, file: &[u8]) {
    let ours = |pa: u64| image.read_u64(PhysAddr(pa)).ok();
    if file.starts_with(b"PAGE") {
        let Ok(parser) = KernelDumpParser::with_reader(Cursor::new(file.to_vec())) else {
            return;
        };
        let reader = kdmp_parser::phys::Reader::new(&parser);
        let pages: Vec<u64> = parser
            .physmem()
            .take(64)
            .map(|(gpa, _)| gpa.u64())
            .collect();
        for page in pages {
            for pa in [page, page + 0x7f8, page + 0xff8] {
                let mut word = [0u8; 8];
                let theirs = reader
                    .read_exact(Gpa::new(pa), &mut word)
                    .ok()
                    .map(|()| u64::from_le_bytes(word));
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
        for &(paddr, offset, filesz, memsz) in &loads {
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
                let within = pa.wrapping_sub(paddr);
                let theirs = if pa < paddr || within.saturating_add(8) > memsz {
                    None
                } else if within >= filesz {
                    Some(0)
                } else if within + 8 > filesz {
                    None
                } else {
                    u64_at(file, offset.saturating_add(within))
                };
                if pa >= paddr {
                    assert_eq!(ours(pa), theirs, "ELF core, physical {pa:#x}");
                }
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
