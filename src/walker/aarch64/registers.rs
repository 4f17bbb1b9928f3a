//! What a stage 1 EL1&0 walk needs from TTBR0_EL1, TTBR1_EL1 and TCR_EL1
//! (Arm ARM, "VMSAv8-64 translation table format descriptors" and the
//! register descriptions of TCR_EL1 and TTBRn_EL1).

use super::descriptor::Level;

/// The implemented physical address size this walker models
/// (`ID_AA64MMFR0_EL1.PARange` = 0b0101): 52-bit output addresses (FEAT_LPA,
/// FEAT_LPA2) are not supported.
pub const IMPLEMENTED_PA_BITS: u32 = 48;

/// `TCR_EL1` fields, by bit position.
pub mod tcr {
    /// T0SZ, bits 5:0: the lower range covers 2^(64-T0SZ) bytes.
    pub const T0SZ_SHIFT: u32 = 0;
    /// EPD0: walks through TTBR0 are disabled (Translation fault, level 0).
    pub const EPD0: u64 = 1 << 7;
    /// TG0, bits 15:14: TTBR0's granule (0b00 = 4 KiB).
    pub const TG0_SHIFT: u32 = 14;
    /// T1SZ, bits 21:16: the upper range covers 2^(64-T1SZ) bytes.
    pub const T1SZ_SHIFT: u32 = 16;
    /// EPD1: walks through TTBR1 are disabled.
    pub const EPD1: u64 = 1 << 23;
    /// TG1, bits 31:30: TTBR1's granule (0b10 = 4 KiB).
    pub const TG1_SHIFT: u32 = 30;
    /// IPS, bits 34:32: the intermediate physical (here: output) address size.
    pub const IPS_SHIFT: u32 = 32;
    /// TBI0: the top byte of lower-range addresses is ignored (tagged).
    pub const TBI0: u64 = 1 << 37;
    /// TBI1: the top byte of upper-range addresses is ignored.
    pub const TBI1: u64 = 1 << 38;
    /// HA: the hardware sets AF instead of taking an Access flag fault.
    pub const HA: u64 = 1 << 39;
    /// HPD0: hierarchical permissions (APTable, UXNTable, PXNTable) disabled for TTBR0.
    pub const HPD0: u64 = 1 << 41;
    /// HPD1: hierarchical permissions disabled for TTBR1.
    pub const HPD1: u64 = 1 << 42;
    /// DS: 52-bit addresses with the 4 KiB granule (FEAT_LPA2).
    pub const DS: u64 = 1 << 59;
    /// TG0's encoding of the 4 KiB granule.
    pub const TG0_4K: u8 = 0b00;
    /// TG1's encoding of the 4 KiB granule.
    pub const TG1_4K: u8 = 0b10;
}

/// One of the two virtual address ranges of the EL1&0 regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VaRange {
    /// Addresses with bit 55 clear, translated through `TTBR0_EL1`.
    Lower,
    /// Addresses with bit 55 set, translated through `TTBR1_EL1`.
    Upper,
}

impl VaRange {
    /// The base register's name.
    #[must_use]
    pub const fn register(self) -> &'static str {
        match self {
            Self::Lower => "TTBR0_EL1",
            Self::Upper => "TTBR1_EL1",
        }
    }

    /// The range an address would use: bit 55 decides, also with tagged
    /// addresses (Arm ARM pseudocode `AArch64.GetVARange`).
    #[must_use]
    pub const fn of(va: u64) -> Self {
        if va & (1 << 55) == 0 {
            Self::Lower
        } else {
            Self::Upper
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Lower => 0,
            Self::Upper => 1,
        }
    }
}

impl core::fmt::Display for VaRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.register())
    }
}

