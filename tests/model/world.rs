//! Random machine states for the property tests and benchmarks of the walker:
//! small images whose page tables hold every page size, flag, reserved bit,
//! garbage entry, shared and cyclic table, and tables outside the image.

use std::collections::BTreeMap;

pub use super::rng::Rng;
use super::{Cpu, bit, bits, canonical, linear, shift_at, words_of};

pub const IMAGE_PAGES: u64 = 40;
pub const TABLE_PAGES: u64 = 12;

/// A random machine state: an image with page tables, CR3, and addresses to probe.
pub struct World {
    pub image: Vec<u8>,
    pub cr3: u64,
    pub cpu: Cpu,
    pub probes: Vec<u64>,
}

pub fn random_entry(rng: &mut Rng, cpu: Cpu) -> u64 {
    if rng.chance(15) {
        return rng.next() & !1; // not present, with whatever software keeps there
    }
    let frame = if rng.chance(55) {
        1 + rng.below(TABLE_PAGES) // another table: shared, cyclic, at any level
    } else {
        rng.below(IMAGE_PAGES + 8) // data, or beyond the image
    };
    let mut e = (frame << 12) | 1 | (rng.next() & 0x1fe); // flags 8:1, PS included
    if rng.chance(30) {
        e &= !(1 << 7);
    }
    e |= rng.next() & bits(9, 11); // ignored
    e |= rng.next() & bits(52, 62); // ignored
    if rng.chance(40) {
        e |= 1 << 63;
    }
    if rng.chance(5) {
        e |= 1 << (12 + rng.below(40)); // a large page's reserved bits, a PAT bit, or an address bit
    }
    if cpu.maxphy < 52 && rng.chance(5) {
        e |= 1 << (u64::from(cpu.maxphy) + rng.below(u64::from(52 - cpu.maxphy)));
    }
    e
}

pub fn world(seed: u64) -> World {
    let mut rng = Rng(seed | 1);
    let cpu = Cpu {
        levels: if rng.chance(50) { 4 } else { 5 },
        maxphy: [36, 39, 40, 46, 52][rng.below(5) as usize],
        nxe: rng.chance(80),
        gb_pages: rng.chance(85),
    };
    let mut image = vec![0u8; (IMAGE_PAGES * 4096) as usize];
    for page in 1..=TABLE_PAGES {
        for _ in 0..(2 + rng.below(8)) {
            let at = (page * 4096 + rng.below(512) * 8) as usize;
            image[at..at + 8].copy_from_slice(&random_entry(&mut rng, cpu).to_le_bytes());
        }
    }
    // CR3 with PCID/flag bits and bit 63, which the walker must ignore.
    let cr3 = ((1 + rng.below(TABLE_PAGES)) << 12) | rng.below(4096) | (rng.next() & (1 << 63));
    let words = words_of(&image);
    let mut present_by_table: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut probes = vec![
        0,
        u64::MAX,
        1 << 47,
        (1 << 47) - 1,
        0xffff_8000_0000_0000,
        1 << 56,
        0xff00_0000_0000_0000,
    ];
    for _ in 0..150 {
        // Follow present entries so most probes reach deep levels.
        let mut va = 0u64;
        let mut table = cr3 & bits(12, cpu.maxphy - 1);
        for depth in 0..cpu.levels {
            let present = present_by_table.entry(table).or_insert_with(|| {
                (0..512)
                    .filter(|i| words.get(&(table + i * 8)).is_some_and(|e| bit(*e, 0)))
                    .collect()
            });
            let index = if present.is_empty() || rng.chance(10) {
                rng.below(512)
            } else {
                present[rng.below(present.len() as u64) as usize]
            };
            va |= index << shift_at(cpu, depth);
            table =
                words.get(&(table + index * 8)).copied().unwrap_or(0) & bits(12, cpu.maxphy - 1);
        }
        va |= rng.below(1 << 12)
            | (rng.next() & bits(12, 29) & if rng.chance(50) { u64::MAX } else { 0 });
        probes.push(canonical(cpu, linear(cpu, va)));
        probes.push(rng.next());
    }
    World {
        image,
        cr3,
        cpu,
        probes,
    }
}
