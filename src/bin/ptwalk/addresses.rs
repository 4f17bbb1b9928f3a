//! The addresses a command walks: in hex on the command line, and from
//! files or standard input (`--addresses-from`, as often as wanted).

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A 64-bit hex number as `WinDbg` users write one: `0x` optional, `_` and
/// `WinDbg`'s backtick (``fffff800`12345678``) between digits.
pub fn parse_hex(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let digits = digits.replace(['`', '_'], "");
    u64::from_str_radix(&digits, 16).map_err(|_| format!("'{text}' is not a 64-bit hex number"))
}

/// How errors name `path`.
fn name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// `listed`, then those in each file of `from` (`-`: standard input):
/// separated by white space or commas, `#` to the end of a line a comment.
/// At least one address in all, or an error that says how to give one.
pub fn all(listed: &[u64], from: &[PathBuf]) -> Result<Vec<u64>> {
    let mut addresses = listed.to_vec();
    for path in from {
        let text = if path.as_os_str() == "-" {
            io::read_to_string(io::stdin().lock())
        } else {
            std::fs::read_to_string(path)
        }
        .with_context(|| format!("cannot read addresses from {}", name(path)))?;
        let before = addresses.len();
        for (number, line) in text.lines().enumerate() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            for word in line
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
            {
                let address = parse_hex(word).map_err(|error| {
                    anyhow::anyhow!("{} line {}: {error}", name(path), number + 1)
                })?;
                addresses.push(address);
            }
        }
        if addresses.len() == before {
            bail!("{} holds no address", name(path));
        }
    }
    if addresses.is_empty() {
        bail!(
            "no address given: list them in hex after the options, or give --addresses-from FILE (- for standard input)"
        );
    }
    Ok(addresses)
}
