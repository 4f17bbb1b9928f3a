//! vmwalk: a WDM driver that shows how Windows kernel virtual memory works,
//! and the x86-64 and ARM64 page-table walker it uses (also usable on memory images).
//!
//! - [`walker`]: the page-table walker (`no_std`, no allocation, no panic):
//!   translation with the reason an address does not translate, enumeration
//!   of mappings, the self-map, Windows' software PTEs and `WinDbg`'s `!pte`
//!   output. Its module documentation has a runnable example.
//! - [`kernel`]: the driver's logic, generic over [`kernel::KernelApi`] so it
//!   runs against the real ntoskrnl and against a fake kernel in tests.
//! - [`ffi`]: the ntoskrnl names it uses, from `wdk-sys` or declared by hand.
//!
//! The driver entry points and the `ptwalk` command are not part of this
//! library's API; see the repository's README.
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
