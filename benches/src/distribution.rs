//! Percentiles of a set of latency samples.

use std::time::Duration;

/// Latency samples, sorted once so any percentile can be read.
#[derive(Debug, Clone, Default)]
pub struct Distribution {
    sorted_nanos: Vec<u64>,
}

impl Distribution {
    /// Sorts `nanos` (one sample per operation, in nanoseconds).
    pub fn from_nanos(mut nanos: Vec<u64>) -> Distribution {
        nanos.sort_unstable();
        Distribution {
            sorted_nanos: nanos,
        }
    }

    /// All the samples of `parts` in one distribution.
    pub fn merged(parts: impl IntoIterator<Item = Distribution>) -> Distribution {
        let nanos: Vec<u64> = parts.into_iter().flat_map(|d| d.sorted_nanos).collect();
        Distribution::from_nanos(nanos)
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.sorted_nanos.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.sorted_nanos.is_empty()
    }

    /// The sample at quantile `q` (0.0 ..= 1.0, nearest rank), zero when there are none.
    pub fn quantile(&self, q: f64) -> Duration {
        let Some(last) = self.sorted_nanos.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        // Nearest rank: the smallest sample with at least q of all samples at or below it.
        let rank = (q.clamp(0.0, 1.0) * self.sorted_nanos.len() as f64).ceil() as usize;
        Duration::from_nanos(self.sorted_nanos[rank.saturating_sub(1).min(last)])
    }

    /// The mean, zero when there are no samples.
    pub fn mean(&self) -> Duration {
        if self.sorted_nanos.is_empty() {
            return Duration::ZERO;
        }
        let sum: u128 = self.sorted_nanos.iter().map(|n| u128::from(*n)).sum();
        Duration::from_nanos((sum / self.sorted_nanos.len() as u128) as u64)
    }
}

/// The median of `values` (the lower middle for an even count); zero when empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let d = Distribution::from_nanos((1..=1000).rev().collect());
        assert_eq!(d.quantile(0.5), Duration::from_nanos(500));
        assert_eq!(d.quantile(0.99), Duration::from_nanos(990));
        assert_eq!(d.quantile(0.999), Duration::from_nanos(999));
        assert_eq!(d.quantile(1.0), Duration::from_nanos(1000));
        assert_eq!(d.quantile(0.0), Duration::from_nanos(1));
        assert_eq!(d.mean(), Duration::from_nanos(500));
    }

    #[test]
    fn merging_pools_the_samples() {
        let d = Distribution::merged([
            Distribution::from_nanos(vec![3, 1]),
            Distribution::from_nanos(vec![2, 4]),
        ]);
        assert_eq!(d.len(), 4);
        assert_eq!(d.quantile(0.5), Duration::from_nanos(2));
        assert_eq!(d.quantile(1.0), Duration::from_nanos(4));
    }

    #[test]
    fn empty_is_zero() {
        let d = Distribution::default();
        assert_eq!(d.quantile(0.99), Duration::ZERO);
        assert_eq!(d.mean(), Duration::ZERO);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn median_of_unsorted() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.0);
    }
}
