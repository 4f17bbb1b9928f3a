//! The committed AArch64 Linux-guest fixtures, decoded.
//! `scripts/mmu/linux_guest_aarch64.py --write-fixtures` writes them as
//! `tests/fixtures/linux-aarch64-*.fixture.gz`. The table pages and the
//! text fields are read as `tests/fixtures/mod.rs` reads the x86-64 ones.
//!
//! Format (gzip): the line `vmwalk-linux-aarch64-fixture 1`; header lines
//! `key value`: `ttbr0`, `ttbr1`, `tcr`, `cpsr` in hex as the gdbstub read
//! them, `stopped` (`el0` or `el1`: where the CPU was), then `pages N`; N
//! records of a u64 LE physical address and the page's 512 descriptors, each
//! stored as the wrapping difference from the one before it (the first from
//! 0); then `gva2gpa N el1 el1-pan el0` and N lines `0x<va> <el1> <el1-pan>
//! <el0>`: QEMU's `gva2gpa` answer with CPSR set to EL1h, to EL1h with
//! PSTATE.PAN, and to EL0t, each `0x<pa>` or `-` for `Unmapped`.
// Arm's register names are written as the Arm ARM writes them.
#![allow(
    dead_code,
    clippy::doc_markdown,
    reason = "each crate that includes this uses a part"
)]

use std::io::Read as _;

use flate2::read::GzDecoder;

pub use crate::fixtures::{NotInFixture, Tables};
use crate::fixtures::{field, hex, line};

/// What QEMU answered for one address, by how the CPU was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answers {
    /// EL1, PSTATE.PAN clear.
    pub el1: Option<u64>,
    /// EL1, PSTATE.PAN set.
    pub el1_pan: Option<u64>,
    /// EL0.
    pub el0: Option<u64>,
}

pub struct Fixture {
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub cpsr: u64,
    /// `el0` or `el1`: where the CPU had stopped.
    pub stopped: String,
    pub tables: Tables,
    /// `(va, answers)`, in address order.
    pub gva2gpa: Vec<(u64, Answers)>,
}

fn answer(s: &str) -> Option<u64> {
    (s != "-").then(|| hex(s))
}

/// Reads `tests/fixtures/<name>`.
pub fn load(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut bytes = Vec::new();
    GzDecoder::new(file).read_to_end(&mut bytes).expect("gzip");
    let data = &mut bytes.as_slice();

    assert_eq!(line(data), "vmwalk-linux-aarch64-fixture 1");
    let ttbr0 = hex(field(data, "ttbr0"));
    let ttbr1 = hex(field(data, "ttbr1"));
    let tcr = hex(field(data, "tcr"));
    let cpsr = hex(field(data, "cpsr"));
    let stopped = field(data, "stopped").to_owned();

    let tables = Tables::read(data);

    let (count, views) = field(data, "gva2gpa").split_once(' ').expect("count views");
    assert_eq!(views, "el1 el1-pan el0");
    let gva2gpa = (0..count.parse().expect("count"))
        .map(|_| {
            let f: Vec<&str> = line(data).split(' ').collect();
            let [va, el1, el1_pan, el0] = f[..] else {
                panic!("answer line {f:?}");
            };
            let answers = Answers {
                el1: answer(el1),
                el1_pan: answer(el1_pan),
                el0: answer(el0),
            };
            (hex(va), answers)
        })
        .collect();
    assert!(data.is_empty(), "trailing fixture data");
    Fixture {
        ttbr0,
        ttbr1,
        tcr,
        cpsr,
        stopped,
        tables,
        gva2gpa,
    }
}
