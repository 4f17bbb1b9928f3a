//! Addresses named by the user (issue 11) against the fake kernel: read from
//! `Parameters`, kernel ones walked where the driver runs, user ones in the
//! named process's address space; bad input logged, never fatal, no leaks.
#![cfg(target_os = "linux")]

mod driver_fake;

use driver_fake::{FakeKernel, Fault};
use vmwalk::ffi::{DPFLTR_ERROR_LEVEL, DRIVER_OBJECT, REG_DWORD, REG_MULTI_SZ};
use vmwalk::kernel::{NamedAddresses, ProcessChoice, read_parameters, walk_named};
use vmwalk::walker::Level;

/// A multiple of 4, as Windows process ids are.
const PROCESS: u32 = 4244;
/// A user address, mapped only in the process.
const USER: u64 = 0x0000_7ff6_c000_1000;
/// A kernel address the fake world maps (in every address space).
const KERNEL: u64 = 0xffff_f806_1234_5000;

/// A `REG_MULTI_SZ` of `strings`, as regedit writes it.
fn multi_sz(strings: &[&str]) -> Vec<u8> {
    let mut units: Vec<u16> = Vec::new();
    for string in strings {
        units.extend(string.encode_utf16());
        units.push(0);
    }
    units.push(0);
    units.iter().flat_map(|unit| unit.to_le_bytes()).collect()
}

/// Reads the parameters as `DriverEntry` does, walks them; the lines.
fn run(kernel: &FakeKernel) -> (NamedAddresses, Vec<String>, Vec<String>) {
    let mut buffer = Vec::new();
    let path = FakeKernel::registry_path(&mut buffer);
    let mut driver = std::mem::MaybeUninit::<DRIVER_OBJECT>::zeroed();
    // SAFETY: a registry path and a driver object as DriverEntry receives them.
    let named = unsafe { read_parameters(kernel, &raw const path, driver.as_mut_ptr()) }.named;
    walk_named(kernel, &named);
    kernel.assert_nothing_leaked();
    (named, kernel.lines(), kernel.lines_at(DPFLTR_ERROR_LEVEL))
}

/// Maps `KERNEL` here and `USER` in the process `PROCESS`, and names
/// `USER + 0x234` and `KERNEL + 8` with that process; the process's
/// top-level table and the user page's frame.
fn name_a_user_and_a_kernel_address(kernel: &FakeKernel) -> (u64, u64) {
    kernel.map_page(KERNEL);
    let process_root = kernel.add_process(PROCESS);
    let frame = kernel.map_in_process(PROCESS, USER);
    kernel.set_parameter(
        "Addresses",
        REG_MULTI_SZ,
        &multi_sz(&["0x7ff6`c0001234", "fffff806_12345008"]),
    );
    kernel.set_parameter("ProcessId", REG_DWORD, &PROCESS.to_le_bytes());
    (process_root, frame)
}

fn has(lines: &[String], wanted: &str) -> bool {
    lines.iter().any(|line| line == wanted)
}

#[test]
fn a_user_address_is_walked_in_the_named_process_and_a_kernel_one_here() {
    let kernel = FakeKernel::new();
    let (process_root, frame) = name_a_user_and_a_kernel_address(&kernel);
    let (named, lines, errors) = run(&kernel);
    assert_eq!(named.addresses(), [USER + 0x234, KERNEL + 8]);
    assert_eq!(named.process(), Some(ProcessChoice::Id(PROCESS)));
    assert!(errors.is_empty(), "{errors:#?}");
    // The user address: attached, the process's CR3 (its own table), the frame mapped there.
    assert!(
        has(
            &lines,
            &format!(
                "vmwalk: walk of address {:#x} (user space):\n",
                USER + 0x234
            )
        ),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("vmwalk: paging: CR3 {:#x} ", process_root | 5))),
        "the walk inside the process reads its CR3: {lines:#?}"
    );
    let result = format!(
        "vmwalk: address {:#x} -> physical {:#x} ",
        USER + 0x234,
        frame + 0x234
    );
    assert!(lines.iter().any(|l| l.starts_with(&result)), "{lines:#?}");
    assert!(has(
        &lines,
        &format!("vmwalk: detached from process {PROCESS}\n")
    ));
    // The kernel address, before attaching, with the driver's own CR3.
    let at = lines
        .iter()
        .position(|l| l.starts_with("vmwalk: attached to process"))
        .unwrap();
    let kernel_walk = lines
        .iter()
        .position(|l| l.starts_with(&format!("vmwalk: walk of address {:#x}", KERNEL + 8)))
        .unwrap();
    assert!(kernel_walk < at, "{lines:#?}");
    let order: Vec<_> = kernel
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("Ps") || c.starts_with("Ke") || c.starts_with("Ob"))
        .collect();
    assert_eq!(
        order,
        [
            "PsLookupProcessByProcessId",
            "KeStackAttachProcess",
            "KeUnstackDetachProcess",
            "ObfDereferenceObject"
        ]
    );
}

