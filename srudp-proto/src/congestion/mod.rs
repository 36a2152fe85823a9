//! Congestion control: one trait, one file per algorithm (spec §7).
//!
//! A connection owns one [`Controller`], built by the [`ControllerFactory`] in
//! its [`TransportConfig`](crate::TransportConfig). The connection tells the
//! controller about every packet sent, acknowledged or lost, and about loss
//! declarations that later proved spurious; the controller answers with a
//! congestion window in bytes (and a pacing gain). The trait is object safe
//! so the algorithm is chosen at run time.
//!
//! * [`Cubic`] (RFC 9438) is the default: it keeps a large window on long,
//!   fast paths and is TCP-friendly on short ones. Two extensions of its
//!   fast convergence, on by default and each a switch in [`CubicFactory`],
//!   make flows that share a bottleneck converge to equal shares sooner.
//! * [`NewReno`] (RFC 9002 §7) is the reference algorithm of QUIC.
//! * [`Bbr`] (draft-ietf-ccwg-bbr with BBRv3's loss bounds) is model
//!   based: it paces at the bottleneck bandwidth it measures from the
//!   connection's delivery-rate samples
//!   ([`on_rate_sample`](Controller::on_rate_sample)) and keeps random loss
//!   from lowering its rate (see its module docs): on a real path with 1 %
//!   random loss it keeps 0.97 of what Linux TCP BBR gets, CUBIC a
//!   twentieth. It is not the default yet: two BBR flows sharing a real
//!   bottleneck split it unevenly (Jain's index 0.68–0.97 over four runs,
//!   CUBIC 0.98–1.00), and a connection moving data both ways at once is
//!   slower with it (BENCHMARKS.md, "BBR tuned, and why CUBIC stays the
//!   default").
//!
//! CUBIC and NewReno use HyStart++ (RFC 9406, [`HyStart`]) to leave slow start when the
//! round-trip time starts to grow, before the bottleneck queue overflows,
//! and both can undo a window reduction whose losses turn out to be spurious.

mod bbr;
mod cubic;
mod hystart;
mod new_reno;
mod queue_surge;

use std::fmt;
use std::time::Instant;

pub use bbr::{Bbr, BbrFactory, Mode as BbrMode, ProbeBwPhase};
pub use cubic::{Cubic, CubicFactory, STEADY_W_MAX_FACTOR, SURGE_W_MAX_FACTOR};
pub use hystart::{HyStart, SlowStartPhase};
pub use new_reno::{NewReno, NewRenoFactory};

use crate::connection::{RateSample, RttEstimator};
use crate::random::Rng;

/// Pacing gain in slow start: the window doubles every round trip, so the
/// pacer must let twice the window out per RTT (as Linux does).
pub const SLOW_START_PACING_GAIN: f64 = 2.0;
/// Pacing gain otherwise: 1.25 × window per RTT leaves headroom for the
/// window to grow and for timer jitter, without bursting a whole window.
pub const PACING_GAIN: f64 = 1.25;

/// A congestion control algorithm for one connection.
///
/// The connection calls, in this order for one ACK frame: [`on_ack`] for
/// every newly acknowledged in-flight packet (oldest first), then
/// [`on_congestion_event`] once if the same ACK made packets lost. A loss
/// detection pass driven by a timer calls only `on_congestion_event`.
///
/// [`on_ack`]: Controller::on_ack
/// [`on_congestion_event`]: Controller::on_congestion_event
pub trait Controller: Send + fmt::Debug {
    /// A packet of `bytes` counted in flight was sent at `now`;
    /// `bytes_in_flight` includes it.
    fn on_sent(&mut self, now: Instant, bytes: u64, bytes_in_flight: u64) {
        let _ = (now, bytes, bytes_in_flight);
    }

    /// A packet of `bytes` sent at `sent` was acknowledged. `app_limited` is
    /// true when the sender was not using the whole window when it sent the
    /// packet (it had nothing more to send, or the peer's flow-control limit
    /// held it back): such acks must not grow the window (RFC 9002 §7.8).
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    );

    /// Packets were declared lost; the newest of them was sent at `sent`.
    /// Called once per loss-detection pass. `persistent` is RFC 9002 §7.6
    /// persistent congestion.
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        persistent: bool,
        lost_bytes: u64,
    );

    /// Every packet whose loss caused the latest window reduction was
    /// acknowledged after all (the loss was spurious: reordering or a delay
    /// spike, not congestion). Restore the state from before that reduction,
    /// as RFC 4015 (Eifel response) and Linux's undo do. The default does nothing.
    fn on_spurious_congestion_event(&mut self) {}

    /// The delivery-rate sample of one ACK frame (spec §7.1), after its
    /// [`on_ack`](Controller::on_ack) and
    /// [`on_congestion_event`](Controller::on_congestion_event) calls;
    /// `bytes_in_flight` is what remains in flight. `rng` is the
    /// connection's seeded generator, for controllers that randomise.
    /// Model-based controllers ([`Bbr`]) live on these; the default ignores them.
    fn on_rate_sample(
        &mut self,
        now: Instant,
        sample: &RateSample,
        bytes_in_flight: u64,
        rng: &mut Rng,
    ) {
        let _ = (now, sample, bytes_in_flight, rng);
    }

    /// The largest datagram the connection sends changed to
    /// `max_datagram_size` bytes: path MTU discovery raised it, a black hole
    /// or a move to a relayed path lowered it (spec §6.9). Arithmetic that
    /// counts in datagrams (the minimum window, growth per round, CUBIC's
    /// segments) uses the new size from now on, and the window is kept at
    /// least its minimum in the new size. The default ignores it.
    fn on_max_datagram_size(&mut self, max_datagram_size: u64) {
        let _ = max_datagram_size;
    }

    /// The congestion window in bytes.
    fn window(&self) -> u64;

    /// The pacing rate in bytes per second, for a controller that models
    /// it directly; `None` (the default) paces at
    /// [`pacing_gain`](Controller::pacing_gain) × window per smoothed RTT.
    fn pacing_rate(&self) -> Option<f64> {
        None
    }

    /// The slow-start threshold in bytes (`u64::MAX` before the first loss).
    fn ssthresh(&self) -> u64 {
        u64::MAX
    }

    /// How many windows per smoothed RTT the pacer lets out. The default is
    /// [`PACING_GAIN`].
    fn pacing_gain(&self) -> f64 {
        PACING_GAIN
    }

    /// A copy of this controller, for tests and forking.
    fn clone_box(&self) -> Box<dyn Controller>;
}

/// Builds a controller for each new connection.
pub trait ControllerFactory: Send + Sync + fmt::Debug {
    /// A controller for a connection whose datagrams carry at most `max_datagram_size` bytes.
    fn build(&self, now: Instant, max_datagram_size: u64) -> Box<dyn Controller>;
}
