//! The reference formulas the benchmarks compare against.

/// The Padhye–Firoiu–Towsley–Kurose (PFTK) model of TCP Reno throughput,
/// "Modeling TCP Throughput: A Simple Model and its Empirical Validation"
/// (SIGCOMM 1998), eq. 31 — the "full model" including timeouts:
///
/// ```text
///                                    1
/// B(p) = min( Wmax/RTT,  ───────────────────────────────────────────────────── )
///                        RTT·√(2bp/3) + T0·min(1, 3·√(3bp/8))·p·(1 + 32p²)
/// ```
///
/// in packets per second, times `mss` for bytes per second. `p` is the loss
/// probability, `b` the packets acknowledged per ACK, `t0` the retransmission
/// timeout in seconds; `wmax` (packets) caps the window (`None`: no cap).
/// With `p = 0` the model has no limit but `wmax`; it returns infinity when
/// there is none.
pub fn pftk_bytes_per_s(p: f64, rtt: f64, t0: f64, b: f64, mss: f64, wmax: Option<f64>) -> f64 {
    let cap = wmax.map_or(f64::INFINITY, |w| w / rtt);
    if p <= 0.0 {
        return cap * mss;
    }
    let denominator = rtt * (2.0 * b * p / 3.0).sqrt()
        + t0 * (3.0 * (3.0 * b * p / 8.0).sqrt()).min(1.0) * p * (1.0 + 32.0 * p * p);
    cap.min(1.0 / denominator) * mss
}

/// Jain's fairness index of allocations `x`: `(Σx)² / (n·Σx²)`, 1 when all
/// are equal, `1/n` when one gets everything. An empty or all-zero input is
/// perfectly fair (1).
pub fn jain_index(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    if x.is_empty() || squares == 0.0 {
        return 1.0;
    }
    sum * sum / (x.len() as f64 * squares)
}

/// The `q`-th percentile (0–100) of `values` by the nearest-rank method:
/// the smallest value with at least `q` % of the values at or below it.
/// `None` for no values.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn pftk_matches_hand_computed_values() {
        // p = 1 %, RTT 50 ms, T0 200 ms, b = 1, MSS 1024:
        // RTT·√(2·0.01/3) = 0.05 · 0.081650 = 0.0040825
        // T0·min(1, 3·√(0.00375))·p·(1 + 0.0032) = 0.2 · 0.183712 · 0.01 · 1.0032 = 0.00036860
        // 1 / 0.0044511 = 224.66 packets/s → 230 053 B/s.
        let b = pftk_bytes_per_s(0.01, 0.05, 0.2, 1.0, 1024.0, None);
        assert!(close(b, 230_053.0, 1e-4), "{b}");
        // p = 10 %: 0.05·√(0.2/3) = 0.0129099; 0.2·0.580948·0.1·1.32 = 0.0153370;
        // 1 / 0.0282469 = 35.402 packets/s → 36 252 B/s.
        let b = pftk_bytes_per_s(0.10, 0.05, 0.2, 1.0, 1024.0, None);
        assert!(close(b, 36_252.0, 1e-4), "{b}");
        // Delayed acks (b = 2) predict less.
        assert!(pftk_bytes_per_s(0.01, 0.05, 0.2, 2.0, 1024.0, None) < 230_000.0);
        // The timeout term saturates at min(1, …) for high loss.
        let hi = pftk_bytes_per_s(0.6, 0.05, 0.2, 1.0, 1.0, None);
        let expect = 1.0 / (0.05 * (0.4f64).sqrt() + 0.2 * 0.6 * (1.0 + 32.0 * 0.36));
        assert!(close(hi, expect, 1e-12));
    }

    #[test]
    fn pftk_is_capped_by_the_window() {
        let b = pftk_bytes_per_s(1e-6, 0.1, 0.2, 1.0, 1000.0, Some(10.0));
        assert_eq!(b, 10.0 / 0.1 * 1000.0);
        assert_eq!(pftk_bytes_per_s(0.0, 0.1, 0.2, 1.0, 1.0, Some(5.0)), 50.0);
        assert!(pftk_bytes_per_s(0.0, 0.1, 0.2, 1.0, 1.0, None).is_infinite());
    }

    #[test]
    fn jain_index_of_equal_and_skewed_shares() {
        assert_eq!(jain_index(&[5.0, 5.0]), 1.0);
        assert_eq!(jain_index(&[1.0, 0.0]), 0.5);
        // (3 + 1)² / (2 · (9 + 1)) = 16 / 20.
        assert!((jain_index(&[3.0, 1.0]) - 0.8).abs() < 1e-12);
        assert_eq!(jain_index(&[]), 1.0);
        assert_eq!(jain_index(&[0.0, 0.0, 0.0]), 1.0);
        assert!((jain_index(&[4.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
