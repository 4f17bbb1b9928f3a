//! How the walker reads physical memory ([`PhysicalMemory`]), and memory
//! backed by a byte slice (a raw image: offset = physical address).

use core::fmt;

use super::address::PhysAddr;

/// Reads physical memory for the walker.
pub trait PhysicalMemory {
    /// Why a read failed.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Reads the 8-byte little-endian value at `addr` (8-byte aligned).
    ///
    /// # Errors
    /// When the memory at `addr` cannot be read.
    fn read_u64(&self, addr: PhysAddr) -> Result<u64, Self::Error>;

    /// The 4 KiB page at `addr` (4 KiB-aligned) as bytes, when the memory
    /// holds it in one piece: enumeration then scans a table without a call
    /// per entry. `None` (the default) means: read it entry by entry.
    fn page(&self, addr: PhysAddr) -> Option<&[u8; PAGE]> {
        let _ = addr;
        None
    }
}

/// Bytes in a page.
pub const PAGE: usize = 4096;

impl<M: PhysicalMemory + ?Sized> PhysicalMemory for &M {
    type Error = M::Error;

    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> Result<u64, Self::Error> {
        (**self).read_u64(addr)
    }

    #[inline]
    fn page(&self, addr: PhysAddr) -> Option<&[u8; PAGE]> {
        (**self).page(addr)
    }
}

/// A raw physical memory image, such as QEMU's `pmemsave` or a `VMware` `.vmem`.
#[derive(Clone, Copy, Debug)]
pub struct ImageMemory<'a> {
    bytes: &'a [u8],
}

impl<'a> ImageMemory<'a> {
    /// The image `bytes`, byte `i` being physical address `i`.
    #[must_use]
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }
}

/// A read beyond the end of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutsideImage {
    /// The physical address read.
    pub addr: PhysAddr,
    /// The image's size in bytes.
    pub image_len: u64,
}

impl fmt::Display for OutsideImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "physical address {} is outside the {:#x}-byte image",
            self.addr, self.image_len
        )
    }
}

impl PhysicalMemory for ImageMemory<'_> {
    type Error = OutsideImage;

    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> Result<u64, OutsideImage> {
        usize::try_from(addr.0)
            .ok()
            .and_then(|start| self.bytes.get(start..start.checked_add(8)?))
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(OutsideImage {
                addr,
                image_len: self.bytes.len() as u64,
            })
    }

    #[inline]
    fn page(&self, addr: PhysAddr) -> Option<&[u8; PAGE]> {
        let start = usize::try_from(addr.0)
            .ok()
            .filter(|start| start % PAGE == 0)?;
        self.bytes
            .get(start..start.checked_add(PAGE)?)?
            .try_into()
            .ok()
    }
}
