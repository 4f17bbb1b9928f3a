//! `ptwalk translate|dump --arch aarch64`: the `AArch64` walker on an image,
//! from `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1`.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::{Context, Result, bail};
use vmwalk::walker::VirtAddr;
use vmwalk::walker::aarch64::windbg::PteBlock;
use vmwalk::walker::aarch64::{
    Fault, FaultKind, Mapping, Paging, SelfMap, TableRestrictions, Translation,
};

use crate::image::Image;
use crate::pte::{SelfMapChoice, Unshown, write_missing_table};

/// `TCR_EL1.EPD0` and `EPD1`: walks through that TTBR are disabled.
const EPD0: u64 = 1 << 7;
const EPD1: u64 = 1 << 23;

/// The registers, as given (`None`: that TTBR was not given).
pub struct Registers {
    pub ttbr0: Option<u64>,
    pub ttbr1: Option<u64>,
    pub tcr: u64,
}

impl Registers {
    /// The walker's view of the registers. A TTBR that was not given is
    /// walked as if `TCR_EL1.EPDx` disabled it: its addresses fault at level 0.
    pub fn paging(&self) -> Result<Paging> {
        let tcr = self.tcr
            | if self.ttbr0.is_none() { EPD0 } else { 0 }
            | if self.ttbr1.is_none() { EPD1 } else { 0 };
        Paging::from_registers(self.ttbr0.unwrap_or(0), self.ttbr1.unwrap_or(0), tcr).with_context(
            || {
                format!(
                    "TCR_EL1 {:#x} describes no translation ptwalk walks",
                    self.tcr
                )
            },
        )
    }
}

type Walk = Result<Translation, Fault<vmwalk::walker::OutsideImage>>;

