//! ptwalk: translate addresses and list mappings with vmwalk's page-table
//! walker, over a physical memory image.

mod dump;
mod image;
mod pte;

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches, Command as ClapCommand, value_parser};
use image::Image;
use pte::SelfMapChoice;
use vmwalk::walker::info_tlb::InfoTlbLine;
use vmwalk::walker::software_pte::InvalidPteMask;
use vmwalk::walker::windbg::PathLines;
use vmwalk::walker::{Fault, FaultKind, OutsideImage, Paging, PagingMode, Translation, VirtAddr};

/// What the user asked for.
enum Command {
    Translate {
        paging: PagingArgs,
        addresses: Vec<u64>,
        json: bool,
        explain: bool,
    },
    Dump {
        paging: PagingArgs,
    },
    Pte {
        paging: PagingArgs,
        addresses: Vec<u64>,
        invalid_pte_mask: Option<u64>,
        self_map: SelfMapChoice,
    },
}

struct PagingArgs {
    image: PathBuf,
    /// `None`: the crash dump header's.
    cr3: Option<u64>,
    la57: bool,
    maxphyaddr: u32,
    no_nx: bool,
}

impl PagingArgs {
    fn open(&self) -> Result<(Paging, Image)> {
        let mode = if self.la57 {
            PagingMode::FiveLevel
        } else {
            PagingMode::FourLevel
        };
        let image = Image::open(&self.image)?;
        let cr3 = self.cr3.or_else(|| image.dump_cr3()).with_context(|| {
            format!(
                "--cr3 is required: {} is a raw image or an ELF core, which does not record CR3 (a crash dump's header does)",
                self.image.display()
            )
        })?;
        let paging = Paging::new(cr3, mode)
            .with_nx(!self.no_nx)
            .with_max_phys_bits(self.maxphyaddr)?;
        image.check_table(paging.root())?;
        Ok((paging, image))
    }
}

// The builder API: clap's derive emits `allow(clippy::restriction)`, which our
// forbidden unsafe lints reject.
fn cli() -> ClapCommand {
    let paging_args = [
        Arg::new("image")
            .long("image")
            .required(true)
            .value_parser(value_parser!(PathBuf))
            .help("The memory image: raw (offset = physical address), an ELF core, or a Windows crash dump (.dmp)"),
        Arg::new("cr3")
            .long("cr3")
            .value_parser(parse_hex)
            .help(
                "CR3, in hex: 0x optional (1000 is 0x1000), `_` and WinDbg's ` separators allowed [default for a crash dump: its header's DirectoryTableBase; required otherwise]",
            ),
        Arg::new("la57")
            .long("la57")
            .action(ArgAction::SetTrue)
            .help("5-level paging (CR4.LA57)"),
        Arg::new("maxphyaddr")
            .long("maxphyaddr")
            .default_value("52")
            .value_parser(value_parser!(u32))
            .help("MAXPHYADDR of the CPU (CPUID 80000008h)"),
        Arg::new("no-nx")
            .long("no-nx")
            .action(ArgAction::SetTrue)
            .help("EFER.NXE is clear (XD bits are then reserved)"),
    ];
    ClapCommand::new("ptwalk")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Walk x86-64 page tables in a physical memory image (raw, an ELF core, or a Windows crash dump)")
        .subcommand_required(true)
        .subcommand(
            ClapCommand::new("translate")
                .about("Translate virtual addresses: `0x<va> 0x<pa>`, or `0x<va> -`")
                .args(paging_args.clone())
                .arg(Arg::new("addresses").value_name("ADDR").required(true).num_args(1..).value_parser(parse_hex).help("Virtual addresses, in hex like --cr3 (4096 is 0x4096)"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).conflicts_with("explain").help("Print one JSON object per address (not with --explain)"))
                .arg(Arg::new("explain").long("explain").action(ArgAction::SetTrue).help("Add every entry visited, as WinDbg's !pte, and why an address does not translate")),
        )
        .subcommand(ClapCommand::new("dump").about("Print every present leaf as QEMU's `info tlb` does").args(paging_args.clone()))
        .subcommand(
            ClapCommand::new("pte")
                .about("Print what WinDbg's `!pte ADDR` prints, for each address (a Windows CR3)")
                .args(paging_args)
                .arg(Arg::new("addresses").value_name("ADDR").required(true).num_args(1..).value_parser(parse_hex).help("Virtual addresses, in hex like --cr3"))
                .arg(Arg::new("invalid-pte-mask").long("invalid-pte-mask").value_parser(parse_hex).help("nt!MiState.Hardware.InvalidPteMask, in hex [default: 1 << (MAXPHYADDR - 1), what Windows 10 1803+ computes; 0 before 1803]"))
                .arg(Arg::new("self-map").long("self-map").default_value("auto").value_parser(parse_self_map).help("Top-level index that maps its own table, in hex, or `auto` to find it")),
        )
}

