//! Arbitrary bytes as `ptwalk`'s image readers see a file: raw memory, an ELF
//! core or a Windows crash dump (the first bytes decide, as for a real file).
//! Opening and walking must not panic, hang or allocate without bound; the
//! readers' errors are fine. The first input byte picks 4- or 5-level paging.
#![no_main]

#[path = "../../src/bin/ptwalk/dump.rs"]
mod dump;
#[path = "../../src/bin/ptwalk/image.rs"]
mod image;

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use memmap2::MmapMut;
use vmwalk::walker::{Paging, VirtAddr};

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
