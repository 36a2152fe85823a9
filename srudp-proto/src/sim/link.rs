//! Links: their configuration ([`LinkConfig`], [`LossModel`]) and the
//! impairments applied to each packet crossing one direction of a link.
//!
//! Every host and every NAT has exactly one link (a host's access or LAN link,
//! a NAT's uplink). A link has two directions with the same configuration but
//! independent state: each has its own transmit queue, loss-model state and
//! random stream.
//!
//! What a link does to each packet is described on [`LinkConfig`].

use std::time::Duration;

use super::rng::clamp_probability;

/// How much later the second copy of a duplicated packet arrives than the first.
pub const DUPLICATE_DELAY: Duration = Duration::from_micros(100);

/// How packets are lost on one direction of a link.
///
/// Probabilities are clamped to `[0, 1]` when used; NaN counts as `0`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LossModel {
    /// No random loss.
    #[default]
    None,
    /// Every packet is lost independently with this probability.
    Bernoulli(f64),
    /// Bursty loss: a two-state Markov chain (Gilbert–Elliott).
    ///
    /// For each packet the chain first moves (good → bad with probability
    /// `p_good_to_bad`, bad → good with `p_bad_to_good`), then the packet is
    /// lost with the loss probability of the state it is in. Each link
    /// direction starts in the good state.
    GilbertElliott {
        /// Probability of moving from the good to the bad state, per packet.
        p_good_to_bad: f64,
        /// Probability of moving from the bad to the good state, per packet.
        p_bad_to_good: f64,
        /// Loss probability while in the good state.
        loss_in_good: f64,
        /// Loss probability while in the bad state.
        loss_in_bad: f64,
    },
}

impl LossModel {
    /// The simple Gilbert model: nothing is lost in the good state, everything
    /// in the bad state. Mean burst length is `1 / p_bad_to_good` packets.
    pub fn bursty(p_good_to_bad: f64, p_bad_to_good: f64) -> Self {
        LossModel::GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    }

    /// The long-run fraction of packets lost (after clamping probabilities).
    ///
    /// For a Gilbert–Elliott chain that never leaves its start state
    /// (`p_good_to_bad == 0`), this is `loss_in_good`.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::None => 0.0,
            LossModel::Bernoulli(p) => clamp_probability(p),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                let to_bad = clamp_probability(p_good_to_bad);
                let to_good = clamp_probability(p_bad_to_good);
                let good = clamp_probability(loss_in_good);
                let bad = clamp_probability(loss_in_bad);
                if to_bad == 0.0 {
                    good
                } else {
                    let in_bad = to_bad / (to_bad + to_good);
                    in_bad * bad + (1.0 - in_bad) * good
                }
            }
        }
    }
}

