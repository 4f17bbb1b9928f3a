//! `ptwalk translate`: each address walked on x86-64 or ARM64, made a
//! [`AddressReport`] and printed in the style asked for (`render.rs`); the
//! exit status and hints say when tables are missing or nothing translates.

use std::io::Write;

use anyhow::{Result, bail};
use vmwalk::walker::VirtAddr;

use crate::addresses;
use crate::cli::{Os, TranslateArgs};
use crate::image::Image;
use crate::mask;
use crate::paging_args::{AArch64Args, CR3_QUESTION};
use crate::render::{self, Style, Words};
use crate::report::AddressReport;

/// Runs `translate`.
pub fn run(out: &mut dyn Write, args: &TranslateArgs) -> Result<()> {
    match &args.paging.aarch64 {
        Some(given) => run_aarch64(out, args, given),
        None => run_x86(out, args),
    }
}

fn run_x86(out: &mut dyn Write, args: &TranslateArgs) -> Result<()> {
    let addresses = &addresses::all(&args.addresses, &args.addresses_from)?;
    if args.invalid_pte_mask.is_some() && args.os != Os::Windows {
        bail!("--invalid-pte-mask decodes Windows' software PTEs: it goes with --os windows");
    }
    let (paging, image) = args.paging.open()?;
    // `--os windows` implies `--explain` (and excludes `--json`).
    let words = match args.os {
        Os::Windows => Words::Windows(mask::choose(
            &image,
            &paging,
            args.invalid_pte_mask,
            args.paging.maxphyaddr,
        )),
        Os::X86 => Words::Cpu,
    };
    let counts = print_all(out, addresses, style(args, words), |va| {
        AddressReport::x86(va, paging.translate(&image, VirtAddr(va)))
    })?;
    if counts.unreadable > 0 {
        bail!(
            "{} address(es) need page tables that are not in the image",
            counts.unreadable
        );
    }
    if counts.translated == 0 {
        // Stdout keeps its format; the hint is for the person at the terminal.
        let what = match addresses.as_slice() {
            [one] => format!("{one:#x} does not translate"),
            all => format!("none of the {} addresses translates", all.len()),
        };
        eprintln!("ptwalk: hint: {what}: {CR3_QUESTION}");
    }
    Ok(())
}

fn run_aarch64(out: &mut dyn Write, args: &TranslateArgs, given: &AArch64Args) -> Result<()> {
    if args.os == Os::Windows {
        bail!("--os windows decodes x86-64 Windows PTEs, not --arch aarch64");
    }
    let registers = args.paging.aarch64_registers(given)?;
    let addresses = addresses::all(&args.addresses, &args.addresses_from)?;
    let image = Image::open(&args.paging.image)?;
    let paging = registers.paging()?;
    let counts = print_all(out, &addresses, style(args, Words::Cpu), |va| {
        AddressReport::aarch64(va, paging.translate(&image, VirtAddr(va)))
    })?;
    if counts.unreadable > 0 {
        bail!(
            "{} address(es) need translation tables that are not in the image",
            counts.unreadable
        );
    }
    Ok(())
}

/// The style `args` ask for, explaining in `words`.
const fn style(args: &TranslateArgs, words: Words) -> Style {
    if args.json {
        Style::Json
    } else if args.explain {
        Style::Explain(words)
    } else {
        Style::Plain
    }
}

/// How many addresses translated, and how many need a table the image lacks.
struct Counts {
    translated: usize,
    unreadable: usize,
}

/// Reports and prints each address, in order.
fn print_all(
    out: &mut dyn Write,
    addresses: &[u64],
    style: Style,
    report: impl Fn(u64) -> AddressReport,
) -> Result<Counts> {
    let mut counts = Counts {
        translated: 0,
        unreadable: 0,
    };
    for &va in addresses {
        let report = report(va);
        counts.translated += usize::from(report.pa.is_some());
        counts.unreadable += usize::from(report.read_failed());
        render::write(out, &report, style)?;
    }
    out.flush()?;
    Ok(counts)
}
