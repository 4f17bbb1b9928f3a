//! A log line formatted on the stack: no heap in the driver.

use core::ffi::CStr;
use core::fmt::{self, Write as _};

use super::api::KernelApi;
use crate::ffi::ULONG;

/// Formats `args` on the stack and logs it with `DbgPrintEx(..., "%s", line)`.
pub(super) fn log<K: KernelApi>(kernel: &K, level: ULONG, args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = line.write_fmt(args); // Line never fails; a long line is cut
    kernel.dbg_print_line(level, line.as_cstr());
}

/// `DbgPrintEx` prints at most 512 bytes per call; our lines are shorter.
const CAPACITY: usize = 256;

/// A NUL-terminated line built with `write!`; text beyond its capacity is cut.
pub struct Line {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Line {
    /// An empty line.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            len: 0,
        }
    }

    /// The text, NUL-terminated (the last byte is never written).
    #[must_use]
    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or(c"")
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            // Keep the last byte for the NUL; a NUL inside would end the line early.
            let Some(slot) = self
                .bytes
                .get_mut(self.len)
                .filter(|_| self.len + 1 < CAPACITY)
            else {
                return Ok(()); // cut, silently: a shortened line beats none
            };
            *slot = if byte == 0 { b'?' } else { byte };
            self.len += 1;
        }
        Ok(())
    }
}
