//! A large synthetic x86-64 capture for `ptwalk map` (`tests/ptwalk_map.rs`
//! and `benches/dumps.rs`): a 4 GiB raw image, sparse, whose tables map
//! [`RUNS`] 4 KiB pages that each make a run of their own (no two are
//! physically contiguous), in both halves, every access class among them.

use std::os::unix::fs::FileExt as _;
use std::path::Path;

/// The top-level table.
pub const CR3: u64 = 0x1000;
/// Page tables: 128 under the kernel's PD, 68 under the user's.
const KERNEL_PTS: u64 = 128;
const USER_PTS: u64 = 68;
/// The runs the capture maps: every PTE of every PT.
#[allow(dead_code, reason = "the bench does not count them")]
pub const RUNS: usize = (128 + 68) * 512;
const _: () = assert!(RUNS as u64 == (KERNEL_PTS + USER_PTS) * 512);
/// The image's size.
pub const SIZE: u64 = 4 << 30;

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const A: u64 = 0x20;
const NX: u64 = 1 << 63;

/// Writes the capture to `path`.
pub fn write(path: &Path) {
    let file = std::fs::File::create(path).expect("the capture");
    file.set_len(SIZE).expect("its size");
    let put = |table: u64, index: u64, value: u64| {
        file.write_all_at(&value.to_le_bytes(), table + 8 * index)
            .expect("an entry");
    };
    // PML4: 0x1f0 -> kernel PDPT 0x2000, 0xff -> user PDPT 0x3000.
    put(CR3, 0x1f0, 0x2000 | P | RW | A);
    put(CR3, 0xff, 0x3000 | P | RW | US | A);
    put(0x2000, 0, 0x4000 | P | RW | A);
    put(0x3000, 0x1db, 0x5000 | P | RW | US | A);
    let mut leaf = 0_u64;
    for pt in 0..KERNEL_PTS + USER_PTS {
        let (pd, index, user) = if pt < KERNEL_PTS {
            (0x4000, 2 * pt, 0)
        } else {
            (0x5000, 2 * (pt - KERNEL_PTS), US)
        };
        let table = 0x10_0000 + pt * 0x1000;
        put(pd, index, table | P | RW | A | user);
        let mut entries = Vec::with_capacity(512 * 8);
        for _ in 0..512 {
            // Every other frame: no run continues another.
            let pa = 0x1000_0000 + 2 * leaf * 0x1000;
            let access = match leaf % 4 {
                0 => NX,
                1 => RW | NX,
                2 => 0,
                _ => RW,
            };
            entries.extend_from_slice(&(pa | P | A | user | access).to_le_bytes());
            leaf += 1;
        }
        file.write_all_at(&entries, table).expect("a page table");
    }
}
