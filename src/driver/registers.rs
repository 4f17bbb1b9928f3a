//! The paging registers of the processor the driver runs on, one function
//! per architecture.

use crate::kernel::PagingRegisters;

/// CR3, CR4, EFER and CPUID's paging facts.
///
/// Each register is read by its own instruction with fixed registers
/// (`mov rax, cr3` is 0F 20 D8, `mov rax, cr4` 0F 20 E0, `rdmsr` 0F 32,
/// `cpuid` 0F A2): the emulator harness finds and hooks exactly these.
#[cfg(target_arch = "x86_64")]
pub fn read() -> PagingRegisters {
    use core::arch::asm;

    /// `IA32_EFER`, the MSR that holds NXE.
    const IA32_EFER: u32 = 0xC000_0080;

    let cr3: u64;
    // SAFETY: reading CR3 at CPL 0 has no side effect.
    unsafe { asm!("mov rax, cr3", out("rax") cr3, options(nomem, nostack, preserves_flags)) };
    let cr4: u64;
    // SAFETY: reading CR4 at CPL 0 has no side effect.
    unsafe { asm!("mov rax, cr4", out("rax") cr4, options(nomem, nostack, preserves_flags)) };
    let (efer_low, efer_high): (u32, u32);
    // SAFETY: IA32_EFER exists on every x86-64 processor; rdmsr at CPL 0.
    unsafe {
        asm!(
            "rdmsr",
            in("ecx") IA32_EFER,
            out("eax") efer_low,
            out("edx") efer_high,
            options(nomem, nostack, preserves_flags),
        );
    }
    let address_sizes = core::arch::x86_64::__cpuid(0x8000_0008);
    let extended_features = core::arch::x86_64::__cpuid(0x8000_0001);
    PagingRegisters::X64(crate::kernel::X64Registers {
        cr3,
        cr4,
        efer: u64::from(efer_high) << 32 | u64::from(efer_low),
        max_phys_bits: address_sizes.eax & 0xff,
        gigabyte_pages: extended_features.edx & (1 << 26) != 0,
    })
}

/// `TTBR0_EL1`, `TTBR1_EL1` and `TCR_EL1`, each read by one `mrs`.
#[cfg(target_arch = "aarch64")]
pub fn read() -> PagingRegisters {
    use core::arch::asm;

    let (ttbr0, ttbr1, tcr): (u64, u64, u64);
    // SAFETY: reading TTBR0_EL1 at EL1 has no side effect.
    unsafe { asm!("mrs {}, TTBR0_EL1", out(reg) ttbr0, options(nomem, nostack, preserves_flags)) };
    // SAFETY: reading TTBR1_EL1 at EL1 has no side effect.
    unsafe { asm!("mrs {}, TTBR1_EL1", out(reg) ttbr1, options(nomem, nostack, preserves_flags)) };
    // SAFETY: reading TCR_EL1 at EL1 has no side effect.
    unsafe { asm!("mrs {}, TCR_EL1", out(reg) tcr, options(nomem, nostack, preserves_flags)) };
    PagingRegisters::Arm64(crate::kernel::Arm64Registers { ttbr0, ttbr1, tcr })
}