#[test]
fn a_software_pte_in_the_process_is_explained() {
    let kernel = FakeKernel::new();
    kernel.add_process(PROCESS);
    kernel.map_in_process(PROCESS, USER);
    // A Windows transition PTE (frame 0x1234, ReadWrite), swizzled as 1803+ does.
    let mask = 1_u64 << 45;
    kernel.set_process_entry(PROCESS, USER, Level::Pt, |_| {
        mask | 0x1234 << 12 | 1 << 11 | 4 << 5
    });
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    kernel.set_parameter("ProcessId", REG_DWORD, &PROCESS.to_le_bytes());
    let (_, lines, errors) = run(&kernel);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" not valid: Transition: 1234, Protect: 4 - ReadWrite")),
        "{lines:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.starts_with("vmwalk: walk of address 0x7ff6c0001000 failed: PTE ")),
        "{errors:#?}"
    );
}

#[test]
fn bad_entries_are_logged_and_skipped() {
    let kernel = FakeKernel::new();
    kernel.map_page(KERNEL);
    let mut strings: Vec<String> = vec![
        "fffff80612345000".into(),
        "not-an-address".into(),
        "0x1_0000_0000_0000_0000".into(),
    ];
    strings.extend((0..20).map(|i| format!("fffff806123450{i:02x}")));
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&refs));
    let (named, _, errors) = run(&kernel);
    assert_eq!(named.addresses().len(), 16, "at most 16");
    assert!(
        has(
            &errors,
            "vmwalk: Addresses entry 2 ('not-an-address') is not a 64-bit hex address; skipped\n"
        ),
        "{errors:#?}"
    );
    assert!(
        has(
            &errors,
            "vmwalk: Addresses entry 3 ('0x1_0000_0000_0000_0000') is not a 64-bit hex address; skipped\n"
        ),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|l| l
            .starts_with("vmwalk: Addresses entry 19 (0xfffff8061234500f) is beyond the first 16")),
        "{errors:#?}"
    );
}

#[test]
fn an_empty_string_ends_the_list_as_in_windows() {
    let kernel = FakeKernel::new();
    kernel.map_page(KERNEL);
    kernel.set_parameter(
        "Addresses",
        REG_MULTI_SZ,
        &multi_sz(&["fffff80612345000", "", "zz"]),
    );
    let (named, _, errors) = run(&kernel);
    assert_eq!(named.addresses(), [KERNEL]);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_user_address_without_a_process_or_with_a_missing_one_is_an_error_line() {
    let kernel = FakeKernel::new();
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    let (_, _, errors) = run(&kernel);
    assert_eq!(
        errors,
        [
            "vmwalk: user address 0x7ff6c0001000 needs a process: set ProcessId or ProcessName under Parameters; not walked\n"
        ]
    );

    let kernel = FakeKernel::new();
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    kernel.set_parameter("ProcessId", REG_DWORD, &99_u32.to_le_bytes());
    let (_, _, errors) = run(&kernel);
    assert_eq!(
        errors,
        [
            "vmwalk: PsLookupProcessByProcessId(99) failed with NTSTATUS 0xc000000d: no such process (or it exited); its addresses are not walked\n"
        ]
    );

    let kernel = FakeKernel::with_fault(Fault::PsLookupProcessByProcessId);
    kernel.add_process(PROCESS);
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    kernel.set_parameter("ProcessId", REG_DWORD, &PROCESS.to_le_bytes());
    let (_, _, errors) = run(&kernel);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(&format!(
        "vmwalk: PsLookupProcessByProcessId({PROCESS}) failed"
    )));
}

#[test]
fn wrong_value_types_are_logged_and_ignored() {
    let kernel = FakeKernel::new();
    kernel.set_string_parameter("Addresses", "fffff80612345000");
    kernel.set_string_parameter("ProcessId", "4242");
    let (named, _, errors) = run(&kernel);
    assert_eq!(named, NamedAddresses::none());
    assert_eq!(
        errors,
        [
            "vmwalk: Addresses has type 1, not REG_MULTI_SZ (7); ignored\n",
            "vmwalk: ProcessId has type 1, not REG_DWORD (4); ignored\n",
        ]
    );
    let kernel = FakeKernel::new();
    kernel.set_parameter("ProcessId", REG_DWORD, &[1, 2]);
    let (_, _, errors) = run(&kernel);
    assert_eq!(
        errors,
        ["vmwalk: ProcessId holds 2 bytes, not the 4 of a REG_DWORD; ignored\n"]
    );
}

#[test]
fn nothing_named_walks_nothing() {
    let kernel = FakeKernel::new();
    let (named, lines, errors) = run(&kernel);
    assert_eq!(named, NamedAddresses::none());
    assert!(errors.is_empty());
    assert!(
        !lines.iter().any(|l| l.contains("walk of address")),
        "{lines:#?}"
    );
}

