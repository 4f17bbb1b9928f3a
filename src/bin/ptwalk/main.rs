//! ptwalk: translate addresses and list mappings with vmwalk's page-table
//! walker, over a physical memory image.

mod aarch64;
mod addresses;
mod dump;
mod image;
mod mask;
mod pte;
mod segment;
mod skipped;

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
use vmwalk::walker::x86_64::{Fault, FaultKind, Level, Paging, PagingMode, Translation, Visited};
use vmwalk::walker::{OutsideImage, PhysAddr, PhysicalMemory, VirtAddr};

/// What the user asked for.
enum Command {
    Translate {
        paging: PagingArgs,
        addresses: Vec<u64>,
        addresses_from: Vec<PathBuf>,
        json: bool,
        explain: bool,
        os: Os,
        invalid_pte_mask: Option<u64>,
    },
    Dump {
        paging: PagingArgs,
    },
    Pte {
        paging: PagingArgs,
        addresses: Vec<u64>,
        addresses_from: Vec<PathBuf>,
        invalid_pte_mask: Option<u64>,
        self_map: SelfMapChoice,
    },
}

/// Whose words `--explain` uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Os {
    /// Intel's entry names; a non-present entry is only not present.
    X86,
    /// `WinDbg`'s names, and Windows' software PTEs decoded as `!pte` does.
    Windows,
}

struct PagingArgs {
    image: PathBuf,
    /// `--arch aarch64`: `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1` instead of CR3.
    aarch64: Option<AArch64Args>,
    /// `--ttbr0`, `--ttbr1` or `--tcr` given (without `--arch aarch64`, a mistake).
    arm64_registers_given: bool,
    /// `None`: the crash dump header's.
    cr3: Option<u64>,
    la57: bool,
    /// `None`: not given (the walker takes 52).
    maxphyaddr: Option<u32>,
    no_nx: bool,
}

/// What `--arch aarch64` was given.
struct AArch64Args {
    ttbr0: Option<u64>,
    ttbr1: Option<u64>,
    tcr: Option<u64>,
}

impl PagingArgs {
    /// For `--arch aarch64`: the registers, after refusing x86-64's options.
    fn aarch64_registers(&self, given: &AArch64Args) -> Result<aarch64::Registers> {
        if self.cr3.is_some() || self.la57 || self.no_nx || self.maxphyaddr.is_some() {
            bail!(
                "--cr3, --la57, --maxphyaddr and --no-nx describe an x86-64 CPU, not --arch aarch64 (which takes --ttbr0, --ttbr1 and --tcr)"
            );
        }
        let tcr = given
            .tcr
            .context("--tcr is required with --arch aarch64 (TCR_EL1, in hex)")?;
        if given.ttbr0.is_none() && given.ttbr1.is_none() {
            bail!("--arch aarch64 needs --ttbr0 or --ttbr1 (in hex)");
        }
        Ok(aarch64::Registers {
            ttbr0: given.ttbr0,
            ttbr1: given.ttbr1,
            tcr,
        })
    }

    fn open(&self) -> Result<(Paging, Image)> {
        if self.arm64_registers_given {
            bail!("--ttbr0, --ttbr1 and --tcr describe an ARM64 CPU: add --arch aarch64");
        }
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
            .with_max_phys_bits(self.maxphyaddr.unwrap_or(52))?;
        image.check_table(paging.root())?;
        hint_if_not_a_table(&paging, &image);
        Ok((paging, image))
    }
}

