//! `ptwalk map`: one SVG picture of an address space and of the walk of
//! each `--address`. The address space: its two ranges (x86-64's canonical
//! halves, ARM64's `TTBR0_EL1` and `TTBR1_EL1` ranges) and the hole between
//! them, every run `dump` lists on a scale that keeps small runs visible,
//! coloured by access, the self-map and the kernel image labelled. Each walk:
//! the address split into its indices, and each table read, as `translate
//! --explain` reports it (`report.rs`, `render.rs`). Drawn with `svg.rs`.
//!
//! `capture.rs` finds what is drawn ([`picture`]'s types), `layout.rs`
//! places it on each row's scale, and `draw.rs` writes the SVG.

mod capture;
mod draw;
mod layout;
mod picture;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::paging_args::{Opened, PagingArgs};
use capture::{aarch64_picture, x86_picture};
use draw::draw;

/// What `ptwalk map` was asked.
pub struct MapArgs {
    pub paging: PagingArgs,
    /// `--svg`: the file to write.
    pub svg: PathBuf,
    /// `--address`: the addresses whose walks are drawn.
    pub addresses: Vec<u64>,
}

/// Runs `map`.
pub fn run(args: &MapArgs) -> Result<()> {
    let picture = match args.paging.open(|_| Ok(()))? {
        Opened::X86_64 { paging, image } => x86_picture(&paging, &image, &args.addresses),
        Opened::Aarch64 { registers, image } => {
            aarch64_picture(&registers, &image, &args.addresses)?
        }
    };
    let (svg, merged) = draw(&picture);
    std::fs::write(&args.svg, svg.as_bytes())
        .with_context(|| format!("cannot write {}", args.svg.display()))?;
    eprintln!(
        "ptwalk: wrote {}: {} runs ({} bars, {merged} runs merged into others' pixels), {} walk(s), {} bytes",
        args.svg.display(),
        picture.runs.len(),
        picture.runs.len() - merged,
        picture.walks.len(),
        svg.len()
    );
    if picture.missing > 0 {
        bail!(
            "{} page table(s) could not be read: tables missing from the image (the picture leaves out what they map)",
            picture.missing
        );
    }
    Ok(())
}
