//! `ptwalk translate`: each address walked on x86-64 or ARM64, made a
//! [`AddressReport`] and printed in the style asked for (`render.rs`); the
//! exit status and hints say when tables are missing or nothing translates.

use std::io::Write;

use anyhow::{Result, bail};
use vmwalk::walker::{Paging, VirtAddr};

use crate::addresses;
use crate::cli::{Os, TranslateArgs};
use crate::image::Image;
use crate::mask;
use crate::paging_args::{Arch, CR3_QUESTION, Opened, Registers};
use crate::render::{self, Style, Words};
use crate::report::AddressReport;

/// Runs `translate`.
pub fn run(out: &mut dyn Write, args: &TranslateArgs) -> Result<()> {
    let addresses = &addresses::all(&args.addresses, &args.addresses_from)?;
    if args.invalid_pte_mask.is_some() && args.os != Os::Windows {
        bail!("--invalid-pte-mask decodes Windows' software PTEs: it goes with --os windows");
    }
    let check = |arch| {
        if arch == Arch::Aarch64 && args.os == Os::Windows {
            bail!("--os windows decodes x86-64 Windows PTEs, not ARM64 ones (--arch aarch64)");
        }
        Ok(())
    };
    match args.paging.open(check)? {
        Opened::X86_64 { paging, image } => run_x86(out, args, addresses, &paging, &image),
        Opened::Aarch64 { registers, image } => {
            run_aarch64(out, args, addresses, &registers, &image)
        }
    }
}

fn run_x86(
    out: &mut dyn Write,
    args: &TranslateArgs,
    addresses: &[u64],
    paging: &Paging,
    image: &Image,
) -> Result<()> {
    // `--os windows` implies `--explain` (and excludes `--json`).
    let words = match args.os {
        Os::Windows => Words::Windows(mask::choose(
            image,
            paging,
            args.invalid_pte_mask,
            args.paging.maxphyaddr,
        )),
        Os::X86 => Words::Cpu,
    };
    let counts = print_all(out, addresses, style(args, words), |va| {
        AddressReport::x86(va, paging.translate(image, VirtAddr(va)))
    })?;
    if counts.unreadable > 0 {
        bail!(
            "{} address(es) need page tables that are not in the image",
            counts.unreadable
        );
    }
    if counts.translated == 0 {
        // Stdout keeps its format; the hint is for the person at the terminal.
        let what = match addresses {
            [one] => format!("{one:#x} does not translate"),
            all => format!("none of the {} addresses translates", all.len()),
        };
        eprintln!("ptwalk: hint: {what}: {CR3_QUESTION}");
    }
    Ok(())
}

fn run_aarch64(
    out: &mut dyn Write,
    args: &TranslateArgs,
    addresses: &[u64],
    registers: &Registers,
    image: &Image,
) -> Result<()> {
    let paging = registers.paging()?;
    let counts = print_all(out, addresses, style(args, Words::Cpu), |va| {
        AddressReport::aarch64(va, paging.translate(image, VirtAddr(va)))
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