/// Says on stderr when the table at CR3 does not look like a page table: no
/// present entry, or most present entries pointing beyond MAXPHYADDR.
fn hint_if_not_a_table(paging: &Paging, image: &Image) {
    let root = paging.root();
    let entries = (0..512).filter_map(|i| image.read_u64(PhysAddr(root.0 + 8 * i)).ok());
    let (mut present, mut beyond) = (0_u32, 0_u32);
    for entry in entries.filter(|entry| entry & 1 != 0) {
        present += 1;
        beyond += u32::from((entry & 0x000f_ffff_ffff_f000) >> paging.max_phys_bits() != 0);
    }
    if present == 0 {
        eprintln!(
            "ptwalk: hint: the table at CR3 ({root}) has no present entry: is --cr3 the address of a top-level page table?"
        );
    } else if beyond * 2 > present {
        eprintln!(
            "ptwalk: hint: {beyond} of the {present} present entries at CR3 ({root}) point beyond MAXPHYADDR {}: is --cr3 a page table's address, and --maxphyaddr right?",
            paging.max_phys_bits()
        );
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
            .value_parser(addresses::parse_hex)
            .help(
                "CR3, in hex: 0x optional (1000 is 0x1000), `_` and WinDbg's ` separators allowed [default for a crash dump: its header's DirectoryTableBase; required otherwise]",
            ),
        Arg::new("la57")
            .long("la57")
            .action(ArgAction::SetTrue)
            .help("5-level paging (CR4.LA57)"),
        Arg::new("maxphyaddr")
            .long("maxphyaddr")
            .value_parser(parse_bits)
            .help("MAXPHYADDR of the CPU (CPUID 80000008h), a number of bits: decimal as the manuals print it (46), or hex with 0x (0x2e) [default: 52; for Windows' invalid-PTE mask, read from the capture]"),
        Arg::new("no-nx")
            .long("no-nx")
            .action(ArgAction::SetTrue)
            .help("EFER.NXE is clear (XD bits are then reserved)"),
    ];
    let addresses_from = Arg::new("addresses-from")
        .long("addresses-from")
        .value_name("FILE")
        .value_parser(value_parser!(PathBuf))
        .action(ArgAction::Append)
        .help("Also read addresses from FILE (`-`: standard input; may be given again): hex like ADDR, separated by white space or commas, `#` starts a comment");
    let invalid_pte_mask = Arg::new("invalid-pte-mask")
        .long("invalid-pte-mask")
        .value_parser(addresses::parse_hex)
        .help("nt!MiState.Hardware.InvalidPteMask, in hex [default: 1 << (MAXPHYADDR - 1) with --maxphyaddr; else read from the capture's swizzled entries, said on stderr]");
    let arch_args = [
        Arg::new("arch")
            .long("arch")
            .value_parser(["x86_64", "aarch64"])
            .default_value("x86_64")
            .help("The CPU's architecture"),
        Arg::new("ttbr0")
            .long("ttbr0")
            .value_parser(addresses::parse_hex)
            .help("With --arch aarch64: TTBR0_EL1, in hex (ASID and CnP ignored)"),
        Arg::new("ttbr1")
            .long("ttbr1")
            .value_parser(addresses::parse_hex)
            .help("With --arch aarch64: TTBR1_EL1, in hex"),
        Arg::new("tcr")
            .long("tcr")
            .value_parser(addresses::parse_hex)
            .help("With --arch aarch64: TCR_EL1, in hex (T0SZ, T1SZ, TG0/TG1, IPS, TBI, EPD, HA)"),
    ];
    ClapCommand::new("ptwalk")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Walk x86-64 and ARM64 page tables in a physical memory image (raw, an ELF core, or a Windows crash dump)")
        .subcommand_required(true)
        .subcommand(
            ClapCommand::new("translate")
                .about("Translate virtual addresses: `0x<va> 0x<pa>`, or `0x<va> -`")
                .args(paging_args.clone())
                .args(arch_args.clone())
                .arg(Arg::new("addresses").value_name("ADDR").num_args(1..).value_parser(addresses::parse_hex).help("Virtual addresses, in hex like --cr3 (4096 is 0x4096)"))
                .arg(addresses_from.clone())
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).conflicts_with_all(["explain", "os"]).help("Print one JSON object per address (not with --explain or --os)"))
                .arg(Arg::new("explain").long("explain").action(ArgAction::SetTrue).help("Add every entry visited, and why an address does not translate"))
                .arg(Arg::new("os").long("os").value_parser(["x86", "windows"]).help("The words of --explain, which it implies: x86 (Intel's entry names; not present is all the CPU knows) [default] or windows (WinDbg's names, and Windows' software PTEs decoded as !pte does)"))
                .arg(invalid_pte_mask.clone()),
        )
        .subcommand(ClapCommand::new("dump").about("Print every present leaf as QEMU's `info tlb` does (--arch aarch64: every run of blocks and pages)").args(paging_args.clone()).args(arch_args.clone()))
        .subcommand(
            ClapCommand::new("pte")
                .about("Print what WinDbg's `!pte ADDR` prints, for each address (a Windows CR3, or Windows on ARM64's TTBRs)")
                .args(paging_args)
                .args(arch_args)
                .arg(Arg::new("addresses").value_name("ADDR").num_args(1..).value_parser(addresses::parse_hex).help("Virtual addresses, in hex like --cr3"))
                .arg(addresses_from)
                .arg(invalid_pte_mask)
                .arg(Arg::new("self-map").long("self-map").default_value("auto").value_parser(parse_self_map).help("Top-level index that maps its own table, in hex, or `auto` to find it")),
        )
}

