//! Why an address does not translate, in the Arm ARM's fault names.

use super::descriptor::{Descriptor, Level};
use super::registers::VaRange;
use crate::walker::PhysAddr;

/// Why a walk stopped, as the CPU reports it (ESR_EL1's fault status code),
/// or a failed read of this walker's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind<E> {
    /// The bits above the range's size (up to bit 63, or 55 with TBI) do not
    /// all copy bit 55: Translation fault, level 0 (pseudocode
    /// `AArch64.VAIsOutOfRange`).
    #[error(
        "Translation fault, level 0: the address is outside both ranges (bits {top}:{va_bits} must all equal bit 55)"
    )]
    OutsideRanges {
        /// The range bit 55 selects.
        range: VaRange,
        /// 64 - TxSZ of that range.
        va_bits: u32,
        /// 63, or 55 with TBI.
        top: u32,
    },
    /// TCR_EL1.EPDx is set for the range: Translation fault, level 0.
    #[error("Translation fault, level 0: walks through {range} are disabled (TCR_EL1.EPD)")]
    WalksDisabled {
        /// The range.
        range: VaRange,
    },
    /// The TTBR's table address has bits at or above the output address
    /// size: Address size fault, level 0.
    #[error(
        "Address size fault, level 0: {range} table address {table:#x} is beyond the {pa_bits}-bit PA size"
    )]
    TableBaseBeyondPaSize {
        /// The range.
        range: VaRange,
        /// The table address.
        table: u64,
        /// The output address size.
        pa_bits: u32,
    },
    /// Bit 0 of the descriptor is clear: Translation fault at its level.
    #[error("Translation fault, {level}: descriptor {descriptor} is invalid (bit 0 clear)")]
    Invalid {
        /// Level of the descriptor.
        level: Level,
        /// The descriptor (software may keep information in it).
        descriptor: Descriptor,
    },
    /// A block descriptor at level 0, or bits 1:0 = 0b01 at level 3:
    /// reserved encodings, a Translation fault at that level.
    #[error(
        "Translation fault, {level}: descriptor {descriptor} is a reserved encoding (bits 1:0 = 0b01)"
    )]
    Reserved {
        /// Level of the descriptor.
        level: Level,
        /// The descriptor.
        descriptor: Descriptor,
    },
    /// The next table's or the block's or page's address has bits at or
    /// above the output address size: Address size fault at that level.
    #[error(
        "Address size fault, {level}: descriptor {descriptor} gives address {addr:#x}, beyond the {pa_bits}-bit PA size"
    )]
    AddressSize {
        /// Level of the descriptor.
        level: Level,
        /// The descriptor.
        descriptor: Descriptor,
        /// The address it gives.
        addr: u64,
        /// The output address size.
        pa_bits: u32,
    },
    /// The descriptor could not be read (on a CPU: a synchronous external
    /// abort on translation table walk).
    #[error("reading the {level} descriptor at physical {addr} failed: {error}")]
    ReadFailed {
        /// Level of the descriptor.
        level: Level,
        /// Its physical address.
        addr: PhysAddr,
        /// The reader's error.
        error: E,
    },
}
