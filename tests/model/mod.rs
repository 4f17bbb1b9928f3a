//! A deliberately separate reference model of x86-64 paging, written from the
//! Intel SDM (vol. 3A, 4.5) in another style than `vmwalk::walker`: recursive,
//! with numeric levels, over a map of 8-byte words. It imports nothing from
//! the walker. Used by the property tests and the fuzz target.
#![allow(dead_code)]

pub mod compare;
pub mod rng;
pub mod world;

use std::collections::BTreeMap;

/// Physical memory: 8-byte words; a missing word cannot be read.
pub type Words = BTreeMap<u64, u64>;

#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub levels: u32, // 4 or 5
    pub maxphy: u32,
    pub nxe: bool,
    pub gb_pages: bool,
}

/// What the model says of one address (depth 0 = the top-level table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Mapped {
        pa: u64,
        size: u64,
        w: bool,
        u: bool,
        x: bool,
        leaf: u64,
    },
    NonCanonical,
    NotPresent {
        depth: u32,
    },
    Reserved {
        depth: u32,
    },
    Unreadable {
        depth: u32,
    },
}

pub fn bit(value: u64, n: u32) -> bool {
    (value >> n) & 1 == 1
}

/// Bits n..=m set.
pub fn bits(n: u32, m: u32) -> u64 {
    (n..=m).fold(0, |acc, b| acc | (1 << b))
}

/// log2 of the bytes an entry at `depth` maps.
pub fn shift_at(cpu: Cpu, depth: u32) -> u32 {
    12 + 9 * (cpu.levels - 1 - depth)
}

pub fn width(cpu: Cpu) -> u32 {
    12 + 9 * cpu.levels
}

/// SDM tables 4-15 to 4-20: reserved bits of a present entry.
pub fn is_reserved(cpu: Cpu, depth: u32, e: u64) -> bool {
    let mut mask = if cpu.maxphy < 52 {
        bits(cpu.maxphy, 51)
    } else {
        0
    };
    if !cpu.nxe {
        mask |= 1 << 63;
    }
    let ps = bit(e, 7);
    match shift_at(cpu, depth) {
        39 | 48 => mask |= 1 << 7,
        30 if ps && !cpu.gb_pages => mask |= 1 << 7,
        30 if ps => mask |= bits(13, 29),
        21 if ps => mask |= bits(13, 20),
        _ => {}
    }
    e & mask != 0
}

pub fn is_leaf(cpu: Cpu, depth: u32, e: u64) -> bool {
    let shift = shift_at(cpu, depth);
    shift == 12 || (shift <= 30 && bit(e, 7))
}

pub fn canonical(cpu: Cpu, linear: u64) -> u64 {
    let w = width(cpu);
    if bit(linear, w - 1) {
        linear | !bits(0, w - 1)
    } else {
        linear
    }
}

pub fn linear(cpu: Cpu, va: u64) -> u64 {
    va & bits(0, width(cpu) - 1)
}

pub fn translate(words: &Words, cpu: Cpu, cr3: u64, va: u64) -> Outcome {
    if canonical(cpu, linear(cpu, va)) != va {
        return Outcome::NonCanonical;
    }
    let frame = bits(12, cpu.maxphy - 1);
    let mut table = cr3 & frame;
    let (mut w, mut u, mut x) = (true, true, true);
    for depth in 0..cpu.levels {
        let shift = shift_at(cpu, depth);
        let index = (va / (1u64 << shift)) % 512;
        let Some(&e) = words.get(&(table + index * 8)) else {
            return Outcome::Unreadable { depth };
        };
        if !bit(e, 0) {
            return Outcome::NotPresent { depth };
        }
        if is_reserved(cpu, depth, e) {
            return Outcome::Reserved { depth };
        }
        w &= bit(e, 1);
        u &= bit(e, 2);
        x &= !(cpu.nxe && bit(e, 63));
        if is_leaf(cpu, depth, e) {
            let size = 1u64 << shift;
            let pa = (e & frame & !(size - 1)) + va % size;
            return Outcome::Mapped {
                pa,
                size,
                w,
                u,
                x,
                leaf: e,
            };
        }
        table = e & frame;
    }
    unreachable!("a PT entry always ends a walk")
}

/// Leaves and unusable present entries whose span meets linear `first..=last`,
/// in address order, as (canonical va of the entry's span, outcome of translating it).
pub fn enumerate(words: &Words, cpu: Cpu, cr3: u64, first: u64, last: u64) -> Vec<(u64, Outcome)> {
    let mut out = Vec::new();
    let root = cr3 & bits(12, cpu.maxphy - 1);
    enumerate_table(words, cpu, cr3, (first, last), root, 0, 0, &mut out);
    out
}

#[allow(clippy::too_many_arguments)]
fn enumerate_table(
    words: &Words,
    cpu: Cpu,
    cr3: u64,
    range: (u64, u64),
    table: u64,
    depth: u32,
    base: u64,
    out: &mut Vec<(u64, Outcome)>,
) {
    let shift = shift_at(cpu, depth);
    for index in 0..512u64 {
        let start = base + (index << shift);
        let end = start + (1 << shift) - 1;
        if end < range.0 || start > range.1 {
            continue;
        }
        let va = canonical(cpu, start);
        match words.get(&(table + index * 8)) {
            None => out.push((va, Outcome::Unreadable { depth })),
            Some(&e) if !bit(e, 0) => {}
            Some(&e) if is_reserved(cpu, depth, e) => out.push((va, Outcome::Reserved { depth })),
            Some(&e) if is_leaf(cpu, depth, e) => out.push((va, translate(words, cpu, cr3, va))),
            Some(&e) => enumerate_table(
                words,
                cpu,
                cr3,
                range,
                e & bits(12, cpu.maxphy - 1),
                depth + 1,
                start,
                out,
            ),
        }
    }
}

/// The model's memory view of a raw image.
pub fn words_of(image: &[u8]) -> Words {
    image
        .chunks_exact(8)
        .enumerate()
        .map(|(i, c)| (i as u64 * 8, u64::from_le_bytes(c.try_into().unwrap())))
        .collect()
}