/// The configuration of a link; applies to both directions.
///
/// `LinkConfig::default()` is a perfect link: no delay, unlimited rate, no
/// impairments, up. Build others with the presets ([`ideal`](Self::ideal),
/// [`lan`](Self::lan), [`broadband`](Self::broadband),
/// [`mobile`](Self::mobile)) and the `with_*` setters, or by setting the
/// public fields directly.
///
/// Out-of-range values never panic: probabilities are clamped to `[0, 1]`
/// (NaN counts as 0), `bandwidth_bps: Some(0)` behaves like a link that is
/// down, and a delay so large that the arrival time cannot be represented
/// by [`Instant`](std::time::Instant) counts as a loss.
///
/// Packet sizes (for bandwidth, queue and MTU) are payload sizes: UDP/IP
/// header overhead is not modelled.
///
/// A packet entering a link direction goes through these steps, in order:
///
/// 1. link down ([`LinkConfig::up`] is `false`, or the bandwidth is zero):
///    dropped;
/// 2. payload larger than [`LinkConfig::mtu`]: dropped;
/// 3. transmit queue: waits for the packets ahead of it to be serialised, then
///    is serialised itself (`size * 8 / bandwidth_bps`); dropped if the bytes
///    waiting would exceed [`LinkConfig::queue_bytes`] (tail drop);
/// 4. loss (after the queue: a lost packet still used the bandwidth);
/// 5. corruption (one random bit flipped);
/// 6. propagation: [`LinkConfig::latency`], plus the in-order jitter (uniform
///    in `[0, in_order_jitter)`, then raised as far as needed not to arrive
///    before the previous packet's latency plus in-order jitter), plus uniform
///    `[0, jitter)`, plus [`LinkConfig::reorder_delay`] for packets picked for
///    reordering;
/// 7. duplication: a second copy arrives [`DUPLICATE_DELAY`] after the first.
///
/// Random draws are only made for impairments whose probability lies strictly
/// between 0 and 1, always in the order above.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter)`, drawn per packet. Packets may
    /// overtake each other as a result.
    pub jitter: Duration,
    /// Extra delay that never reorders: uniform in `[0, in_order_jitter)`,
    /// drawn per packet, then raised (if needed) so the packet does not
    /// arrive before the packet that entered this direction before it — like
    /// a FIFO stage that holds each packet for a random time but releases
    /// them in order. The added delay is always below `in_order_jitter`
    /// (as long as the latency is not lowered in between).
    ///
    /// It models the small, ever-present timing noise of real paths (host
    /// scheduling, interrupt coalescing, cross traffic on uncongested hops).
    /// In a simulation with perfectly periodic senders and drop-tail queues
    /// a little of it breaks *traffic phase effects* (Floyd & Jacobson,
    /// "On traffic phase effects in packet-switched gateways", 1992): without
    /// it, which flow loses a packet at each overflow is decided by the exact
    /// phase at which their packets reach the queue rather than by their
    /// share of it. Reordering is a separate impairment
    /// ([`reorder`](Self::reorder), [`jitter`](Self::jitter)).
    pub in_order_jitter: Duration,
    /// Transmit rate in bits per second; `None` means unlimited (no
    /// serialisation delay, no queue).
    pub bandwidth_bps: Option<u64>,
    /// Bound on the bytes waiting in the transmit queue (not counting the
    /// packet being serialised); a packet that would exceed it is dropped.
    /// `None` means unbounded. Ignored without a bandwidth limit.
    pub queue_bytes: Option<usize>,
    /// Random loss.
    pub loss: LossModel,
    /// Probability that a packet is delivered twice; the second copy arrives
    /// [`DUPLICATE_DELAY`] after the first.
    pub duplicate: f64,
    /// Probability that a packet is held back by an extra
    /// [`reorder_delay`](Self::reorder_delay), letting later packets overtake.
    pub reorder: f64,
    /// Extra delay of packets picked by [`reorder`](Self::reorder).
    pub reorder_delay: Duration,
    /// Probability that one uniformly chosen bit of the payload is flipped
    /// (empty payloads are never corrupted).
    pub corrupt: f64,
    /// Largest payload, in bytes, the link carries; larger ones are dropped.
    pub mtu: Option<usize>,
    /// Whether the link is up; a link that is down drops every packet.
    pub up: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig::ideal()
    }
}

impl LinkConfig {
    /// A perfect link: zero latency, unlimited rate, no impairments, up.
    pub fn ideal() -> Self {
        LinkConfig {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            in_order_jitter: Duration::ZERO,
            bandwidth_bps: None,
            queue_bytes: None,
            loss: LossModel::None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            corrupt: 0.0,
            mtu: None,
            up: true,
        }
    }

    /// A wired LAN: 0.1 ms latency, 1 Gbit/s, 1 MB queue, MTU 1500.
    pub fn lan() -> Self {
        LinkConfig::ideal()
            .with_latency(Duration::from_micros(100))
            .with_bandwidth_bps(1_000_000_000)
            .with_queue_bytes(1 << 20)
            .with_mtu(1500)
    }

    /// A home broadband access link: 10 ms latency, 1 ms jitter, 50 Mbit/s,
    /// 256 KiB queue, MTU 1500, no random loss.
    pub fn broadband() -> Self {
        LinkConfig::ideal()
            .with_latency(Duration::from_millis(10))
            .with_jitter(Duration::from_millis(1))
            .with_bandwidth_bps(50_000_000)
            .with_queue_bytes(256 * 1024)
            .with_mtu(1500)
    }

