//! BBR's bandwidth model: the largest delivery rate seen over the current
//! and the previous bandwidth-probing cycle (draft-ietf-ccwg-bbr §5.5.2,
//! as BBRv3 keeps it). A probe that finds more bandwidth raises it at once;
//! a bandwidth loss is forgotten two cycles later.

/// A windowed maximum over two cycles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct MaxBwFilter {
    /// Bytes per second: the previous cycle's maximum, then the current one's.
    cycles: [f64; 2],
}

impl MaxBwFilter {
    /// The model's bandwidth, bytes per second (0 before any sample).
    pub(super) fn get(&self) -> f64 {
        self.cycles[0].max(self.cycles[1])
    }

    /// A delivery-rate sample of the current cycle.
    pub(super) fn update(&mut self, bytes_per_second: f64) {
        self.cycles[1] = self.cycles[1].max(bytes_per_second);
    }

    /// A new cycle begins: the older one is forgotten.
    pub(super) fn advance(&mut self) {
        self.cycles = [self.cycles[1], 0.0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_of_two_cycles_survives_one_advance_not_two() {
        let mut f = MaxBwFilter::default();
        assert_eq!(f.get(), 0.0);
        f.update(100.0);
        f.update(80.0);
        assert_eq!(f.get(), 100.0);
        f.advance();
        f.update(60.0);
        assert_eq!(f.get(), 100.0, "the previous cycle still counts");
        f.advance();
        assert_eq!(f.get(), 60.0, "two cycles later it is forgotten");
        f.update(70.0);
        assert_eq!(f.get(), 70.0);
    }
}