fn parse_command(matches: &ArgMatches) -> Option<Command> {
    let (name, sub) = matches.subcommand()?;
    let paging = PagingArgs {
        image: sub.get_one::<PathBuf>("image")?.clone(),
        cr3: sub.get_one::<u64>("cr3").copied(),
        la57: sub.get_flag("la57"),
        maxphyaddr: *sub.get_one::<u32>("maxphyaddr")?,
        no_nx: sub.get_flag("no-nx"),
    };
    Some(match name {
        "translate" => Command::Translate {
            paging,
            addresses: sub.get_many::<u64>("addresses")?.copied().collect(),
            json: sub.get_flag("json"),
            explain: sub.get_flag("explain"),
        },
        "pte" => Command::Pte {
            paging,
            addresses: sub.get_many::<u64>("addresses")?.copied().collect(),
            invalid_pte_mask: sub.get_one::<u64>("invalid-pte-mask").copied(),
            self_map: *sub.get_one::<SelfMapChoice>("self-map")?,
        },
        _ => Command::Dump { paging },
    })
}

fn parse_self_map(text: &str) -> Result<SelfMapChoice, String> {
    if text == "auto" {
        return Ok(SelfMapChoice::Auto);
    }
    match usize::try_from(parse_hex(text)?) {
        Ok(index @ 0..=0x1ff) => Ok(SelfMapChoice::Index(index)),
        _ => Err(format!(
            "'{text}' is not a table index (0 to 1ff) or `auto`"
        )),
    }
}

fn parse_hex(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    // WinDbg writes fffff800`12345678; Rust-style 0xffff_8880_0000_0000 reads as well.
    let digits = digits.replace(['`', '_'], "");
    u64::from_str_radix(&digits, 16).map_err(|_| format!("'{text}' is not a 64-bit hex number"))
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(matches) => matches,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
            let first = lines.next().unwrap_or("bad arguments");
            let first = first.trim_start_matches("error: ");
            // clap puts what is missing on the next line: keep it on ours.
            match lines.next().filter(|_| first.ends_with(':')) {
                Some(missing) => eprintln!("ptwalk: {first} {missing}"),
                None => eprintln!("ptwalk: {first}"),
            }
            return ExitCode::from(2);
        }
    };
    let Some(command) = parse_command(&matches) else {
        eprintln!("ptwalk: bad arguments");
        return ExitCode::from(2);
    };
    match run(&command) {
        Ok(()) => ExitCode::SUCCESS,
        // `ptwalk dump | head -1`: the reader left; that is not an error.
        Err(e)
            if e.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ptwalk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &Command) -> Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    match command {
        Command::Translate {
            paging,
            addresses,
            json,
            explain,
        } => {
            let (paging, image) = paging.open()?;
            let (mut unreadable, mut translated) = (0, 0);
            for &va in addresses {
                let result = paging.translate(&image, VirtAddr(va));
                translated += usize::from(result.is_ok());
                if let Err(Fault {
                    kind: FaultKind::ReadFailed { .. },
                    ..
                }) = result
                {
                    unreadable += 1;
                }
                let text = if *json {
                    json_line(va, &result)
                } else {
                    text_lines(
                        va,
                        &result,
                        *explain,
                        InvalidPteMask::for_max_phys_bits(paging.max_phys_bits()),
                    )
                };
                out.write_all(text.as_bytes())?;
            }
            out.flush()?;
            if unreadable > 0 {
                bail!("{unreadable} address(es) need page tables that are not in the image");
            }
            if translated == 0 && addresses.len() > 1 {
                // Stdout keeps its format; the hint is for the person at the terminal.
                eprintln!(
                    "ptwalk: hint: none of the {} addresses translates: is --cr3 right, and --la57 set if the CPU used 5-level paging?",
                    addresses.len()
                );
            }
        }
        Command::Pte {
            paging,
            addresses,
            invalid_pte_mask,
            self_map,
        } => {
            let (paging, image) = paging.open()?;
            pte::print(
                &mut out,
                &paging,
                &image,
                *invalid_pte_mask,
                *self_map,
                addresses,
            )?;
            out.flush()?;
        }
        Command::Dump { paging } => {
            let (paging, image) = paging.open()?;
            let (mut unreadable, mut skipped) = (0, 0);
            let mut missing_tables = std::collections::BTreeSet::new();
            for leaf in paging.leaves(&image) {
                match leaf {
                    Ok(mapping) => writeln!(out, "{}", InfoTlbLine(&mapping))?,
                    // Missing tables are counted, not listed: one line each buried real faults.
                    Err(Fault {
                        kind: FaultKind::ReadFailed { addr, .. },
                        ..
                    }) => {
                        unreadable += 1;
                        missing_tables.insert(addr.0 & !0xfff);
                    }
                    Err(fault) => {
                        skipped += 1;
                        if skipped <= SKIPPED_SHOWN {
                            eprintln!("ptwalk: skipped: {fault}");
                        }
                    }
                }
            }
            out.flush()?;
            if skipped > SKIPPED_SHOWN {
                eprintln!(
                    "ptwalk: skipped {} more entries like these",
                    skipped - SKIPPED_SHOWN
                );
            }
            if unreadable > 0 {
                bail!(
                    "{} page table(s) are not in the image ({unreadable} entries in them unread)",
                    missing_tables.len()
                );
            }
        }
    }
    Ok(())
}

