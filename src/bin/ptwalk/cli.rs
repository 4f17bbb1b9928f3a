//! The command line: clap's definition of `translate`, `dump`, `pte`,
//! `spaces` and `map`, and what it parses into ([`Command`]), before
//! anything is opened.

use crate::map::MapArgs;
use crate::spaces::SpacesArgs;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command as ClapCommand, value_parser};

use crate::addresses;
use crate::paging_args::{AArch64Args, Arch, PagingArgs};

/// What the user asked for.
pub enum Command {
    Translate(TranslateArgs),
    Dump(PagingArgs),
    Pte(PteArgs),
    Spaces(SpacesArgs),
    Map(MapArgs),
}

/// `translate`'s arguments.
pub struct TranslateArgs {
    pub paging: PagingArgs,
    pub addresses: Vec<u64>,
    pub addresses_from: Vec<PathBuf>,
    pub json: bool,
    pub explain: bool,
    pub os: Os,
    pub invalid_pte_mask: Option<u64>,
}

/// `pte`'s arguments.
pub struct PteArgs {
    pub paging: PagingArgs,
    pub addresses: Vec<u64>,
    pub addresses_from: Vec<PathBuf>,
    pub invalid_pte_mask: Option<u64>,
    pub self_map: SelfMapChoice,
}

/// Whose words `--explain` uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Intel's entry names; a non-present entry is only not present.
    X86,
    /// `WinDbg`'s names, and Windows' software PTEs decoded as `!pte` does.
    Windows,
}

/// Which top-level entry maps its own table (`--self-map`).
#[derive(Clone, Copy)]
pub enum SelfMapChoice {
    /// Find it, as the driver does.
    Auto,
    /// This index.
    Index(usize),
}

/// clap's definition of the command line.
// The builder API: clap's derive emits `allow(clippy::restriction)`, which our
// forbidden unsafe lints reject.
pub fn cli() -> ClapCommand {
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
                "CR3, in hex: 0x optional (1000 is 0x1000), `_` and WinDbg's ` separators allowed [default: the capture's, said on stderr: a crash dump header's DirectoryTableBase, a QEMU core's vCPU note; required otherwise]",
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
        Arg::new("cpu")
            .long("cpu")
            .value_name("N")
            .value_parser(value_parser!(usize))
            .help("For a QEMU ELF core of an x86 guest: the vCPU (from 0) whose CR3 and CR4 its notes give [default: 0]"),
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
            .help("The CPU's architecture [default: an ARM64 crash dump's, said on stderr; else x86_64]"),
        Arg::new("ttbr0")
            .long("ttbr0")
            .value_parser(addresses::parse_hex)
            .help("With --arch aarch64: TTBR0_EL1, in hex (ASID and CnP ignored) [default for an ARM64 crash dump, with --ttbr1: from its DirectoryTableBase]"),
        Arg::new("ttbr1")
            .long("ttbr1")
            .value_parser(addresses::parse_hex)
            .help("With --arch aarch64: TTBR1_EL1, in hex"),
        Arg::new("tcr")
            .long("tcr")
            .value_parser(addresses::parse_hex)
            .help("With --arch aarch64: TCR_EL1, in hex (T0SZ, T1SZ, TG0/TG1, IPS, TBI, EPD, HA) [default for an ARM64 crash dump: Windows' 0x615b5513511]"),
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
            ClapCommand::new("spaces")
                .about("List the address spaces in a capture, found without registers: each top-level table with a self-map entry, and the kernel's (x86-64: named by the low stub; a crash dump: by its header)")
                .arg(Arg::new("image").long("image").required(true).value_parser(value_parser!(PathBuf)).help("The memory image: raw, an ELF core, or a Windows crash dump"))
                .arg(Arg::new("arch").long("arch").value_parser(["x86_64", "aarch64"]).default_value("x86_64").help("The CPU's architecture"))
                .arg(Arg::new("tcr").long("tcr").value_parser(addresses::parse_hex).help("With --arch aarch64: the TCR_EL1 to report (default: Windows' 0x615b5513511)"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("Print one JSON object per address space"))
                .arg(Arg::new("rejected").long("rejected").action(ArgAction::SetTrue).help("Also list the tables that are not address spaces, with the reason")),
        )
        .subcommand(map_command(&paging_args, &arch_args))
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

/// `map`: the image and registers as `dump` takes them, the SVG, the addresses.
fn map_command(paging_args: &[Arg], arch_args: &[Arg]) -> ClapCommand {
    ClapCommand::new("map")
        .about("Draw the address space and the walk of each --address as one SVG picture (no script, no external reference)")
        .args(paging_args)
        .args(arch_args)
        .arg(Arg::new("svg").long("svg").value_name("FILE").required(true).value_parser(value_parser!(PathBuf)).help("The SVG file to write"))
        .arg(Arg::new("address").long("address").value_name("ADDR").action(ArgAction::Append).value_parser(addresses::parse_hex).help("Also draw the walk of this virtual address, in hex like --cr3 (may be given again)"))
}

/// The command clap's `matches` describe; `None` if they name none.
pub fn parse_command(matches: &ArgMatches) -> Option<Command> {
    let (name, sub) = matches.subcommand()?;
    if name == "spaces" {
        return Some(Command::Spaces(SpacesArgs {
            image: sub.get_one::<PathBuf>("image")?.clone(),
            aarch64: sub
                .get_one::<String>("arch")
                .is_some_and(|arch| arch == "aarch64"),
            tcr: sub.get_one::<u64>("tcr").copied(),
            json: sub.get_flag("json"),
            rejected: sub.get_flag("rejected"),
        }));
    }
    let paging = PagingArgs {
        image: sub.get_one::<PathBuf>("image")?.clone(),
        arch: sub
            .get_one::<String>("arch")
            .map(|arch| match arch.as_str() {
                "aarch64" => Arch::Aarch64,
                _ => Arch::X86_64,
            }),
        arm64: AArch64Args {
            ttbr0: sub.get_one::<u64>("ttbr0").copied(),
            ttbr1: sub.get_one::<u64>("ttbr1").copied(),
            tcr: sub.get_one::<u64>("tcr").copied(),
        },
        cr3: sub.get_one::<u64>("cr3").copied(),
        la57: sub.get_flag("la57"),
        maxphyaddr: sub.get_one::<u32>("maxphyaddr").copied(),
        cpu: sub.get_one::<usize>("cpu").copied(),
        no_nx: sub.get_flag("no-nx"),
    };
    Some(match name {
        "translate" => Command::Translate(TranslateArgs {
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
        }),
        "map" => Command::Map(MapArgs {
            paging,
            svg: sub.get_one::<PathBuf>("svg")?.clone(),
            addresses: sub
                .get_many::<u64>("address")
                .map(|many| many.copied().collect())
                .unwrap_or_default(),
        }),
        "pte" => Command::Pte(PteArgs {
            paging,
            addresses: listed_addresses(sub),
            addresses_from: files_listed(sub),
            invalid_pte_mask: sub.get_one::<u64>("invalid-pte-mask").copied(),
            self_map: *sub.get_one::<SelfMapChoice>("self-map")?,
        }),
        _ => Command::Dump(paging),
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
