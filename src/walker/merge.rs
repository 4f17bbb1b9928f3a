//! Merging leaves into runs, for every architecture's enumeration.
//!
//! A run grows while the next leaf continues it virtually and physically
//! with the same attributes; a failed read ends the pending run first.

use super::address::{PhysAddr, VirtAddr};

/// A run of leaves that knows which leaves continue it.
pub trait Run: Sized {
    /// What the enumeration yields.
    type Leaf;

    /// A run of one leaf.
    fn of(leaf: &Self::Leaf) -> Self;

    /// Its first virtual and physical addresses and its length in bytes.
    fn extent(&self) -> (VirtAddr, PhysAddr, u64);

    /// Whether `other` has the attributes every leaf of this run shares.
    fn same_attributes(&self, other: &Self) -> bool;

    /// Adds `bytes` at its end.
    fn grow(&mut self, bytes: u64);

    /// Extends this run by `next` if it continues it.
    fn absorb(&mut self, next: &Self) -> bool {
        let ((va, pa, bytes), (next_va, next_pa, next_bytes)) = (self.extent(), next.extent());
        let continues = va.0.wrapping_add(bytes) == next_va.0
            && pa.0.wrapping_add(bytes) == next_pa.0
            && self.same_attributes(next);
        if continues {
            self.grow(next_bytes);
        }
        continues
    }
}

/// The runs of an iterator over leaves.
pub(crate) struct Merge<I, R, E> {
    leaves: I,
    pending: Option<R>,
    /// A failure to report after the run that preceded it.
    held: Option<E>,
}

impl<I, R, E> Merge<I, R, E> {
    pub(crate) const fn new(leaves: I) -> Self {
        Self {
            leaves,
            pending: None,
            held: None,
        }
    }
}

impl<I, R, E> Iterator for Merge<I, R, E>
where
    I: Iterator<Item = Result<R::Leaf, E>>,
    R: Run,
{
    type Item = Result<R, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(fault) = self.held.take() {
            return Some(Err(fault));
        }
        loop {
            match self.leaves.next() {
                None => return self.pending.take().map(Ok),
                Some(Err(fault)) => match self.pending.take() {
                    Some(run) => {
                        self.held = Some(fault);
                        return Some(Ok(run));
                    }
                    None => return Some(Err(fault)),
                },
                Some(Ok(leaf)) => {
                    let run = R::of(&leaf);
                    if self
                        .pending
                        .as_mut()
                        .is_some_and(|pending| pending.absorb(&run))
                    {
                        continue;
                    }
                    if let Some(done) = self.pending.replace(run) {
                        return Some(Ok(done));
                    }
                }
            }
        }
    }

    /// [`Self::next`]'s runs, in a fold of the leaves: the enumeration's
    /// faster internal iteration.
    fn fold<B, F>(self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        if let Some(fault) = self.held {
            acc = f(acc, Err(fault));
        }
        let (acc, pending) =
            self.leaves
                .fold((acc, self.pending), |(acc, pending), leaf| match leaf {
                    Err(fault) => {
                        let acc = match pending {
                            Some(run) => f(acc, Ok(run)),
                            None => acc,
                        };
                        (f(acc, Err(fault)), None)
                    }
                    Ok(leaf) => {
                        let run = R::of(&leaf);
                        match pending {
                            Some(mut pending) => {
                                if pending.absorb(&run) {
                                    (acc, Some(pending))
                                } else {
                                    (f(acc, Ok(pending)), Some(run))
                                }
                            }
                            None => (acc, Some(run)),
                        }
                    }
                });
        match pending {
            Some(run) => f(acc, Ok(run)),
            None => acc,
        }
    }
}