#[test]
fn a_process_named_by_its_image_file_is_found_without_case() {
    let kernel = FakeKernel::new();
    kernel.add_process(4);
    kernel.add_process(PROCESS);
    kernel.set_process_image(
        PROCESS,
        r"\Device\HarddiskVolume3\Windows\System32\notepad.exe",
    );
    let frame = kernel.map_in_process(PROCESS, USER);
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001008"]));
    kernel.set_string_parameter("ProcessName", "Notepad.EXE");
    let (_, lines, errors) = run(&kernel);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        has(
            &lines,
            &format!("vmwalk: Notepad.EXE is process {PROCESS}\n")
        ),
        "{lines:#?}"
    );
    let result = format!(
        "vmwalk: address 0x7ff6c0001008 -> physical {:#x} ",
        frame + 8
    );
    assert!(lines.iter().any(|l| l.starts_with(&result)), "{lines:#?}");
}

#[test]
fn a_process_name_that_matches_none_or_several_is_an_error_line() {
    let kernel = FakeKernel::new();
    kernel.add_process(8);
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    kernel.set_string_parameter("ProcessName", "notepad.exe");
    let (_, _, errors) = run(&kernel);
    assert_eq!(
        errors,
        [
            "vmwalk: no running process is named notepad.exe (among ids below 0x40000); its addresses are not walked\n"
        ]
    );

    let kernel = FakeKernel::new();
    for id in [8, 12, 16] {
        kernel.add_process(id);
        kernel.set_process_image(id, r"\Device\HarddiskVolume3\Windows\notepad.exe");
    }
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    kernel.set_string_parameter("ProcessName", "notepad.exe");
    let (_, _, errors) = run(&kernel);
    assert_eq!(
        errors,
        ["vmwalk: 3 processes are named notepad.exe (8, 12, ...): set ProcessId to choose one\n"]
    );
}

#[test]
fn a_failing_image_name_lookup_finds_no_process_and_leaks_nothing() {
    let kernel = FakeKernel::with_fault(Fault::SeLocateProcessImageName);
    kernel.add_process(PROCESS);
    kernel.set_process_image(PROCESS, r"\Device\HarddiskVolume3\Windows\notepad.exe");
    kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001000"]));
    kernel.set_string_parameter("ProcessName", "notepad.exe");
    let (_, _, errors) = run(&kernel);
    assert_eq!(
        errors,
        [
            "vmwalk: no running process is named notepad.exe (among ids below 0x40000); its addresses are not walked\n"
        ]
    );
    assert!(kernel.calls().contains(&"SeLocateProcessImageName"));
}

/// ARM64: the process's own top-level page (its TTBRs, both halves), the
/// self-map naming the process's descriptors, the frame mapped there.
#[test]
fn arm64_a_user_address_is_walked_through_the_process_ttbr0() {
    let kernel = FakeKernel::with_world(driver_fake::world::World::arm64(Some(0x151)));
    let (process_root, frame) = name_a_user_and_a_kernel_address(&kernel);
    let (_, lines, errors) = run(&kernel);
    assert!(errors.is_empty(), "{errors:#?}");
    let asid = 0x2a_u64 << 48;
    let registers = format!(
        "vmwalk: paging: TTBR0_EL1 {:#x} TTBR1_EL1 {:#x} ",
        process_root | asid,
        (process_root + 0x800) | asid
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&registers)),
        "the walk inside the process reads its TTBRs: {lines:#?}"
    );
    assert!(
        has(
            &lines,
            &format!("vmwalk:   through TTBR0_EL1, table at phys {process_root:#x}\n")
        ),
        "{lines:#?}"
    );
    let result = format!(
        "vmwalk: address {:#x} -> physical {:#x} ",
        USER + 0x234,
        frame + 0x234
    );
    assert!(lines.iter().any(|l| l.starts_with(&result)), "{lines:#?}");
    // The kernel address translates with the driver's own TTBR1 and self-map.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("vmwalk: address {:#x} -> physical ", KERNEL + 8))),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("vmwalk: self-map: TTBR1_EL1's level 0 entry 0x151 (337)"))
            .count(),
        2,
        "the self-map of each address space: {lines:#?}"
    );
}

/// A `ProcessName` of 65 characters (one more than the driver holds) is
/// refused with its error line, never cut to the 64 that would name
/// another process: here one whose image file is those first 64.
#[test]
fn an_over_long_process_name_is_refused_not_truncated() {
    let sixty_four = "a".repeat(64);
    let run_named = |name: &str| {
        let kernel = FakeKernel::new();
        kernel.add_process(4);
        kernel.add_process(PROCESS);
        kernel.set_process_image(PROCESS, &format!(r"\Device\HarddiskVolume3\{sixty_four}"));
        kernel.map_in_process(PROCESS, USER);
        kernel.set_parameter("Addresses", REG_MULTI_SZ, &multi_sz(&["7ff6c0001008"]));
        kernel.set_string_parameter("ProcessName", name);
        let (_, lines, errors) = run(&kernel);
        (lines, errors)
    };
    let (lines, errors) = run_named(&format!("{sixty_four}b"));
    assert!(
        has(
            &errors,
            "vmwalk: ProcessName is empty or longer than 64 characters; ignored\n"
        ),
        "{errors:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("is process")),
        "{lines:#?}"
    );
    // The same name at 64 characters is found.
    let (lines, _) = run_named(&sixty_four);
    assert!(
        has(
            &lines,
            &format!("vmwalk: {sixty_four} is process {PROCESS}\n")
        ),
        "{lines:#?}"
    );
}
