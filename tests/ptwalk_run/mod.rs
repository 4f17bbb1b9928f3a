//! Running the `ptwalk` binary from the tests: temporary images, the
//! command, its output as text, memory as a crash dump's pages.
#![allow(dead_code, reason = "each test file uses what it needs")]

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::crash_dump::{PAGE, Pages};

/// `bytes` in a file of the temporary directory, named after this process.
pub fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vmwalk-ptwalk-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The README's ARM64 sample (`samples/tiny-arm64.raw`, Windows on ARM64's
/// layout, one top-level page at 0x1000) and the registers to give for it.
pub const ARM64_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/tiny-arm64.raw");
pub const ARM64_SAMPLE_REGISTERS: [&str; 8] = [
    "--arch",
    "aarch64",
    "--ttbr0",
    "1000",
    "--ttbr1",
    "1800",
    "--tcr",
    "615b5513511",
];

/// `ptwalk ARGS...` in the repository's root (relative paths such as
/// `samples/tiny.raw` are the README's), run to its end.
pub fn ptwalk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptwalk"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

/// Its standard output, which must be UTF-8.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Its standard error.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `memory` (physical address = offset) as the pages a dump holds.
pub fn pages_of(memory: &[u8]) -> Pages {
    memory
        .chunks(PAGE)
        .enumerate()
        .map(|(i, page)| ((i * PAGE) as u64, page.to_vec()))
        .collect()
}
