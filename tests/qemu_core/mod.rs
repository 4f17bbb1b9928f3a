//! Writes ELF cores as QEMU's `dump-guest-memory` writes them for an x86-64
//! guest: an ELF64 header (`ET_CORE`, `EM_X86_64`), a `PT_NOTE` segment
//! first, then one `PT_LOAD` per run of physical memory (`p_paddr`).
//! Written from the published layouts, not from ptwalk's reader:
//!
//! - ELF notes (System V gABI, "Note Section"): `n_namesz`, `n_descsz`,
//!   `n_type` (u32 each), the name with its NUL, then the descriptor, each
//!   padded to 4 bytes, as QEMU pads them (`ELF_NOTE_SIZE`); QEMU leaves the
//!   `PT_NOTE`'s `p_align` 0 (`dump/dump.c`, `write_elf64_note`).
//! - The notes' order (`dump/dump.c`, `write_elf64_notes`): first one `CORE`
//!   `NT_PRSTATUS` note per vCPU in CPU order (`pr_pid` = CPU index + 1),
//!   then one `QEMU` note (`n_type` 0) per vCPU, in the same order.
//! - `NT_PRSTATUS` for x86-64 (`target/i386/arch_dump.c`, `x86_64_elf_prstatus`,
//!   0x150 bytes): `pr_pid` at 0x20, `pr_reg` from 0x70 in Linux's
//!   `user_regs_struct` order (`rip` at 0xf0, `cs` at 0xf8).
//! - `QEMUCPUState` (`target/i386/arch_dump.c`; `QEMUCPUSTATE_VERSION` 1):
//!   `version` and `size` (u32), 18 u64 registers (`rax`..`r15`, `rip`,
//!   `rflags`) from 0x08, ten 24-byte `QEMUCPUSegment`s `{selector, limit,
//!   flags, pad: u32; base: u64}` from 0x98 (`cs` first), `cr[5]` from 0x188
//!   (CR3 at 0x1a0, CR4 at 0x1a8), `kernel_gs_base` at 0x1b0; size 0x1b8.
#![allow(dead_code, reason = "each test file uses what it needs")]

pub const EM_X86_64: u16 = 62;
pub const QEMU_CPU_STATE_SIZE: usize = 0x1b8;

/// CR0 of a CPU with paging on (PG, WP, NE, ET, MP, PE), as Linux runs.
pub const CR0_PAGING: u64 = 0x8005_0033;
/// CR4 bits: PAE (5) and LA57 (12).
pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_LA57: u64 = 1 << 12;
/// Linux's kernel and user code selectors (`__KERNEL_CS`, `__USER_CS`): RPL 0 and 3.
pub const KERNEL_CS: u32 = 0x10;
pub const USER_CS: u32 = 0x33;

/// What a vCPU's notes hold, of interest here.
#[derive(Clone, Copy)]
pub struct Vcpu {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cs: u32,
    pub rip: u64,
}

impl Vcpu {
    /// A vCPU running the kernel (CPL 0) on the tables at `cr3`.
    pub const fn kernel(cr3: u64, cr4: u64) -> Self {
        Self {
            cr0: CR0_PAGING,
            cr3,
            cr4,
            cs: KERNEL_CS,
            rip: 0xffff_ffff_8100_0000,
        }
    }

