//! `ptwalk dump`: every mapping of the address space, on x86-64 each leaf as
//! QEMU's `info tlb` prints it, on ARM64 each run of blocks and pages.
//! Entries the CPU would fault on are named on stderr and passed over.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Result, bail};
use vmwalk::walker::aarch64::{self, TableRestrictions};
use vmwalk::walker::info_tlb::InfoTlbLine;
use vmwalk::walker::x86_64::{Fault, FaultKind, Paging};

use crate::image::Image;
use crate::paging_args::{CR3_QUESTION, Opened, PagingArgs, Registers};
use crate::skipped::Skipped;

/// Runs `dump`.
pub fn run(out: &mut dyn Write, paging: &PagingArgs) -> Result<()> {
    match paging.open(|_| Ok(()))? {
        Opened::X86_64 { paging, image } => run_x86(out, &paging, &image),
        Opened::Aarch64 { registers, image } => run_aarch64(out, &registers, &image),
    }
}

/// Every leaf as QEMU's `info tlb` prints it.
fn run_x86(out: &mut dyn Write, paging: &Paging, image: &Image) -> Result<()> {
    let (mut unreadable, mut skipped) = (0, Skipped::default());
    let mut missing_tables = BTreeSet::new();
    let mut listed = 0_usize;
    // Internal iteration (`for_each`): the enumeration's faster loop. The
    // first failed write is kept, and nothing more is written.
    let mut written = Ok(());
    paging.leaves(image).for_each(|leaf| match leaf {
        Ok(mapping) => {
            listed += 1;
            if written.is_ok() {
                written = writeln!(out, "{}", InfoTlbLine(&mapping));
            }
        }
        // Missing tables are counted, not listed: one line each buried real faults.
        Err(Fault {
            kind: FaultKind::ReadFailed { addr, .. },
            ..
        }) => {
            unreadable += 1;
            missing_tables.insert(addr.0 & !0xfff);
        }
        Err(fault) => skipped.note(&fault),
    });
    written?;
    out.flush()?;
    skipped.finish();
    if listed == 0 {
        eprintln!(
            "ptwalk: hint: no page is mapped from CR3 {}: {CR3_QUESTION}",
            paging.root()
        );
    }
    if unreadable > 0 {
        bail!(
            "{} page table(s) are not in the image ({unreadable} entries in them unread)",
            missing_tables.len()
        );
    }
    Ok(())
}

/// Every run of leaves, in address order (TTBR0's range first):
/// `<first VA>-<last VA> -> <first PA> <range> <leaf size> x<count>: <access>`.
fn run_aarch64(out: &mut dyn Write, registers: &Registers, image: &Image) -> Result<()> {
    let paging = registers.paging()?;
    let mut missing = 0_usize;
    let mut skipped = Skipped::default();
    let mut written = Ok(());
    paging.leaves(image).runs().for_each(|run| match run {
        Ok(run) => {
            if written.is_ok() {
                written = writeln!(out, "{}", aarch64_run_line(&paging, &run));
            }
        }
        Err(aarch64::Fault {
            kind: aarch64::FaultKind::ReadFailed { .. },
            ..
        }) => missing += 1,
        // On Windows, a block read through the self-map one level down:
        // a reserved encoding the CPU faults on, and nothing to list.
        Err(fault) => skipped.note(&fault),
    });
    written?;
    out.flush()?;
    skipped.finish();
    if missing > 0 {
        bail!("{missing} translation table read(s) failed: tables missing from the image");
    }
    Ok(())
}

/// One ARM64 run as `dump` prints it (without the newline):
/// `<first VA>-<last VA> -> <first PA> <range> <leaf size> x<count>: <access>`.
pub fn aarch64_run_line(paging: &aarch64::Paging, run: &aarch64::Run) -> String {
    let last = run.va.0.wrapping_add(run.bytes - 1);
    let count = run.bytes / run.page_size.bytes();
    let sample = aarch64::Mapping {
        va: run.va,
        pa: run.pa,
        size: run.page_size,
        range: run.range,
        access: run.access,
        descriptor: run.attributes,
        table: TableRestrictions::default(),
        access_flag_fault: !paging.hardware_access_flag(),
    };
    format!(
        "{:#018x}-{last:#018x} -> {:#x} {} {} x{count}: {}",
        run.va.0,
        run.pa.0,
        run.range,
        run.page_size,
        access_text(&sample)
    )
}

/// The permissions and attributes part of a mapping's text.
fn access_text(mapping: &aarch64::Mapping) -> String {
    let text = mapping.to_string();
    // `4K page at 0x..., EL1 rw, ...`: drop the size and address.
    text.split_once(", ")
        .map_or_else(|| text.clone(), |(_, rest)| rest.to_owned())
}