/// `dump` lists this many skipped entries, then counts the rest.
const SKIPPED_SHOWN: usize = 10;

type Walk = Result<Translation, Fault<OutsideImage>>;

fn text_lines(va: u64, result: &Walk, explain: bool, mask: InvalidPteMask) -> String {
    let mut text = result.as_ref().map_or_else(
        |_| format!("{va:#x} -\n"),
        |t| format!("{va:#x} {:#x}\n", t.pa.0),
    );
    if explain {
        let (path, summary) = match result {
            Ok(t) => (t.path, t.mapping.to_string()),
            Err(fault) => (fault.path, fault.kind.to_string()),
        };
        for line in PathLines(&path, mask).to_string().lines() {
            let _ = writeln!(text, "    {line}");
        }
        let _ = writeln!(text, "    => {summary}");
    }
    text
}

fn json_line(va: u64, result: &Walk) -> String {
    match result {
        Ok(t) => {
            let m = &t.mapping;
            format!(
                "{{\"va\":\"{va:#x}\",\"pa\":\"{:#x}\",\"page_size\":\"{}\",\"writable\":{},\"user\":{},\"executable\":{},\"global\":{},\"dirty\":{},\"accessed\":{},\"pat_index\":{},\"error\":null}}\n",
                t.pa.0,
                m.size,
                m.access.writable,
                m.access.user,
                m.access.executable,
                m.global(),
                m.dirty(),
                m.accessed(),
                m.memory_type().pat_index()
            )
        }
        Err(fault) => {
            let (kind, level) = match fault.kind {
                FaultKind::NonCanonical { .. } => ("non_canonical", None),
                FaultKind::NotPresent { level, .. } => ("not_present", Some(level)),
                FaultKind::ReservedBit { level, .. } => ("reserved_bit", Some(level)),
                FaultKind::ReadFailed { level, .. } => ("read_failed", Some(level)),
            };
            let level = level.map_or_else(|| "null".to_owned(), |l| format!("\"{l}\""));
            // Messages are plain ASCII without quotes or backslashes.
            format!(
                "{{\"va\":\"{va:#x}\",\"pa\":null,\"error\":\"{kind}\",\"level\":{level},\"reason\":\"{}\"}}\n",
                fault.kind
            )
        }
    }
}
