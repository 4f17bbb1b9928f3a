//! x86-64 page-table walker.