    /// A mobile access link: 40 ms latency, 15 ms jitter, 10 Mbit/s, 128 KiB
    /// queue, MTU 1400, 1 % bursty loss (mean bursts of 2 packets).
    pub fn mobile() -> Self {
        LinkConfig::ideal()
            .with_latency(Duration::from_millis(40))
            .with_jitter(Duration::from_millis(15))
            .with_bandwidth_bps(10_000_000)
            .with_queue_bytes(128 * 1024)
            .with_mtu(1400)
            .with_loss(LossModel::GilbertElliott {
                p_good_to_bad: 0.005,
                p_bad_to_good: 0.5,
                loss_in_good: 0.0,
                loss_in_bad: 1.0,
            })
    }

    /// Sets the one-way latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the jitter (extra uniform delay in `[0, jitter)`).
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the in-order jitter (extra delay in `[0, in_order_jitter)` that
    /// never lets a packet overtake an earlier one).
    pub fn with_in_order_jitter(mut self, in_order_jitter: Duration) -> Self {
        self.in_order_jitter = in_order_jitter;
        self
    }

    /// Limits the rate to `bps` bits per second (`0` means the link is down).
    pub fn with_bandwidth_bps(mut self, bps: u64) -> Self {
        self.bandwidth_bps = Some(bps);
        self
    }

    /// Bounds the transmit queue to `bytes` waiting bytes.
    pub fn with_queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = Some(bytes);
        self
    }

    /// Sets the loss model.
    pub fn with_loss(mut self, loss: LossModel) -> Self {
        self.loss = loss;
        self
    }

    /// Sets independent (Bernoulli) loss with probability `p`.
    pub fn with_loss_rate(self, p: f64) -> Self {
        self.with_loss(LossModel::Bernoulli(p))
    }

    /// Sets the duplication probability.
    pub fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Holds back a fraction `p` of packets by an extra `delay`.
    pub fn with_reorder(mut self, p: f64, delay: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = delay;
        self
    }

