//! A deliberately separate reference model of AArch64 stage 1 translation
//! (EL1&0 regime, 4 KB granule), written from the Arm ARM's pseudocode
//! (`AArch64.VAIsOutOfRange`, `AArch64.S1StartLevel`, `AArch64.S1TTBaseAddress`,
//! `AArch64.S1DirectBasePermissions`) in another style than
//! `vmwalk::walker::aarch64`: recursive, with numeric levels and registers
//! decoded bit by bit, over a map of 8-byte words. It imports nothing from the
//! walker. Used by the property tests and the fuzz target.
// Arm's register and field names (TCR_EL1, TxSZ) are written as the Arm ARM writes them.
#![allow(dead_code, clippy::doc_markdown)]

pub mod compare;
pub mod rng;
pub mod world;

use std::collections::BTreeMap;

/// Physical memory: 8-byte words; a missing word cannot be read.
pub type Words = BTreeMap<u64, u64>;

#[derive(Clone, Copy, Debug)]
pub struct Regs {
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
}

/// What the model says of one address. Levels are 0..=3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Mapped {
        /// The page or block's first virtual address.
        base: u64,
        pa: u64,
        size: u64,
        /// EL1 write, EL0 read, EL0 write, EL1 execute, EL0 execute.
        pw: bool,
        ur: bool,
        uw: bool,
        px: bool,
        ux: bool,
        leaf: u64,
        af_fault: bool,
    },
    /// Registers the walker does not model (granule, TxSZ, DS).
    Unsupported,
    OutOfRange,
    WalkDisabled,
    /// Address size fault on the TTBR's table address.
    BaseAddressSize,
    Invalid {
        level: u32,
    },
    Reserved {
        level: u32,
    },
    AddressSize {
        level: u32,
    },
    Unreadable {
        level: u32,
    },
}

pub fn bit(value: u64, n: u32) -> bool {
    (value >> n) & 1 == 1
}

/// Bits n..=m set.
pub fn bits(n: u32, m: u32) -> u64 {
    (n..=m).fold(0, |acc, b| acc | (1 << b))
}

fn field(value: u64, low: u32, width: u32) -> u64 {
    (value >> low) % (1 << width)
}

/// TCR_EL1 decoded for one range (upper = TTBR1).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub txsz: u32,
    pub tbi: bool,
    pub epd: bool,
    pub hpd: bool,
    pub ttbr: u64,
}

pub fn params(regs: Regs, upper: bool) -> Params {
    let t = regs.tcr;
    if upper {
        Params {
            txsz: field(t, 16, 6) as u32,
            tbi: bit(t, 38),
            epd: bit(t, 23),
            hpd: bit(t, 42),
            ttbr: regs.ttbr1,
        }
    } else {
        Params {
            txsz: field(t, 0, 6) as u32,
            tbi: bit(t, 37),
            epd: bit(t, 7),
            hpd: bit(t, 41),
            ttbr: regs.ttbr0,
        }
    }
}

/// 4 KB granules (TG0 = 0b00, TG1 = 0b10), no DS, TxSZ in 16..=39.
pub fn supported(regs: Regs) -> bool {
    let t = regs.tcr;
    field(t, 14, 2) == 0
        && field(t, 30, 2) == 2
        && !bit(t, 59)
        && [false, true]
            .iter()
            .all(|&upper| (16..=39).contains(&params(regs, upper).txsz))
}

/// IPS, with 0b110 and 0b111 as the 48-bit implemented size.
pub fn pa_size(regs: Regs) -> u32 {
    [32, 36, 40, 42, 44, 48, 48, 48][field(regs.tcr, 32, 3) as usize]
}

pub fn start_level(inputsize: u32) -> u32 {
    3 - (inputsize - 1 - 12) / 9
}

/// `AArch64.S1TTBaseAddress` for 4 KB, 48-bit: TTBR bits 47:1, aligned to the
/// initial table's size.
pub fn table_base(p: Params) -> u64 {
    let inputsize = 64 - p.txsz;
    let levels = 3 - start_level(inputsize);
    let tsize = (inputsize - 12) - levels * 9;
    let baddr = p.ttbr & bits(1, 47);
    baddr & !((1u64 << (tsize + 3)) - 1)
}

/// A hierarchical-permission summary of the tables above a leaf.
#[derive(Clone, Copy, Debug, Default)]
struct Above {
    ap: u64,
    uxn: bool,
    pxn: bool,
}

