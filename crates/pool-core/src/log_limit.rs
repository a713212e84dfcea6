//! # Implementation details
//!
//! Rate limits for warnings that repeat once per event (a refused acquire, a failed connect,
//! a query timeout): under a storm the first is logged at once, then at most one a second,
//! each saying how many were left out since the one before (`suppressed_warnings`, as
//! pool-metrics reports failed exports).

use std::sync::atomic::{AtomicU64, Ordering};

/// Least time between two lines of one kind, in ms.
const GAP_MS: u64 = 1000;

/// One kind of warning's limit.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    /// When the next line may be written (ms on the pool's clock); 0 before the first.
    next_ms: AtomicU64,
    /// Lines left out since the last one written.
    suppressed: AtomicU64,
}

impl LogLimit {
    /// Whether to write a line at `now_ms`: `Some(n)` with the `n` lines left out since the
    /// last one, or `None` to leave this one out.
    pub(crate) fn admit(&self, now_ms: u64) -> Option<u64> {
        // Ordering: a counter and a time stamp for logging only; a race writes one line
        // more or fewer, never loses the pool anything.
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(next, now_ms + GAP_MS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// The pool's rate-limited warnings.
#[derive(Debug, Default)]
pub(crate) struct LogLimits {
    pub(crate) refused: LogLimit,
    pub(crate) connect_failed: LogLimit,
    pub(crate) acquire_timeout: LogLimit,
    pub(crate) query_timeout: LogLimit,
    pub(crate) observer_panic: LogLimit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_goes_out_then_one_a_second_counting_the_rest() {
        let limit = LogLimit::default();
        assert_eq!(limit.admit(5), Some(0));
        assert_eq!(limit.admit(6), None);
        assert_eq!(limit.admit(1004), None);
        assert_eq!(limit.admit(1005), Some(2), "two were left out");
        assert_eq!(limit.admit(2005), Some(0));
    }
}
