//! ptwalk: walk x86-64 page tables in a memory image.
fn main() {}
