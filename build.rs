//! Build script. With the `wdk` feature on a Windows host, wdk-build configures
//! the driver build from the WDK. Otherwise, for an MSVC target, it passes the
//! linker what a kernel driver image needs (the standalone build).

#[cfg(all(windows, feature = "wdk"))]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()
}

/// `lld-link`/`link.exe` arguments for a WDM driver: native subsystem, entry
/// `DriverEntry`, no CRT, and the flags HVCI and the loader expect (ASLR, NX,
/// signature check, a valid checksum from `/RELEASE`).
#[cfg(not(all(windows, feature = "wdk")))]
const DRIVER_LINK_ARGS: [&str; 9] = [
    "/DRIVER:WDM",
    "/SUBSYSTEM:NATIVE,10.00",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/INTEGRITYCHECK",
    "/RELEASE",
    "/DYNAMICBASE",
    "/NXCOMPAT",
    "/MERGE:.edata=.rdata",
];

#[cfg(not(all(windows, feature = "wdk")))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = |key| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "windows" && target("CARGO_CFG_TARGET_ENV") == "msvc" {
        for arg in DRIVER_LINK_ARGS {
            println!("cargo::rustc-cdylib-link-arg={arg}");
        }
    }
}