pub fn translate(words: &Words, regs: Regs, va: u64) -> Outcome {
    if !supported(regs) {
        return Outcome::Unsupported;
    }
    let upper = bit(va, 55);
    let p = params(regs, upper);
    let inputsize = 64 - p.txsz;
    let addrtop = if p.tbi { 55 } else { 63 };
    if (inputsize..=addrtop).any(|b| bit(va, b) != upper) {
        return Outcome::OutOfRange;
    }
    if p.epd {
        return Outcome::WalkDisabled;
    }
    let base = table_base(p);
    if base >= 1 << pa_size(regs) {
        return Outcome::BaseAddressSize;
    }
    let ia = va % (1 << inputsize);
    let outcome = walk(
        words,
        regs,
        p,
        ia,
        start_level(inputsize),
        base,
        Above::default(),
    );
    match outcome {
        Outcome::Mapped {
            base,
            pa,
            size,
            pw,
            ur,
            uw,
            px,
            ux,
            leaf,
            af_fault,
        } if upper => Outcome::Mapped {
            base: base | !bits(0, inputsize - 1),
            pa,
            size,
            pw,
            ur,
            uw,
            px,
            ux,
            leaf,
            af_fault,
        },
        other => other,
    }
}

fn walk(
    words: &Words,
    regs: Regs,
    p: Params,
    ia: u64,
    level: u32,
    table: u64,
    above: Above,
) -> Outcome {
    let size = 1u64 << (12 + 9 * (3 - level));
    let index = (ia / size) % 512;
    let Some(&d) = words.get(&(table + 8 * index)) else {
        return Outcome::Unreadable { level };
    };
    if !bit(d, 0) {
        return Outcome::Invalid { level };
    }
    let limit = 1u64 << pa_size(regs);
    let table_or_page = bit(d, 1);
    if table_or_page && level < 3 {
        let next = d & bits(12, 47);
        if next >= limit {
            return Outcome::AddressSize { level };
        }
        let above = if p.hpd {
            above
        } else {
            Above {
                ap: above.ap | field(d, 61, 2),
                uxn: above.uxn || bit(d, 60),
                pxn: above.pxn || bit(d, 59),
            }
        };
        return walk(words, regs, p, ia, level + 1, next, above);
    }
    // A block at level 0 and the 0b01 encoding at level 3 are reserved.
    if level == 0 || (level == 3 && !table_or_page) {
        return Outcome::Reserved { level };
    }
    let oa = d & bits(size.trailing_zeros(), 47);
    if oa >= limit {
        return Outcome::AddressSize { level };
    }
    // AArch64.S1DirectBasePermissions: the leaf's AP, then APTable.
    let (pr, mut pw, mut ur, mut uw) = match field(d, 6, 2) {
        0b00 => (true, true, false, false),
        0b01 => (true, true, true, true),
        0b10 => (true, false, false, false),
        _ => (true, false, true, false),
    };
    assert!(pr);
    match above.ap {
        0b00 => {}
        0b01 => (ur, uw) = (false, false),
        0b10 => (pw, uw) = (false, false),
        _ => (pw, ur, uw) = (false, false, false),
    }
    Outcome::Mapped {
        base: ia - ia % size,
        pa: oa + ia % size,
        size,
        pw,
        ur,
        uw,
        px: !(bit(d, 53) || above.pxn || uw),
        ux: !(bit(d, 54) || above.uxn),
        leaf: d,
        af_fault: !bit(d, 10) && !bit(regs.tcr, 39),
    }
}

/// Leaves and faulting descriptors of both ranges in address order, as
/// (virtual address of the descriptor's span, outcome); invalid descriptors
/// and disabled ranges are left out.
pub fn enumerate(words: &Words, regs: Regs) -> Vec<(u64, Outcome)> {
    let mut out = Vec::new();
    if !supported(regs) {
        return out;
    }
    for upper in [false, true] {
        let p = params(regs, upper);
        if p.epd {
            continue;
        }
        let inputsize = 64 - p.txsz;
        let high = if upper { !bits(0, inputsize - 1) } else { 0 };
        let base = table_base(p);
        if base >= 1 << pa_size(regs) {
            out.push((high, Outcome::BaseAddressSize));
            continue;
        }
        let entries = 1u64 << (inputsize - (12 + 9 * (3 - start_level(inputsize))));
        enumerate_table(
            words,
            regs,
            start_level(inputsize),
            base,
            0,
            entries,
            high,
            &mut out,
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn enumerate_table(
    words: &Words,
    regs: Regs,
    level: u32,
    table: u64,
    first: u64,
    entries: u64,
    high: u64,
    out: &mut Vec<(u64, Outcome)>,
) {
    let span = 1u64 << (12 + 9 * (3 - level));
    for index in 0..entries {
        let ia = first + index * span;
        let va = ia | high;
        match words.get(&(table + 8 * index)) {
            None => out.push((va, Outcome::Unreadable { level })),
            Some(&d) if !bit(d, 0) => {}
            Some(&d) if bit(d, 1) && level < 3 && (d & bits(12, 47)) < (1 << pa_size(regs)) => {
                enumerate_table(words, regs, level + 1, d & bits(12, 47), ia, 512, high, out);
            }
            // A leaf or a fault: what translating its first address says.
            Some(_) => out.push((va, translate(words, regs, va))),
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