/// `translate`: one line per address (`--explain`: the descriptors and why;
/// `--json`: one object).
pub fn translate(
    out: &mut dyn Write,
    registers: &Registers,
    image: &Image,
    addresses: &[u64],
    json: bool,
    explain: bool,
) -> Result<()> {
    let paging = registers.paging()?;
    let mut unreadable = 0;
    for &va in addresses {
        let result = paging.translate(image, VirtAddr(va));
        if matches!(
            &result,
            Err(Fault {
                kind: FaultKind::ReadFailed { .. },
                ..
            })
        ) {
            unreadable += 1;
        }
        let text = if json {
            json_line(va, &result)
        } else {
            text_lines(va, &result, explain)
        };
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    if unreadable > 0 {
        bail!("{unreadable} address(es) need translation tables that are not in the image");
    }
    Ok(())
}

fn text_lines(va: u64, result: &Walk, explain: bool) -> String {
    let mut text = result.as_ref().map_or_else(
        |_| format!("{va:#x} -\n"),
        |t| format!("{va:#x} {:#x}\n", t.pa.0),
    );
    if explain {
        let (path, summary) = match result {
            Ok(t) => (t.path, t.mapping.to_string()),
            Err(fault) => (fault.path, fault.kind.to_string()),
        };
        for visited in path.iter() {
            let kind = visited.entry.kind(visited.level);
            let _ = writeln!(
                text,
                "    {} at phys {:#x}: {} ({kind})",
                visited.level, visited.addr.0, visited.entry
            );
        }
        let _ = writeln!(text, "    => {summary}");
    }
    text
}

fn json_line(va: u64, result: &Walk) -> String {
    match result {
        Ok(t) => {
            let m = &t.mapping;
            let a = m.access;
            format!(
                "{{\"va\":\"{va:#x}\",\"pa\":\"{:#x}\",\"page_size\":\"{}\",\"range\":\"{}\",\"el1_write\":{},\"el0_read\":{},\"el0_write\":{},\"el1_execute\":{},\"el0_execute\":{},\"attr_index\":{},\"global\":{},\"accessed\":{},\"error\":null}}\n",
                t.pa.0,
                m.size,
                m.range,
                a.privileged_write,
                a.unprivileged_read,
                a.unprivileged_write,
                a.privileged_execute,
                a.unprivileged_execute,
                m.attr_index(),
                m.global(),
                m.accessed()
            )
        }
        // Fault texts are ASCII without quotes or backslashes.
        Err(fault) => format!(
            "{{\"va\":\"{va:#x}\",\"pa\":null,\"error\":\"{}\"}}\n",
            fault.kind
        ),
    }
}

/// `dump`: every run of leaves, in address order (TTBR0's range first):
/// `<first VA>-<last VA> -> <first PA> <range> <leaf size> x<count>: <access>`.
pub fn dump(out: &mut dyn Write, registers: &Registers, image: &Image) -> Result<()> {
    let paging = registers.paging()?;
    let mut missing = 0_usize;
    let mut skipped = crate::skipped::Skipped::default();
    for run in paging.leaves(image).runs() {
        match run {
            Ok(run) => {
                let last = run.va.0.wrapping_add(run.bytes - 1);
                let count = run.bytes / run.page_size.bytes();
                let sample = Mapping {
                    va: run.va,
                    pa: run.pa,
                    size: run.page_size,
                    range: run.range,
                    access: run.access,
                    descriptor: run.attributes,
                    table: TableRestrictions::default(),
                    access_flag_fault: !paging.hardware_access_flag(),
                };
                writeln!(
                    out,
                    "{:#018x}-{last:#018x} -> {:#x} {} {} x{count}: {}",
                    run.va.0,
                    run.pa.0,
                    run.range,
                    run.page_size,
                    access_text(&sample)
                )?;
            }
            Err(Fault {
                kind: FaultKind::ReadFailed { .. },
                ..
            }) => missing += 1,
            // On Windows, a block read through the self-map one level down:
            // a reserved encoding the CPU faults on, and nothing to list.
            Err(fault) => skipped.note(&fault),
        }
    }
    out.flush()?;
    skipped.finish();
    if missing > 0 {
        bail!("{missing} translation table read(s) failed: tables missing from the image");
    }
    Ok(())
}

/// The permissions and attributes part of a mapping's text.
fn access_text(mapping: &Mapping) -> String {
    let text = mapping.to_string();
    // `4K page at 0x..., EL1 rw, ...`: drop the size and address.
    text.split_once(", ")
        .map_or_else(|| text.clone(), |(_, rest)| rest.to_owned())
}

/// `pte`: the block `WinDbg`'s `!pte` prints on Windows for ARM64, for each
/// address (an address outside both ranges: one line saying so).
pub fn pte(
    out: &mut dyn Write,
    registers: &Registers,
    image: &Image,
    self_map: SelfMapChoice,
    addresses: &[u64],
) -> Result<()> {
    let paging = registers.paging()?;
    let self_map = match self_map {
        SelfMapChoice::Index(index) => SelfMap::at(index as u64),
        SelfMapChoice::Auto => SelfMap::find(&paging, image)
            .map_err(|e| anyhow::anyhow!("reading TTBR1_EL1's level 0 table: {e}"))?
            .context(
                "no level 0 descriptor of TTBR1_EL1's table maps the page it is in (not Windows on ARM64?): give --self-map INDEX",
            )?,
    };
    let mut unshown = Unshown::default();
    for (n, &va) in addresses.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        if !self_map.names(&paging, VirtAddr(va)) {
            writeln!(
                out,
                "{va:#x}: TTBR0_EL1's table is not the self-map's page: !pte names no descriptor of it"
            )?;
            continue;
        }
        let (path, fault) = match paging.translate(image, VirtAddr(va)) {
            Ok(translation) => (translation.path, None),
            Err(fault) => (fault.path, Some(fault)),
        };
        let block = PteBlock {
            va: VirtAddr(va),
            path: &path,
            self_map,
        };
        match fault {
            // As WinDbg says it when a dump lacks a table (tests/windbg/18).
            Some(Fault {
                kind: FaultKind::ReadFailed { level, addr, .. },
                ..
            }) => {
                let at = self_map.entry_address(VirtAddr(va), level).0;
                write_missing_table(out, block.lines().take(2), addr.0, at)?;
                unshown.missing += 1;
            }
            // Outside both ranges, or no walk at all: no descriptor to show.
            Some(fault) if fault.path.is_empty() => {
                writeln!(out, "{fault}")?;
                unshown.invalid += 1;
            }
            _ => {
                for line in block.lines() {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    unshown.check()
}
