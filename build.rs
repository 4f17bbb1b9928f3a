//! Build script: the WDK build defers to wdk-build; placeholder.
fn main() {}