fn parse_command(matches: &ArgMatches) -> Option<Command> {
    let (name, sub) = matches.subcommand()?;
    let aarch64 = sub
        .try_get_one::<String>("arch")
        .ok()
        .flatten()
        .filter(|arch| *arch == "aarch64")
        .map(|_| AArch64Args {
            ttbr0: sub.get_one::<u64>("ttbr0").copied(),
            ttbr1: sub.get_one::<u64>("ttbr1").copied(),
            tcr: sub.get_one::<u64>("tcr").copied(),
        });
    let paging = PagingArgs {
        image: sub.get_one::<PathBuf>("image")?.clone(),
        aarch64,
        arm64_registers_given: ["ttbr0", "ttbr1", "tcr"]
            .iter()
            .any(|id| sub.contains_id(id)),
        cr3: sub.get_one::<u64>("cr3").copied(),
        la57: sub.get_flag("la57"),
        maxphyaddr: sub.get_one::<u32>("maxphyaddr").copied(),
        no_nx: sub.get_flag("no-nx"),
    };
    Some(match name {
        "translate" => Command::Translate {
            paging,
            addresses: listed_addresses(sub),
            addresses_from: files_listed(sub),
            json: sub.get_flag("json"),
            // --os says in whose words to explain: it asks for --explain.
            explain: sub.get_flag("explain") || sub.contains_id("os"),
            os: if sub
                .get_one::<String>("os")
                .is_some_and(|os| os == "windows")
            {
                Os::Windows
            } else {
                Os::X86
            },
            invalid_pte_mask: sub.get_one::<u64>("invalid-pte-mask").copied(),
        },
        "pte" => Command::Pte {
            paging,
            addresses: listed_addresses(sub),
            addresses_from: files_listed(sub),
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
    match usize::try_from(addresses::parse_hex(text)?) {
        Ok(index @ 0..=0x1ff) => Ok(SelfMapChoice::Index(index)),
        _ => Err(format!(
            "'{text}' is not a table index (0 to 1ff) or `auto`"
        )),
    }
}

/// Every `--addresses-from` file, in order.
fn files_listed(sub: &ArgMatches) -> Vec<PathBuf> {
    sub.get_many::<PathBuf>("addresses-from")
        .map(|many| many.cloned().collect())
        .unwrap_or_default()
}

fn listed_addresses(sub: &ArgMatches) -> Vec<u64> {
    sub.get_many::<u64>("addresses")
        .map(|many| many.copied().collect())
        .unwrap_or_default()
}

fn parse_bits(text: &str) -> Result<u32, String> {
    let parsed = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .map_or_else(|| text.parse(), |hex| u32::from_str_radix(hex, 16));
    parsed.map_err(|_| format!("'{text}' is not a number of bits (46, or 0x2e)"))
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

/// What the hints ask when nothing translates.
const CR3_QUESTION: &str = "is --cr3 right, and --la57 set if the CPU used 5-level paging?";

/// `dump` on x86-64: every leaf as QEMU's `info tlb` prints it.
fn dump_x86(out: &mut impl Write, paging: &PagingArgs) -> Result<()> {
    let (paging, image) = paging.open()?;
    let (mut unreadable, mut skipped) = (0, skipped::Skipped::default());
    let mut missing_tables = std::collections::BTreeSet::new();
    let mut listed = 0_usize;
    for leaf in paging.leaves(&image) {
        match leaf {
            Ok(mapping) => {
                listed += 1;
                writeln!(out, "{}", InfoTlbLine(&mapping))?;
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
        }
    }
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

/// `--arch aarch64`'s `translate`, `dump` and `pte`; `None` for x86-64.
fn run_aarch64(command: &Command, out: &mut dyn Write) -> Option<Result<()>> {
    match command {
        Command::Translate {
            paging,
            addresses,
            addresses_from,
            json,
            explain,
            os,
            ..
        } => {
            let given = paging.aarch64.as_ref()?;
            Some((|| {
                if *os == Os::Windows {
                    bail!("--os windows decodes x86-64 Windows PTEs, not --arch aarch64");
                }
                let registers = paging.aarch64_registers(given)?;
                let addresses = addresses::all(addresses, addresses_from)?;
                let image = Image::open(&paging.image)?;
                aarch64::translate(out, &registers, &image, &addresses, *json, *explain)
            })())
        }
        Command::Dump { paging } => {
            let given = paging.aarch64.as_ref()?;
            Some((|| {
                let registers = paging.aarch64_registers(given)?;
                let image = Image::open(&paging.image)?;
                aarch64::dump(out, &registers, &image)
            })())
        }
        Command::Pte {
            paging,
            addresses,
            addresses_from,
            invalid_pte_mask,
            self_map,
        } => {
            let given = paging.aarch64.as_ref()?;
            Some((|| {
                if invalid_pte_mask.is_some() {
                    bail!("--invalid-pte-mask is x64 Windows' L1TF mask, not --arch aarch64");
                }
                let registers = paging.aarch64_registers(given)?;
                let addresses = addresses::all(addresses, addresses_from)?;
                let image = Image::open(&paging.image)?;
                aarch64::pte(out, &registers, &image, *self_map, &addresses)
            })())
        }
    }
}

fn run(command: &Command) -> Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    if let Some(result) = run_aarch64(command, &mut out) {
        return result;
    }
    match command {
        Command::Translate {
            paging,
            addresses,
            addresses_from,
            json,
            explain,
            os,
            invalid_pte_mask,
        } => {
            let addresses = &addresses::all(addresses, addresses_from)?;
            if invalid_pte_mask.is_some() && *os != Os::Windows {
                bail!(
                    "--invalid-pte-mask decodes Windows' software PTEs: it goes with --os windows"
                );
            }
            let maxphyaddr = paging.maxphyaddr;
            let (paging, image) = paging.open()?;
            let mask = if *explain && *os == Os::Windows {
                mask::choose(&image, &paging, *invalid_pte_mask, maxphyaddr)
            } else {
                InvalidPteMask::NONE
            };
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
                    let explain = explain.then_some(*os);
                    text_lines(va, &result, explain, mask)
                };
                out.write_all(text.as_bytes())?;
            }
            out.flush()?;
            if unreadable > 0 {
                bail!("{unreadable} address(es) need page tables that are not in the image");
            }
            if translated == 0 {
                // Stdout keeps its format; the hint is for the person at the terminal.
                let what = match addresses.as_slice() {
                    [one] => format!("{one:#x} does not translate"),
                    all => format!("none of the {} addresses translates", all.len()),
                };
                eprintln!("ptwalk: hint: {what}: {CR3_QUESTION}");
            }
        }
        Command::Pte {
            paging,
            addresses,
            addresses_from,
            invalid_pte_mask,
            self_map,
        } => {
            let addresses = &addresses::all(addresses, addresses_from)?;
            let maxphyaddr = paging.maxphyaddr;
            let (paging, image) = paging.open()?;
            let mask = || mask::choose(&image, &paging, *invalid_pte_mask, maxphyaddr);
            pte::print(&mut out, &paging, &image, mask, *self_map, addresses)?;
            out.flush()?;
        }
        Command::Dump { paging } => dump_x86(&mut out, paging)?,
    }
    Ok(())
}

type Walk = Result<Translation, Fault<OutsideImage>>;

/// `0x<va> 0x<pa>` or `0x<va> -`, and with `explain` the entries and the
/// outcome, in the words of that OS.
fn text_lines(va: u64, result: &Walk, explain: Option<Os>, mask: InvalidPteMask) -> String {
    let mut text = result.as_ref().map_or_else(
        |_| format!("{va:#x} -\n"),
        |t| format!("{va:#x} {:#x}\n", t.pa.0),
    );
    let Some(os) = explain else {
        return text;
    };
    let (path, summary) = match result {
        Ok(t) => (t.path, t.mapping.to_string()),
        Err(fault) => {
            let summary = fault.kind.to_string();
            match (os, fault_level(&fault.kind)) {
                // The walker names levels as Intel does; WinDbg's names here.
                (Os::Windows, Some(level)) => (
                    fault.path,
                    summary.replacen(level.entry_name(), level.windbg_name(), 1),
                ),
                _ => (fault.path, summary),
            }
        }
    };
    match os {
        Os::Windows => {
            for line in PathLines(&path, mask).to_string().lines() {
                let _ = writeln!(text, "    {line}");
            }
        }
        Os::X86 => {
            for visited in path.as_slice() {
                let _ = writeln!(text, "    {}", intel_line(visited));
            }
        }
    }
    let _ = writeln!(text, "    => {summary}");
    text
}

const fn fault_level(kind: &FaultKind<OutsideImage>) -> Option<Level> {
    match kind {
        FaultKind::NonCanonical { .. } => None,
        FaultKind::NotPresent { level, .. }
        | FaultKind::ReservedBit { level, .. }
        | FaultKind::ReadFailed { level, .. } => Some(*level),
    }
}

/// One entry in Intel's words: `PDPTE at phys 0x2008: 0x...5027 (P RW US A, address 0x5000)`.
fn intel_line(visited: &Visited) -> String {
    let Visited { level, addr, entry } = *visited;
    let mut line = format!("{level} at phys {:#x}: {:#018x} (", addr.0, entry.0);
    if entry.0 & 1 == 0 {
        line.push_str("not present)");
        return line;
    }
    let large = matches!(level, Level::Pdpt | Level::Pd) && entry.0 & 0x80 != 0;
    // PAT is bit 7 in a PTE and bit 12 in a large leaf, where bit 7 is PS.
    let (bit7, pat_bit12) = match level {
        Level::Pt => ("PAT", false),
        _ => ("PS", large),
    };
    let flag_bits: [(u64, &str, bool); 11] = [
        (1, "P", true),
        (1 << 1, "RW", true),
        (1 << 2, "US", true),
        (1 << 3, "PWT", true),
        (1 << 4, "PCD", true),
        (1 << 5, "A", true),
        (1 << 6, "D", true),
        (1 << 7, bit7, true),
        (1 << 8, "G", true),
        (1 << 12, "PAT", pat_bit12),
        (1 << 63, "XD", true),
    ];
    let names: Vec<&str> = flag_bits
        .iter()
        .filter(|(bit, _, shown)| *shown && entry.0 & bit != 0)
        .map(|(_, name, _)| *name)
        .collect();
    let address_bits = if large {
        0x000f_ffff_ffff_e000
    } else {
        0x000f_ffff_ffff_f000
    };
    let _ = write!(
        line,
        "{}, address {:#x})",
        names.join(" "),
        entry.0 & address_bits
    );
    line
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