    /// Sets the probability of flipping one payload bit.
    pub fn with_corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// Sets the largest payload the link carries.
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Brings the link up or down.
    pub fn with_up(mut self, up: bool) -> Self {
        self.up = up;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use super::*;
    use crate::sim::test_support::{drain, sa};
    use crate::sim::{Datagram, Network};

    const MS: Duration = Duration::from_millis(1);

    /// Two public hosts: `a` with link `config`, `b` with a perfect link.
    fn pair(seed: u64, config: LinkConfig) -> (Network, SocketAddr, SocketAddr) {
        let mut net = Network::new(seed);
        let a = sa("192.0.2.1:1000");
        let b = sa("192.0.2.2:2000");
        net.add_host(a.ip(), config).unwrap();
        net.add_host(b.ip(), LinkConfig::ideal()).unwrap();
        (net, a, b)
    }

    fn seq(d: &Datagram) -> u32 {
        u32::from_be_bytes(d.payload[..4].try_into().unwrap())
    }

    /// Sends `n` numbered 4-byte packets from `a` to `b`, `gap` apart.
    fn send_numbered(
        net: &mut Network,
        t0: Instant,
        gap: Duration,
        n: u32,
        a: SocketAddr,
        b: SocketAddr,
    ) {
        for i in 0..n {
            net.send(t0 + gap * i, a, b, &i.to_be_bytes());
        }
    }

    #[test]
    fn latency_and_bandwidth_delay_add_up() {
        let config = LinkConfig::ideal()
            .with_latency(10 * MS)
            .with_bandwidth_bps(1_000_000);
        let (mut net, a, b) = pair(1, config);
        net.set_link(
            net.host_by_ip(b.ip()).unwrap(),
            LinkConfig::ideal().with_latency(5 * MS),
        )
        .unwrap();
        let t0 = Instant::now();
        // 1000 bytes at 1 Mbit/s = 8 ms each; back to back they queue.
        net.send(t0, a, b, &[0; 1000]);
        net.send(t0, a, b, &[1; 1000]);
        let got = drain(&mut net);
        let times: Vec<Duration> = got.iter().map(|(t, _)| *t - t0).collect();
        assert_eq!(times, vec![23 * MS, 31 * MS]);
        assert_eq!(got[0].1.payload, vec![0; 1000]);
        assert_eq!(got[0].1.from, a);
        assert_eq!(got[0].1.to, b);
        assert_eq!(got[0].1.sent_at, t0);
        assert_eq!(net.stats().delivered, 2);
    }

    #[test]
    fn queue_overflow_drops_tail() {
        // 1000 bytes/s; room for 2500 waiting bytes behind the one on the wire.
        let config = LinkConfig::ideal()
            .with_bandwidth_bps(8_000)
            .with_queue_bytes(2_500);
        let (mut net, a, b) = pair(2, config);
        let t0 = Instant::now();
        for i in 0..10u8 {
            net.send(t0, a, b, &[i; 1000]);
        }
        let got: Vec<u8> = drain(&mut net).iter().map(|(_, d)| d.payload[0]).collect();
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(net.stats().dropped_queue_overflow, 7);
        // Once drained, the link accepts again.
        let later = t0 + Duration::from_secs(10);
        net.send(later, a, b, &[9; 1000]);
        assert_eq!(drain(&mut net).len(), 1);
    }

    #[test]
    fn bernoulli_loss_rate_is_close_to_configured() {
        let (mut net, a, b) = pair(3, LinkConfig::ideal().with_loss_rate(0.1));
        send_numbered(&mut net, Instant::now(), MS, 10_000, a, b);
        let delivered = drain(&mut net).len();
        let lost = net.stats().dropped_loss;
        assert_eq!(delivered as u64 + lost, 10_000);
        assert!(
            (850..=1150).contains(&lost),
            "lost {lost} of 10000 at p = 0.1"
        );
    }

    #[test]
    fn gilbert_elliott_loses_in_bursts() {
        let model = LossModel::bursty(0.01, 0.2);
        assert!((model.mean_loss() - 0.01 / 0.21).abs() < 1e-12);
        let (mut net, a, b) = pair(4, LinkConfig::ideal().with_loss(model));
        let n = 20_000;
        send_numbered(&mut net, Instant::now(), MS, n, a, b);
        let mut received = vec![false; n as usize];
        for (_, d) in drain(&mut net) {
            received[seq(&d) as usize] = true;
        }
        let lost = received.iter().filter(|r| !**r).count();
        let bursts = received.windows(2).filter(|w| w[0] && !w[1]).count().max(1);
        let mean_burst = lost as f64 / bursts as f64;
        let rate = lost as f64 / f64::from(n);
        assert!((0.03..0.07).contains(&rate), "loss rate {rate}");
        // Independent loss at this rate gives bursts of ~1.05; expect ~5.
        assert!(mean_burst > 3.0, "mean burst length {mean_burst}");
    }

    #[test]
    fn jitter_reorders_packets() {
        let config = LinkConfig::ideal()
            .with_latency(10 * MS)
            .with_jitter(10 * MS);
        let (mut net, a, b) = pair(5, config);
        let t0 = Instant::now();
        send_numbered(&mut net, t0, MS, 100, a, b);
        let got = drain(&mut net);
        assert_eq!(got.len(), 100);
        for (t, d) in &got {
            let delay = *t - d.sent_at;
            assert!(delay >= 10 * MS && delay < 20 * MS, "delay {delay:?}");
        }
        let order: Vec<u32> = got.iter().map(|(_, d)| seq(d)).collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]), "no reordering");
    }

    /// Sends 2 000 numbered packets 100 µs apart over a 10 ms link with 1 ms
    /// of in-order jitter (ten packets' spacing) and returns (delay, number)
    /// per delivered packet, in arrival order.
    fn in_order_trace(seed: u64) -> Vec<(Duration, u32)> {
        let config = LinkConfig::ideal()
            .with_latency(10 * MS)
            .with_in_order_jitter(MS);
        let (mut net, a, b) = pair(seed, config);
        send_numbered(&mut net, Instant::now(), MS / 10, 2_000, a, b);
        drain(&mut net)
            .iter()
            .map(|(t, d)| (*t - d.sent_at, seq(d)))
            .collect()
    }

    #[test]
    fn in_order_jitter_delays_without_reordering() {
        let got = in_order_trace(13);
        let order: Vec<u32> = got.iter().map(|(_, n)| *n).collect();
        assert_eq!(order, (0..2_000).collect::<Vec<_>>(), "reordered");
        for (delay, n) in &got {
            assert!(
                *delay >= 10 * MS && *delay < 11 * MS,
                "packet {n}: delay {delay:?} outside [10 ms, 11 ms)"
            );
        }
        // Really jittered: delays spread over most of the 1 ms...
        let min = got.iter().map(|(d, _)| *d).min().unwrap();
        let max = got.iter().map(|(d, _)| *d).max().unwrap();
        assert!(max - min > MS * 8 / 10, "delays span only {:?}", max - min);
        // ...and packets that trail a late one are held back behind it, so
        // arrival gaps differ from the 100 µs send gaps.
        let bunched = got.windows(2).filter(|w| w[1].0 < w[0].0).count();
        assert!(bunched > 100, "only {bunched} packets caught up");
    }

    #[test]
    fn in_order_jitter_is_fixed_by_the_seed() {
        assert_eq!(in_order_trace(14), in_order_trace(14));
        assert_ne!(in_order_trace(14), in_order_trace(15));
    }

    #[test]
    fn in_order_jitter_keeps_a_queue_fifo() {
        // 1000-byte packets at 1 Mbit/s leave every 8 ms; jitter up to 20 ms
        // after the queue still may not let one overtake another.
        let config = LinkConfig::ideal()
            .with_latency(MS)
            .with_bandwidth_bps(1_000_000)
            .with_in_order_jitter(20 * MS);
        let (mut net, a, b) = pair(16, config);
        let t0 = Instant::now();
        for i in 0..50u32 {
            let mut payload = vec![0; 1000];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            net.send(t0, a, b, &payload);
        }
        let got = drain(&mut net);
        let order: Vec<u32> = got.iter().map(|(_, d)| seq(d)).collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
        for (i, (t, _)) in got.iter().enumerate() {
            let serialised = t0 + 8 * MS * (i as u32 + 1);
            assert!(*t >= serialised + MS && *t < serialised + 21 * MS);
        }
    }

    #[test]
    fn reorder_holds_packets_back() {
        let config = LinkConfig::ideal()
            .with_latency(MS)
            .with_reorder(0.2, 50 * MS);
        let (mut net, a, b) = pair(6, config);
        send_numbered(&mut net, Instant::now(), MS, 200, a, b);
        let got = drain(&mut net);
        let held = got
            .iter()
            .filter(|(t, d)| *t - d.sent_at == 51 * MS)
            .count();
        assert!((20..=60).contains(&held), "held back {held} of 200");
        assert!(got
            .iter()
            .all(|(t, d)| *t - d.sent_at == MS || *t - d.sent_at == 51 * MS));
        let order: Vec<u32> = got.iter().map(|(_, d)| seq(d)).collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn duplicate_delivers_twice() {
        let (mut net, a, b) = pair(7, LinkConfig::ideal().with_latency(MS).with_duplicate(1.0));
        let t0 = Instant::now();
        send_numbered(&mut net, t0, 10 * MS, 5, a, b);
        let got = drain(&mut net);
        assert_eq!(got.len(), 10);
        for pair in got.chunks(2) {
            assert_eq!(pair[0].1, pair[1].1);
            assert_eq!(pair[1].0 - pair[0].0, DUPLICATE_DELAY);
        }
        assert_eq!(net.stats().duplicated, 5);
        assert_eq!(net.stats().delivered, 10);
        assert_eq!(net.stats().sent, 5);
    }

    #[test]
    fn corrupt_flips_one_bit() {
        let (mut net, a, b) = pair(8, LinkConfig::ideal().with_corrupt(1.0));
        let t0 = Instant::now();
        let original: Vec<u8> = (0..64).collect();
        for _ in 0..50 {
            net.send(t0, a, b, &original);
        }
        net.send(t0, a, b, &[]); // nothing to flip: delivered intact
        let got = drain(&mut net);
        assert_eq!(got.len(), 51);
        for (_, d) in &got[..50] {
            let flipped: u32 = d
                .payload
                .iter()
                .zip(&original)
                .map(|(x, y)| (x ^ y).count_ones())
                .sum();
            assert_eq!(flipped, 1);
        }
        assert!(got[50].1.payload.is_empty());
        assert_eq!(net.stats().corrupted, 50);
    }

    #[test]
    fn mtu_drops_oversize() {
        let (mut net, a, b) = pair(9, LinkConfig::ideal().with_mtu(1200));
        let t0 = Instant::now();
        net.send(t0, a, b, &[0; 1200]);
        net.send(t0, a, b, &[0; 1201]);
        let got = drain(&mut net);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.payload.len(), 1200);
        assert_eq!(net.stats().dropped_mtu, 1);
    }

    #[test]
    fn link_goes_down_and_comes_back() {
        let (mut net, a, b) = pair(10, LinkConfig::ideal().with_latency(MS));
        let host = net.host_by_ip(a.ip()).unwrap();
        let t0 = Instant::now();
        net.send(t0, a, b, b"in flight");
        net.set_link(host, LinkConfig::ideal().with_up(false))
            .unwrap();
        net.send(t0, a, b, b"dropped");
        let got = drain(&mut net);
        assert_eq!(got.len(), 1, "a packet already on the wire still arrives");
        assert_eq!(net.stats().dropped_link_down, 1);
        net.set_link(host, LinkConfig::ideal()).unwrap();
        net.send(t0 + MS, a, b, b"back");
        assert_eq!(drain(&mut net).len(), 1);
    }

    #[test]
    fn degenerate_configs_do_not_panic() {
        let t0 = Instant::now();
        let configs = [
            LinkConfig::ideal().with_bandwidth_bps(0),
            LinkConfig::ideal()
                .with_bandwidth_bps(1)
                .with_queue_bytes(0),
            LinkConfig::ideal().with_latency(Duration::MAX),
            LinkConfig::ideal()
                .with_jitter(Duration::MAX)
                .with_latency(Duration::MAX),
            LinkConfig::ideal().with_in_order_jitter(Duration::MAX),
            LinkConfig::ideal()
                .with_loss_rate(f64::NAN)
                .with_duplicate(-3.0)
                .with_corrupt(9.0),
            LinkConfig::ideal().with_loss_rate(1.0),
            LinkConfig::ideal()
                .with_mtu(0)
                .with_reorder(f64::INFINITY, Duration::MAX),
            LinkConfig::ideal().with_loss(LossModel::GilbertElliott {
                p_good_to_bad: 1.0,
                p_bad_to_good: 0.0,
                loss_in_good: f64::NAN,
                loss_in_bad: 2.0,
            }),
        ];
        for config in configs {
            let (mut net, a, b) = pair(11, config);
            net.send(t0, a, b, b"x");
            net.send(t0, a, b, &[]);
            let got = drain(&mut net);
            assert_eq!(got.len() as u64, net.stats().delivered);
            assert_eq!(
                net.stats().delivered + net.stats().dropped(),
                2 + net.stats().duplicated
            );
        }
        let (mut net, a, b) = pair(12, LinkConfig::ideal().with_loss_rate(1.0));
        net.send(t0, a, b, b"x");
        assert!(drain(&mut net).is_empty());
        assert_eq!(net.stats().dropped_loss, 1);
        assert_eq!(LossModel::Bernoulli(f64::NAN).mean_loss(), 0.0);
    }
}