    /// A vCPU running a user process (CPL 3) on the tables at `cr3`.
    pub const fn user(cr3: u64, cr4: u64) -> Self {
        Self {
            cs: USER_CS,
            rip: 0x40_1000,
            ..Self::kernel(cr3, cr4)
        }
    }
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// `vcpu`'s `QEMUCPUState`, version 1, 0x1b8 bytes.
pub fn qemu_cpu_state(vcpu: &Vcpu) -> Vec<u8> {
    let mut state = vec![0_u8; QEMU_CPU_STATE_SIZE];
    put_u32(&mut state, 0, 1); // version
    put_u32(&mut state, 4, u32::try_from(QEMU_CPU_STATE_SIZE).unwrap()); // size
    put_u64(&mut state, 0x88, vcpu.rip);
    put_u64(&mut state, 0x90, 0x246); // rflags
    // cs, ds, es, fs, gs, ss: selector, limit, flags, pad, base.
    let ss = if vcpu.cs & 3 == 3 { 0x2b } else { 0x18 };
    for (i, selector) in [vcpu.cs, 0, 0, 0, 0, ss].into_iter().enumerate() {
        put_u32(&mut state, 0x98 + 24 * i, selector);
        put_u32(&mut state, 0x98 + 24 * i + 4, 0xffff_ffff);
    }
    for (i, cr) in [vcpu.cr0, 0, 0, vcpu.cr3, vcpu.cr4].into_iter().enumerate() {
        put_u64(&mut state, 0x188 + 8 * i, cr);
    }
    state
}

/// `vcpu`'s `NT_PRSTATUS` descriptor (CPU `index`).
fn prstatus(index: usize, vcpu: &Vcpu) -> Vec<u8> {
    let mut status = vec![0_u8; 0x150];
    put_u32(&mut status, 0x20, u32::try_from(index + 1).unwrap()); // pr_pid
    put_u64(&mut status, 0x70 + 16 * 8, vcpu.rip);
    put_u64(&mut status, 0x70 + 17 * 8, u64::from(vcpu.cs));
    status
}

/// One note: header, NUL-terminated name and descriptor, each padded to 4.
pub fn note(name: &str, n_type: u32, desc: &[u8]) -> Vec<u8> {
    let mut note = Vec::new();
    note.extend_from_slice(&u32::try_from(name.len() + 1).unwrap().to_le_bytes());
    note.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_le_bytes());
    note.extend_from_slice(&n_type.to_le_bytes());
    note.extend_from_slice(name.as_bytes());
    note.push(0);
    note.resize(note.len().next_multiple_of(4), 0);
    note.extend_from_slice(desc);
    note.resize(note.len().next_multiple_of(4), 0);
    note
}

/// The notes QEMU writes for `vcpus`: every `CORE` note, then every `QEMU` note.
pub fn notes(vcpus: &[Vcpu]) -> Vec<u8> {
    notes_with(vcpus, qemu_cpu_state)
}

/// [`notes`], each `QEMU` descriptor made by `state`.
pub fn notes_with(vcpus: &[Vcpu], state: impl Fn(&Vcpu) -> Vec<u8>) -> Vec<u8> {
    let mut notes = Vec::new();
    for (i, vcpu) in vcpus.iter().enumerate() {
        notes.extend(note("CORE", 1, &prstatus(i, vcpu))); // NT_PRSTATUS
    }
    for vcpu in vcpus {
        notes.extend(note("QEMU", 0, &state(vcpu)));
    }
    notes
}

/// An x86-64 core of `vcpus` holding `memory` (runs of physical memory:
/// address and bytes).
pub fn core(vcpus: &[Vcpu], memory: &[(u64, Vec<u8>)]) -> Vec<u8> {
    core_of(EM_X86_64, &notes(vcpus), memory)
}

/// An ELF64 core of `machine` with the notes `notes` and `memory`.
pub fn core_of(machine: u16, notes: &[u8], memory: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let (ehdr, phdr) = (64_usize, 56_usize);
    let phnum = 1 + memory.len();
    let notes_at = ehdr + phnum * phdr;
    let mut elf = vec![0_u8; notes_at];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // ELFCLASS64
    elf[5] = 1; // ELFDATA2LSB
    elf[6] = 1; // EV_CURRENT
    elf[16..18].copy_from_slice(&4_u16.to_le_bytes()); // ET_CORE
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    put_u32(&mut elf, 20, 1); // e_version
    put_u64(&mut elf, 32, ehdr as u64); // e_phoff
    elf[52..54].copy_from_slice(&64_u16.to_le_bytes()); // e_ehsize
    elf[54..56].copy_from_slice(&56_u16.to_le_bytes()); // e_phentsize
    elf[56..58].copy_from_slice(&u16::try_from(phnum).unwrap().to_le_bytes());
    // PT_NOTE: offset, file and memory size; p_align 0, as QEMU leaves it.
    let p = ehdr;
    put_u32(&mut elf, p, 4);
    put_u64(&mut elf, p + 8, notes_at as u64);
    put_u64(&mut elf, p + 32, notes.len() as u64);
    put_u64(&mut elf, p + 40, notes.len() as u64);
    elf.extend_from_slice(notes);
    for (i, (paddr, bytes)) in memory.iter().enumerate() {
        let p = ehdr + (i + 1) * phdr;
        let offset = elf.len() as u64;
        put_u32(&mut elf, p, 1); // PT_LOAD
        put_u32(&mut elf, p + 4, 7); // PF_R | PF_W | PF_X
        put_u64(&mut elf, p + 8, offset);
        put_u64(&mut elf, p + 24, *paddr); // p_paddr
        put_u64(&mut elf, p + 32, bytes.len() as u64); // p_filesz
        put_u64(&mut elf, p + 40, bytes.len() as u64); // p_memsz
        elf.extend_from_slice(bytes);
    }
    elf
}
