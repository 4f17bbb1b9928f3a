//! Arbitrary bytes as `ptwalk`'s image readers see a file: raw memory, an ELF
//! core, a Windows crash dump, or a file it refuses (the first bytes decide,
//! as for a real file, through `format.rs`); then the registers the capture
//! records (`recorded.rs`: a crash dump header's, x64 or ARM64, or an x86
//! QEMU core's notes). Opening, reading the registers and walking must not
//! panic, hang or allocate without bound; the readers' errors are fine.
//! What an opened image reads must equal a second, simple reading of the
//! same bytes: the file itself for raw memory, the program headers read by
//! hand for an ELF core (file bytes, zero up to `p_memsz`, an error across
//! the file's end), the header's runs or bitmap read by hand for a crash
//! dump. So must what is refused (the signatures and the header fields read
//! by hand) and the registers (the header's fields, or the QEMU notes walked
//! by hand). The first input byte picks 4- or 5-level paging (bit 0) and the
//! vCPU asked for (bits 1-2: none, 0, 1, 2).
#![no_main]

#[path = "../../src/bin/ptwalk/crash_dump.rs"]
mod crash_dump;
#[path = "../../src/bin/ptwalk/format.rs"]
mod format;
#[allow(dead_code, reason = "the target opens maps, not paths")]
#[path = "../../src/bin/ptwalk/image.rs"]
mod image;
#[allow(dead_code, reason = "what is said on stderr is not checked here")]
#[path = "../../src/bin/ptwalk/recorded.rs"]
mod recorded;
#[path = "../../src/bin/ptwalk/segment.rs"]
mod segment;

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use memmap2::MmapMut;
use recorded::Recorded;
use vmwalk::walker::aarch64::discovery as arm_discovery;
use vmwalk::walker::x86_64::discovery as x86_discovery;
use vmwalk::walker::{Paging, PhysAddr, PhysicalMemory, VirtAddr, aarch64};

const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_NXE: u64 = 1 << 11;

const ADDRESSES: [u64; 4] = [0, 0xffff_f800_0000_0000, 0x7ffe_0000, 0xff11_0000_0000_0000];

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
    let opened = image::Image::from_map(map, "the input");
    if let Some(why) = refused_by_hand(file) {
        assert!(opened.is_err(), "{why}: opened");
    }
    let Ok(image) = opened else {
        return;
    };
    second_reading(&image, file);
    pages_by_hand(&image, file);
    let cpu = match (options >> 1) & 3 {
        0 => None,
        n => Some(usize::from(n) - 1),
    };
    let recorded = recorded::recorded_registers(&image, cpu);
    registers_by_hand(&recorded, file, cpu);
    let (cr3, la57) = match recorded {
        Ok(Some(Recorded::X86_64 { cr3, la57, .. })) => (cr3, la57.unwrap_or(options & 1 != 0)),
        Ok(Some(Recorded::Aarch64 {
            ttbr0, ttbr1, tcr, ..
        })) => {
            if let Ok(paging) = aarch64::Paging::from_registers(ttbr0, ttbr1, tcr) {
                for va in ADDRESSES {
                    let _ = paging.translate(&image, VirtAddr(va));
                }
            }
            (0x1000, options & 1 != 0)
        }
        _ => (0x1000, options & 1 != 0),
    };
    let cr4 = CR4_PAE | if la57 { CR4_LA57 } else { 0 };
    let paging = Paging::from_registers(cr3, cr4, EFER_NXE);
    let _ = image.check_table(paging.root());
    for va in ADDRESSES.into_iter().chain([u64::from(options) << 39]) {
        let _ = paging.translate(&image, VirtAddr(va));
    }
});

/// `ptwalk spaces`' view of the capture: whole, aligned pages (ELF
/// segments may overlap: no order); for a raw image exactly the file's
/// 4 KiB chunks, in order. Each page also
/// goes through the discovery tests, which must not panic on any bytes.
fn pages_by_hand(image: &image::Image, file: &[u8]) {
    let mut count = 0_usize;
    for (pa, page) in image.pages().take(4096) {
        assert_eq!(page.len(), 4096, "a whole page at {pa:#x}");
        assert_eq!(pa % 4096, 0, "an aligned page");
        let _ = (
            x86_discovery::LowStub::of(page),
            x86_discovery::self_map_index(pa, page),
        );
        let _ = arm_discovery::self_map_index(pa, page);
        count += 1;
    }
    let raw = !file.starts_with(b"PAGE") && !file.starts_with(b"\x7fELF");
    if raw {
        assert_eq!(count, (file.len() / 4096).min(4096), "a raw image's pages");
        for (i, (pa, page)) in image.pages().take(64).enumerate() {
            assert_eq!(pa, i as u64 * 4096);
            assert_eq!(Some(page), file.get(i * 4096..(i + 1) * 4096), "page {i}");
        }
    }
}

