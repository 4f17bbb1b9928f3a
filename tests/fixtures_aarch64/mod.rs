//! The committed AArch64 Linux-guest fixtures, decoded.
//! `scripts/mmu/linux_guest_aarch64.py --write-fixtures` writes them as
//! `tests/fixtures/linux-aarch64-*.fixture.gz`.
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

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use flate2::read::GzDecoder;
use vmwalk::walker::{PhysAddr, PhysicalMemory};

/// The saved table pages; any other read fails, so a walk that strays
/// outside the tables the guest had shows up as a failed read.
pub struct Tables(pub HashMap<u64, Vec<u64>>);

#[derive(Debug, PartialEq, Eq)]
pub struct NotInFixture(PhysAddr);

impl std::fmt::Display for NotInFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "physical {} is not a saved table page", self.0)
    }
}

impl PhysicalMemory for Tables {
    type Error = NotInFixture;

    fn read_u64(&self, addr: PhysAddr) -> Result<u64, NotInFixture> {
        let (page, index) = (addr.0 & !0xfff, (addr.0 & 0xfff) / 8);
        self.0
            .get(&page)
            .and_then(|entries| entries.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(NotInFixture(addr))
    }
}

impl Tables {
    /// Every saved descriptor by physical address: the reference model's
    /// memory (`tests/model_aarch64`), where a missing word cannot be read either.
    pub fn words(&self) -> BTreeMap<u64, u64> {
        self.0
            .iter()
            .flat_map(|(&page, entries)| {
                (0..)
                    .step_by(8)
                    .map(move |at| page + at)
                    .zip(entries.iter().copied())
            })
            .collect()
    }
}

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

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex number")
}

fn answer(s: &str) -> Option<u64> {
    (s != "-").then(|| hex(s))
}

/// Splits off the first line of `data`, returning it as text.
fn line<'a>(data: &mut &'a [u8]) -> &'a str {
    let end = data.iter().position(|&b| b == b'\n').expect("a line");
    let text = std::str::from_utf8(&data[..end]).expect("UTF-8 line");
    *data = &data[end + 1..];
    text
}

/// `key value` from the next line.
fn field<'a>(data: &mut &'a [u8], key: &str) -> &'a str {
    let text = line(data);
    let (k, value) = text.split_once(' ').expect("key value");
    assert_eq!(k, key, "fixture line {text:?}");
    value
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

    let pages: usize = field(data, "pages").parse().expect("page count");
    let mut tables = HashMap::new();
    for record in data[..pages * 4104].chunks_exact(4104) {
        let mut words = record
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let addr = words.next().expect("page address");
        let entries = words
            .scan(0u64, |prev, delta| {
                *prev = prev.wrapping_add(delta);
                Some(*prev)
            })
            .collect();
        tables.insert(addr, entries);
    }
    *data = &data[pages * 4104..];

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
        tables: Tables(tables),
        gva2gpa,
    }
}
