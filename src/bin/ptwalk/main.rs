//! ptwalk: translate addresses and list mappings with vmwalk's page-table
//! walkers (x86-64 and ARM64), over a physical memory image. This file
//! parses the command line (`cli.rs`) and hands each subcommand to its
//! module: `translate.rs`, `dump.rs`, `pte.rs`, `spaces.rs`, `map/`.

mod addresses;
mod cli;
mod crash_dump;
mod dump;
mod format;
mod image;
mod map;
mod mask;
mod paging_args;
mod pte;
mod recorded;
mod render;
mod report;
mod segment;
mod skipped;
mod spaces;
mod svg;
mod translate;

use std::io::{self, BufWriter};
use std::process::ExitCode;

use anyhow::Result;
use cli::Command;

fn main() -> ExitCode {
    let matches = match cli::cli().try_get_matches() {
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
    let Some(command) = cli::parse_command(&matches) else {
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

/// Runs `command`. Its output is flushed when `out` is dropped, before
/// `main` prints an error.
fn run(command: &Command) -> Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    match command {
        Command::Translate(args) => translate::run(&mut out, args),
        Command::Dump(paging) => dump::run(&mut out, paging),
        Command::Pte(args) => pte::run(&mut out, args),
        Command::Spaces(args) => spaces::run(&mut out, args),
        Command::Map(args) => map::run(args),
    }
}