fn u32_at(file: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(
        file.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Why ptwalk must refuse `file`, read by hand from the signatures in
/// docs/dumps.md; `None` if it may open it.
fn refused_by_hand(file: &[u8]) -> Option<&'static str> {
    let magic = u32_at(file, 0);
    for (signature, why) in [
        (&b"MDMP"[..], "a minidump"),
        (b"PAGEDUMP", "a 32-bit dump"),
        (b"hibr", "a hibernation file"),
        (b"HIBR", "a hibernation file"),
        (b"wake", "a hibernation file"),
        (b"WAKE", "a hibernation file"),
        (b"RSTR", "a hibernation file"),
    ] {
        if file.starts_with(signature) {
            return Some(why);
        }
    }
    if matches!(
        magic,
        Some(0xbed2_bed0 | 0xbad1_bad1 | 0xbed2_bed2 | 0xbed3_bed3)
    ) {
        return Some("a VMware state");
    }
    if file.starts_with(b"PAGEDU64") {
        if u32_at(file, 0xf98) == Some(4) {
            return Some("a triage dump");
        }
        if !matches!(u32_at(file, 0x30), Some(0x8664 | 0xaa64)) {
            return Some("a dump of another machine, or cut in its header");
        }
    }
    if file.starts_with(b"PAGE") && file.len() < 0x2000 {
        return Some("a dump cut in its header");
    }
    if file.starts_with(b"\x7fELF") {
        if file.get(4) == Some(&1) {
            return Some("a 32-bit ELF file");
        }
        // A whole little-endian ELF64 header (64 bytes, e_ehsize aside) of
        // a type other than ET_CORE.
        if file.get(4) == Some(&2) && file.get(5) == Some(&1) && file.len() >= 64 {
            if let Some(e_type) = u16_at(file, 16) {
                if e_type != 4 && file.get(6) == Some(&1) {
                    return Some("an ELF file that is not a core");
                }
            }
        }
    }
    None
}

/// The registers `recorded_registers` gave, against the same fields read by
/// hand: a crash dump header's `DirectoryTableBase` (x64: CR3; ARM64: the
/// TTBRs, Windows' `TCR_EL1`), or the QEMU note of the vCPU asked for.
fn registers_by_hand(recorded: &anyhow::Result<Option<Recorded>>, file: &[u8], cpu: Option<usize>) {
    if file.starts_with(b"PAGE") {
        let directory_table_base = u64_at(file, 0x10).expect("an opened dump has a header");
        match (recorded, cpu, u32_at(file, 0x30)) {
            (Err(_), Some(_), _) => {}
            (
                Ok(Some(Recorded::X86_64 {
                    cr3, la57: None, ..
                })),
                None,
                Some(0x8664),
            ) => {
                assert_eq!(*cr3, directory_table_base);
            }
            (
                Ok(Some(Recorded::Aarch64 {
                    ttbr0, ttbr1, tcr, ..
                })),
                None,
                Some(0xaa64),
            ) => {
                assert_eq!(*ttbr0, directory_table_base & 0x0000_ffff_ffff_f000);
                assert_eq!(*ttbr1, *ttbr0 + 0x800);
                assert_eq!(*tcr, 0x615_b551_3511);
            }
            _ => panic!("a dump's registers, cpu {cpu:?}: not as its header says"),
        }
    } else if file.starts_with(b"\x7fELF") {
        let Some(states) = qemu_notes_by_hand(file) else {
            return; // not little-endian, or notes object reads otherwise
        };
        let want = match (states, cpu) {
            (Err(()), _) => None,
            (Ok((_, states)), Some(_)) if states.is_empty() => None,
            (Ok((_, states)), None) if states.is_empty() => {
                assert!(matches!(recorded, Ok(None)), "no QEMU note: no registers");
                return;
            }
            (Ok((3, _)), _) => None, // EM_386: vCPU 0 not in long mode
            (Ok((_, states)), cpu) => states
                .get(cpu.unwrap_or(0))
                .copied()
                .flatten()
                .filter(|&(cr0, _, cr4, _)| cr0 & (1 << 31) != 0 && cr4 & CR4_PAE != 0),
        };
        match (recorded, want) {
            (Err(_), None) => {}
            (
                Ok(Some(Recorded::X86_64 {
                    cr3,
                    la57,
                    user_mode,
                    ..
                })),
                Some((_, want_cr3, cr4, cs)),
            ) => {
                assert_eq!(*cr3, want_cr3);
                assert_eq!(*la57, Some(cr4 & CR4_LA57 != 0));
                assert_eq!(*user_mode, cs & 3 == 3);
            }
            _ => panic!("a core's registers, cpu {cpu:?}: not as its notes say ({want:x?})"),
        }
    } else {
        assert!(
            matches!(recorded, Ok(None)) == cpu.is_none(),
            "a raw image records no registers"
        );
    }
}

/// `(cr0, cr3, cr4, cs selector)` of a readable `QEMUCPUState`, else `None`.
type State = Option<(u64, u64, u64, u32)>;

/// A little-endian ELF64 core's `e_machine` and its `QEMU` notes (`n_type`
/// 0), walked by hand through the `PT_NOTE` segments as the gABI lays notes
/// out (header, name, descriptor, each padded to `p_align`: 4 when it is 4 or
/// less, or 8); `Err` for a malformed note segment (any, even after the QEMU
/// notes) of an x86 core. `None`: not little-endian.
fn qemu_notes_by_hand(file: &[u8]) -> Option<Result<(u64, Vec<State>), ()>> {
    if file.get(5) != Some(&1) {
        return None;
    }
    let machine = u16_at(file, 18)?;
    if machine != 62 && machine != 3 {
        return Some(Ok((machine, Vec::new())));
    }
    let (phoff, phentsize, phnum) = (u64_at(file, 32)?, u16_at(file, 54)?, u16_at(file, 56)?);
    let mut states = Vec::new();
    for i in 0..phnum {
        let at = phoff.checked_add(i * phentsize)?;
        if u32_at(file, at)? != 4 {
            continue; // not PT_NOTE
        }
        let (offset, size, align) = (
            u64_at(file, at + 8)?,
            u64_at(file, at + 32)?,
            u64_at(file, at + 48)?,
        );
        let align = match align {
            0..=4 => 4,
            8 => 8,
            _ => return Some(Err(())),
        };
        if size == 0 {
            continue; // no bytes to read, wherever they would be
        }
        let Some(notes) = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(offset, size)| file.get(offset..offset.checked_add(size)?))
        else {
            return Some(Err(()));
        };
        // object reads a note header (u32 fields) only at a 4-byte-aligned
        // address: the file is mapped at a page boundary.
        if !notes.is_empty() && offset % 4 != 0 {
            return Some(Err(()));
        }
        let mut at = 0_usize;
        while at < notes.len() {
            let rest = &notes[at..];
            let (Some(namesz), Some(descsz), Some(kind)) =
                (u32_at(rest, 0), u32_at(rest, 4), u32_at(rest, 8))
            else {
                return Some(Err(()));
            };
            let (namesz, descsz) = (namesz as usize, descsz as usize);
            let Some(name) = rest.get(12..12 + namesz) else {
                return Some(Err(()));
            };
            let desc_at = (12 + namesz).next_multiple_of(align);
            let Some(desc) = rest.get(desc_at..desc_at + descsz) else {
                return Some(Err(()));
            };
            let name = name
                .iter()
                .rposition(|&b| b != 0)
                .map_or(&name[..0], |end| &name[..=end]);
            if name == b"QEMU" && kind == 0 {
                states.push(qemu_state_by_hand(desc));
            }
            at += (desc_at + descsz).next_multiple_of(align);
        }
    }
    Some(Ok((u64::from(machine), states)))
}

/// QEMUCPUState version 1, `size` from 0x1b0 and within the note: CR0 at
/// 0x188, CR3 at 0x1a0, CR4 at 0x1a8, the CS selector at 0x98.
fn qemu_state_by_hand(desc: &[u8]) -> State {
    let size = u32_at(desc, 4)? as usize;
    if u32_at(desc, 0)? != 1 || size < 0x1b0 || size > desc.len() {
        return None;
    }
    Some((
        u64_at(desc, 0x188)?,
        u64_at(desc, 0x1a0)?,
        u64_at(desc, 0x1a8)?,
        u32_at(desc, 0x98)?,
    ))
}

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
            // Eight bytes past the end of the segment, or of the address
            // space, are no bytes at all.
            if within.checked_add(8).is_none_or(|end| end > memsz) || pa.checked_add(8).is_none() {
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
