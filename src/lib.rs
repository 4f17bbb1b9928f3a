//! vmwalk: a WDM driver that shows how Windows kernel virtual memory works,
//! and the x86-64 page-table walker it uses (also usable on memory images).
#![no_std]

// Host builds (tests, tools, the Linux cdylib) link std for its panic handler.
#[cfg(not(target_os = "windows"))]
extern crate std;

// Clippy also checks it on Linux hosts, against the standalone declarations.
#[cfg(any(windows, clippy))]
mod driver;
pub mod ffi;
pub mod kernel;
pub mod walker;
