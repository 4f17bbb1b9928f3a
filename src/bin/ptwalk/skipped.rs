//! What `dump` says about entries it could not follow: the first few on
//! stderr, the rest counted, so that one bad entry hides neither the
//! mappings around it nor the others like it.

/// `dump` lists this many skipped entries, then counts the rest.
const SHOWN: usize = 10;

/// Entries `dump` passed over because the CPU would fault on them.
#[derive(Default)]
pub struct Skipped {
    count: usize,
}

impl Skipped {
    /// Notes one; the first [`SHOWN`] are printed as they come.
    pub fn note(&mut self, fault: &impl std::fmt::Display) {
        self.count += 1;
        if self.count <= SHOWN {
            eprintln!("ptwalk: skipped: {fault}");
        }
    }

    /// Counts those not printed.
    pub fn finish(&self) {
        if self.count > SHOWN {
            eprintln!(
                "ptwalk: skipped {} more entries like these",
                self.count - SHOWN
            );
        }
    }
}
