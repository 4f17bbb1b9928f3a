//! Random AArch64 machine states: small images whose tables hold every
//! descriptor type at every level (tables, 1 GiB and 2 MiB blocks, pages,
//! reserved encodings, invalid descriptors with garbage), every AP/XN and
//! APTable/XNTable combination, addresses beyond the PA size, shared and
//! cyclic tables and tables outside the image; registers with several
//! T0SZ/T1SZ/IPS values, TBI, EPD, HPD, HA, ASID and CnP bits, and now and
//! then an unsupported granule or DS.

use std::collections::BTreeMap;

pub use super::rng::Rng;
use super::{Regs, bit, bits, params, start_level, supported, table_base, words_of};

pub const IMAGE_PAGES: u64 = 40;
pub const TABLE_PAGES: u64 = 12;

pub struct World {
    pub image: Vec<u8>,
    pub regs: Regs,
    pub probes: Vec<u64>,
}

pub fn random_descriptor(rng: &mut Rng) -> u64 {
    if rng.chance(12) {
        return rng.next() & !1; // invalid, with whatever software keeps there
    }
    let address = match rng.below(10) {
        // Another table: shared, cyclic, at any level.
        0..=4 => (1 + rng.below(TABLE_PAGES)) << 12,
        // Data, or beyond the image.
        5 | 6 => rng.below(IMAGE_PAGES + 8) << 12,
        // A block-aligned address, maybe beyond a small PA size.
        7 => (rng.below(1 << 14) << 30) | (rng.below(4) << 21),
        // Anything in bits 47:12.
        _ => rng.next() & bits(12, 47) & (u64::MAX >> rng.below(30)),
    };
    let kind = if rng.chance(55) { 0b11 } else { 0b01 };
    // Lower attributes 11:2, upper attributes and table bits 63:52 (PXN,
    // UXN, APTable...), and RES0 bits 51:48 now and then.
    let mut d = address | kind | (rng.next() & bits(2, 11)) | (rng.next() & bits(52, 63));
    if rng.chance(10) {
        d |= rng.next() & bits(48, 51);
    }
    if rng.chance(50) {
        d &= !bits(59, 62); // no table restrictions, so that leaves below stay usable
    }
    d
}

fn pick(rng: &mut Rng, values: &[u64]) -> u64 {
    values[rng.below(values.len() as u64) as usize]
}

pub fn random_regs(rng: &mut Rng) -> Regs {
    let t0sz = pick(rng, &[16, 16, 17, 20, 24, 25, 25, 28, 33, 34, 36, 39]);
    let t1sz = pick(rng, &[16, 16, 17, 21, 24, 25, 25, 30, 33, 34, 37, 39]);
    let ips = rng.below(8);
    let mut tcr = t0sz | t1sz << 16 | 0b10 << 30 | ips << 32;
    for (flag, percent) in [
        (37, 40),
        (38, 40),
        (39, 30),
        (41, 20),
        (42, 20),
        (7, 8),
        (23, 8),
    ] {
        if rng.chance(percent) {
            tcr |= 1 << flag;
        }
    }
    // Fields the walker does not read: IRGN, ORGN, SH, A1, AS, HD.
    tcr |= rng.next() & (bits(8, 13) | bits(24, 29) | 1 << 22 | 1 << 36 | 1 << 40);
    if rng.chance(4) {
        tcr ^= pick(
            rng,
            &[1 << 14, 1 << 15, 1 << 30, 1 << 31, 1 << 59, 40, 15 << 16],
        );
    }
    // Table pages, with ASID (63:48), CnP (bit 0) and low garbage; now and
    // then beyond the image or the PA size.
    let mut ttbr = || {
        let table = if rng.chance(5) {
            rng.next() & bits(12, 47)
        } else {
            (1 + rng.below(TABLE_PAGES)) << 12
        };
        table | (rng.next() & bits(48, 63)) | (rng.next() & if rng.chance(30) { 0xfff } else { 1 })
    };
    Regs {
        ttbr0: ttbr(),
        ttbr1: ttbr(),
        tcr,
    }
}

pub fn world(seed: u64) -> World {
    world_with(seed, 2..10)
}

/// As [`world`], with tables this full: ranged walks meet long runs of
/// pages in one level 3 table.
pub fn dense_world(seed: u64) -> World {
    world_with(seed, 256..512)
}

fn world_with(seed: u64, descriptors_per_table: std::ops::Range<u64>) -> World {
    let mut rng = Rng(seed | 1);
    let regs = random_regs(&mut rng);
    let mut image = vec![0u8; (IMAGE_PAGES * 4096) as usize];
    for page in 1..=TABLE_PAGES {
        let count = descriptors_per_table.start
            + rng.below(descriptors_per_table.end - descriptors_per_table.start);
        for _ in 0..count {
            let at = (page * 4096 + rng.below(512) * 8) as usize;
            image[at..at + 8].copy_from_slice(&random_descriptor(&mut rng).to_le_bytes());
        }
        // Small initial tables have few entries: fill the first ones too.
        if rng.chance(50) {
            let at = (page * 4096 + rng.below(16) * 8) as usize;
            image[at..at + 8].copy_from_slice(&random_descriptor(&mut rng).to_le_bytes());
        }
    }
    let words = words_of(&image);
    let mut valid_by_table: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut probes = vec![
        0,
        u64::MAX,
        1 << 55,
        (1 << 55) - 1,
        0xffff_0000_0000_0000,
        0x00ff_ffff_ffff_ffff,
    ];
    for _ in 0..150 {
        probes.push(rng.next());
        if !supported(regs) {
            continue;
        }
        // Follow valid descriptors so most probes reach deep levels.
        let upper = rng.chance(50);
        let p = params(regs, upper);
        let inputsize = 64 - p.txsz;
        let mut ia = 0u64;
        let mut table = table_base(p);
        for level in start_level(inputsize)..=3 {
            let shift = 12 + 9 * (3 - level);
            let valid = valid_by_table.entry(table).or_insert_with(|| {
                (0..512)
                    .filter(|i| words.get(&(table + i * 8)).is_some_and(|d| bit(*d, 0)))
                    .collect()
            });
            let index = if valid.is_empty() || rng.chance(10) {
                rng.below(512)
            } else {
                valid[rng.below(valid.len() as u64) as usize]
            };
            ia |= index << shift;
            table = words.get(&(table + index * 8)).copied().unwrap_or(0) & bits(12, 47);
        }
        ia = (ia
            | rng.below(1 << 12)
            | (rng.next() & bits(12, 29) & if rng.chance(50) { u64::MAX } else { 0 }))
            & bits(0, inputsize - 1);
        let mut va = if upper {
            ia | !bits(0, inputsize - 1)
        } else {
            ia
        };
        if rng.chance(25) {
            va = (va & bits(0, 55)) | (rng.next() & bits(56, 63)); // a tag
        }
        if rng.chance(5) {
            va ^= 1 << (inputsize + rng.below(u64::from(64 - inputsize)) as u32);
        }
        probes.push(va);
    }
    World {
        image,
        regs,
        probes,
    }
}