/// A register setting the walker does not model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// TG0/TG1 select a 16 KiB or 64 KiB granule (or a reserved encoding).
    #[error("TCR_EL1.TG{} = {tg:#04b} is not the 4 KiB granule, the only one supported", range_digit(*.range))]
    Granule {
        /// The range whose granule it is.
        range: VaRange,
        /// The field's value.
        tg: u8,
    },
    /// TxSZ outside 16..=39, the range of the 4 KiB granule without FEAT_LPA2
    /// or FEAT_TTST (where the CPU's behaviour is IMPLEMENTATION DEFINED).
    #[error("TCR_EL1.T{}SZ = {txsz} is outside 16..=39", range_digit(*.range))]
    RegionSize {
        /// The range whose size it is.
        range: VaRange,
        /// The field's value.
        txsz: u8,
    },
    /// TCR_EL1.DS: 52-bit addresses with the 4 KiB granule (FEAT_LPA2).
    #[error("TCR_EL1.DS (FEAT_LPA2, 52-bit addresses) is not supported")]
    Lpa2,
}

const fn range_digit(range: VaRange) -> u8 {
    match range {
        VaRange::Lower => 0,
        VaRange::Upper => 1,
    }
}

/// How one range is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeConfig {
    /// The TTBR's value, as given (ASID and CnP included).
    pub ttbr: u64,
    /// 64 - TxSZ: the number of significant address bits.
    pub va_bits: u32,
    /// TBIx: bits 63:56 are ignored.
    pub top_byte_ignored: bool,
    /// EPDx: a walk is a Translation fault at level 0.
    pub walks_disabled: bool,
    /// HPDx: APTable, UXNTable and PXNTable are ignored.
    pub hierarchical_permissions_disabled: bool,
}

impl RangeConfig {
    /// The first level of a walk: each level resolves 9 bits above the 12 of
    /// the page offset, so 40..=48 bits start at level 0, 31..=39 at level 1,
    /// 25..=30 at level 2 (Arm ARM, "Translation table walks" with the 4 KB
    /// granule: the initial lookup level).
    #[must_use]
    pub const fn start_level(&self) -> Level {
        match self.va_bits {
            40.. => Level::L0,
            31..40 => Level::L1,
            _ => Level::L2,
        }
    }

    /// The highest address bit that must copy bit 55 (63, or 55 with TBI).
    #[must_use]
    pub const fn top_checked_bit(&self) -> u32 {
        if self.top_byte_ignored { 55 } else { 63 }
    }

    /// Physical address of the initial-level table: TTBR bits 47:x, where 2^x
    /// is the size of that table. ASID (63:48) and CnP (bit 0) are ignored;
    /// lower BADDR bits of a misaligned table are taken as zero (the Arm ARM
    /// makes them CONSTRAINED UNPREDICTABLE; QEMU zeroes them too).
    #[must_use]
    pub const fn table_base(&self) -> u64 {
        let index_bits = self.va_bits - self.start_level().shift();
        let low = 3 + index_bits;
        self.ttbr & mask(low, 47)
    }
}

/// The `width`-bit field (8 bits at most) of `value` at `shift`.
// The mask keeps at most 8 bits: the cast cannot truncate.
#[allow(clippy::cast_possible_truncation)]
const fn field(value: u64, shift: u32, width: u32) -> u8 {
    ((value >> shift) & ((1 << width) - 1)) as u8
}

/// Bits `low..=high` set.
pub(super) const fn mask(low: u32, high: u32) -> u64 {
    (u64::MAX >> (63 - high)) & !((1 << low) - 1)
}

/// The translation regime of EL1&0, stage 1, with the 4 KiB granule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    ranges: [RangeConfig; 2],
    pa_bits: u32,
    hardware_access_flag: bool,
    /// Each range's checks, precomputed for the translation fast path.
    prepared: [Prepared; 2],
}

/// What a walk of one range checks and starts from, computed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Prepared {
    /// Bits of an address that must all equal bit 55, and their value;
    /// no address matches when walks are disabled, the initial table is
    /// beyond the PA size, or the walk starts below level 0 (those take the
    /// step-by-step walk).
    pub(super) checked: u64,
    pub(super) expected: u64,
    /// The input-address bits.
    pub(super) ia_mask: u64,
    /// The initial (level 0) table.
    pub(super) table: u64,
}

impl Prepared {
    const fn of(config: &RangeConfig, range: VaRange, pa_bits: u32) -> Self {
        let checked = mask(config.va_bits, config.top_checked_bit());
        let table = config.table_base();
        let usable = !config.walks_disabled
            && table >> pa_bits == 0
            && matches!(config.start_level(), Level::L0);
        Self {
            checked: if usable { checked } else { 0 },
            expected: match (usable, range) {
                (false, _) => 1,
                (true, VaRange::Lower) => 0,
                (true, VaRange::Upper) => checked,
            },
            ia_mask: mask(0, config.va_bits - 1),
            table,
        }
    }
}

