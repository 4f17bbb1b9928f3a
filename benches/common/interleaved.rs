//! Interleaved timing: on these shared 2-core machines the speed changes
//! from second to second, so contenders timed one after the other can
//! compare a quiet moment with a busy one. Every round times one run of
//! each contender in turn (rotating the order), and each gets the median of
//! its rounds, after as many rounds again to warm up.

use std::hint::black_box;
use std::time::Instant;

/// One run of a contender's work; returns a sum of what it computed.
pub type Contender<'a> = Box<dyn Fn() -> u64 + 'a>;

/// Each contender's median nanoseconds per operation, `ops` operations a
/// run, in the order given.
pub fn medians(contenders: &[(&str, Contender<'_>)], rounds: usize, ops: usize) -> Vec<f64> {
    let mut order: Vec<usize> = (0..contenders.len()).collect();
    let mut times = vec![Vec::with_capacity(2 * rounds); contenders.len()];
    for round in 0..2 * rounds {
        order.rotate_left(1);
        for &i in &order {
            let start = Instant::now();
            black_box(contenders[i].1());
            #[allow(clippy::cast_precision_loss, reason = "a few thousand operations")]
            times[i].push(start.elapsed().as_secs_f64() * 1e9 / ops as f64);
        }
        black_box(round);
    }
    times
        .iter_mut()
        .map(|samples| {
            let samples = &mut samples[rounds..];
            samples.sort_by(f64::total_cmp);
            samples[samples.len() / 2]
        })
        .collect()
}
