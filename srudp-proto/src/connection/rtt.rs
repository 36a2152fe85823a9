//! Round-trip time estimation as in RFC 9002 §5.

use std::time::Duration;

/// Smoothed RTT, RTT variance, minimum and latest RTT of one path.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    latest: Duration,
    smoothed: Option<Duration>,
    var: Duration,
    min: Duration,
    initial: Duration,
}

impl RttEstimator {
    /// An estimator with no samples yet, which reports `initial` as its RTT.
    pub fn new(initial: Duration) -> Self {
        RttEstimator {
            latest: initial,
            smoothed: None,
            var: initial / 2,
            min: initial,
            initial,
        }
    }

    /// Feeds one sample: `sample` is the time from sending the largest newly
    /// acknowledged packet to receiving its ack; `ack_delay` is the delay the
    /// peer reported (already capped at its max_ack_delay by the caller).
    pub fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        match self.smoothed {
            None => {
                self.min = sample;
                self.smoothed = Some(sample);
                self.var = sample / 2;
            }
            Some(smoothed) => {
                self.min = self.min.min(sample);
                // Subtract the peer's ack delay only if the result stays above min_rtt.
                let adjusted = if sample >= self.min + ack_delay {
                    sample - ack_delay
                } else {
                    sample
                };
                let diff = smoothed.abs_diff(adjusted);
                self.var = (self.var * 3 + diff) / 4;
                self.smoothed = Some((smoothed * 7 + adjusted) / 8);
            }
        }
    }

    /// Whether at least one sample was taken.
    pub fn has_sample(&self) -> bool {
        self.smoothed.is_some()
    }

    /// Smoothed RTT (the initial RTT before any sample).
    pub fn smoothed(&self) -> Duration {
        self.smoothed.unwrap_or(self.initial)
    }

    /// RTT variance.
    pub fn var(&self) -> Duration {
        self.var
    }

    /// Minimum RTT seen.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The latest sample.
    pub fn latest(&self) -> Duration {
        self.latest
    }

    /// The probe timeout before backoff: `srtt + max(4·rttvar, granularity) + max_ack_delay`.
    pub fn pto_base(&self, granularity: Duration, max_ack_delay: Duration) -> Duration {
        self.smoothed() + (self.var * 4).max(granularity) + max_ack_delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_sample_sets_smoothed_and_half_variance() {
        let mut rtt = RttEstimator::new(ms(333));
        assert_eq!(rtt.smoothed(), ms(333));
        rtt.update(ms(100), ms(10));
        assert_eq!(rtt.smoothed(), ms(100));
        assert_eq!(rtt.var(), ms(50));
        assert_eq!(rtt.min(), ms(100));
    }

    #[test]
    fn later_samples_are_smoothed_with_ack_delay_removed() {
        let mut rtt = RttEstimator::new(ms(333));
        rtt.update(ms(100), ms(0));
        // 140 - 20 = 120 adjusted; srtt = (7*100 + 120)/8 = 102.5; var = (3*50 + 20)/4 = 42.5
        rtt.update(ms(140), ms(20));
        assert_eq!(rtt.smoothed(), Duration::from_micros(102_500));
        assert_eq!(rtt.var(), Duration::from_micros(42_500));
    }

    #[test]
    fn ack_delay_is_not_subtracted_below_min_rtt() {
        let mut rtt = RttEstimator::new(ms(333));
        rtt.update(ms(100), ms(0));
        // 105 - 20 would be below min_rtt (100): use 105.
        rtt.update(ms(105), ms(20));
        assert_eq!(rtt.smoothed(), Duration::from_micros(100_625));
    }

    #[test]
    fn the_first_sample_ignores_the_ack_delay() {
        // RFC 9002 §5.3: the first sample is taken as is (min_rtt is not known yet).
        let mut rtt = RttEstimator::new(ms(333));
        rtt.update(ms(100), ms(25));
        assert_eq!(rtt.smoothed(), ms(100));
        assert_eq!(rtt.latest(), ms(100));
    }

    #[test]
    fn min_rtt_takes_raw_samples_even_when_ack_delay_is_subtracted() {
        let mut rtt = RttEstimator::new(ms(333));
        rtt.update(ms(100), ms(0));
        // 90 ms raw with 20 ms ack delay: min_rtt becomes 90 (raw), and the
        // adjusted 70 would fall below it, so 90 is used for smoothing.
        rtt.update(ms(90), ms(20));
        assert_eq!(rtt.min(), ms(90));
        assert_eq!(rtt.smoothed(), Duration::from_micros(98_750));
        // A later 200 ms sample with 25 ms delay: 175 adjusted; min stays 90.
        rtt.update(ms(200), ms(25));
        assert_eq!(rtt.min(), ms(90));
        // (7 × 98.75 + 175) / 8 = 108.28125 ms.
        assert_eq!(rtt.smoothed(), Duration::from_nanos(108_281_250));
    }

    #[test]
    fn pto_base_adds_variance_and_ack_delay() {
        let mut rtt = RttEstimator::new(ms(333));
        rtt.update(ms(100), ms(0));
        assert_eq!(rtt.pto_base(ms(1), ms(25)), ms(100 + 200 + 25));
    }
}