impl Paging {
    /// The regime `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1` describe.
    ///
    /// # Errors
    /// When a setting is one the walker does not model: a granule other than
    /// 4 KiB, a TxSZ outside 16..=39, or TCR_EL1.DS.
    pub const fn from_registers(ttbr0: u64, ttbr1: u64, tcr: u64) -> Result<Self, ConfigError> {
        if tcr & tcr::DS != 0 {
            return Err(ConfigError::Lpa2);
        }
        let tg0 = field(tcr, tcr::TG0_SHIFT, 2);
        if tg0 != tcr::TG0_4K {
            return Err(ConfigError::Granule {
                range: VaRange::Lower,
                tg: tg0,
            });
        }
        let tg1 = field(tcr, tcr::TG1_SHIFT, 2);
        if tg1 != tcr::TG1_4K {
            return Err(ConfigError::Granule {
                range: VaRange::Upper,
                tg: tg1,
            });
        }
        let t0sz = field(tcr, tcr::T0SZ_SHIFT, 6);
        let t1sz = field(tcr, tcr::T1SZ_SHIFT, 6);
        if t0sz < 16 || t0sz > 39 {
            return Err(ConfigError::RegionSize {
                range: VaRange::Lower,
                txsz: t0sz,
            });
        }
        if t1sz < 16 || t1sz > 39 {
            return Err(ConfigError::RegionSize {
                range: VaRange::Upper,
                txsz: t1sz,
            });
        }
        // IPS above the implemented size behaves as the implemented size;
        // 0b110 (52 bits) needs FEAT_LPA and 0b111 is reserved.
        let pa_bits = match field(tcr, tcr::IPS_SHIFT, 3) {
            0b000 => 32,
            0b001 => 36,
            0b010 => 40,
            0b011 => 42,
            0b100 => 44,
            _ => IMPLEMENTED_PA_BITS,
        };
        let ranges = [
            RangeConfig {
                ttbr: ttbr0,
                va_bits: 64 - t0sz as u32,
                top_byte_ignored: tcr & tcr::TBI0 != 0,
                walks_disabled: tcr & tcr::EPD0 != 0,
                hierarchical_permissions_disabled: tcr & tcr::HPD0 != 0,
            },
            RangeConfig {
                ttbr: ttbr1,
                va_bits: 64 - t1sz as u32,
                top_byte_ignored: tcr & tcr::TBI1 != 0,
                walks_disabled: tcr & tcr::EPD1 != 0,
                hierarchical_permissions_disabled: tcr & tcr::HPD1 != 0,
            },
        ];
        Ok(Self {
            prepared: [
                Prepared::of(&ranges[0], VaRange::Lower, pa_bits),
                Prepared::of(&ranges[1], VaRange::Upper, pa_bits),
            ],
            ranges,
            pa_bits,
            hardware_access_flag: tcr & tcr::HA != 0,
        })
    }

    /// The fast path's view of the range of `va` (bit 55 selects it).
    pub(super) const fn prepared(&self, va: u64) -> &Prepared {
        &self.prepared[((va >> 55) & 1) as usize]
    }

    /// How `range` is translated.
    #[must_use]
    pub const fn range(&self, range: VaRange) -> &RangeConfig {
        &self.ranges[range.index()]
    }

    /// The output address size: IPS, capped at [`IMPLEMENTED_PA_BITS`].
    #[must_use]
    pub const fn pa_bits(&self) -> u32 {
        self.pa_bits
    }

    /// TCR_EL1.HA: the CPU sets AF itself; without it, an access through a
    /// descriptor with AF clear is an Access flag fault.
    #[must_use]
    pub const fn hardware_access_flag(&self) -> bool {
        self.hardware_access_flag
    }

    /// Whether `addr` has a bit at or above the output address size.
    pub(super) const fn beyond_pa_size(&self, addr: u64) -> bool {
        addr >> self.pa_bits != 0
    }
}
