//! `DbgPrintEx` format strings checked at compile time.

use core::ffi::CStr;

/// A `DbgPrintEx` format string, checked.
///
/// It starts with `vmwalk: `, ends with a newline, and has at most two
/// conversions, each `%p` or `%08X`, so passing two 64-bit arguments is always
/// enough (x64 varargs take 8-byte slots).
#[derive(Debug, Clone, Copy)]
pub struct LogFormat(&'static CStr);

const PREFIX: &[u8] = b"vmwalk: ";

impl LogFormat {
    /// Checks `format`; in a `const` item a bad format fails the build.
    ///
    /// # Panics
    /// When the format breaks a rule above.
    #[must_use]
    pub const fn new(format: &'static CStr) -> Self {
        let bytes = format.to_bytes();
        assert!(bytes.len() > PREFIX.len(), "format too short");
        let mut i = 0;
        while i < PREFIX.len() {
            assert!(bytes[i] == PREFIX[i], "format must start with `vmwalk: `");
            i += 1;
        }
        assert!(
            bytes[bytes.len() - 1] == b'\n',
            "format must end with a newline"
        );
        let mut conversions = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                if i + 1 < bytes.len() && bytes[i + 1] == b'p' {
                    i += 2;
                } else if i + 4 < bytes.len()
                    && bytes[i + 1] == b'0'
                    && bytes[i + 2] == b'8'
                    && bytes[i + 3] == b'X'
                {
                    i += 4;
                } else {
                    panic!("only %p and %08X conversions are allowed");
                }
                conversions += 1;
            } else {
                i += 1;
            }
        }
        assert!(conversions <= 2, "at most two conversions");
        Self(format)
    }

    /// The NUL-terminated format string.
    #[must_use]
    pub const fn as_cstr(&self) -> &'static CStr {
        self.0
    }
}
