//! Congestion control: one trait, one file per algorithm (spec §7).
//!
//! A connection owns one [`Controller`], built by the [`ControllerFactory`] in
//! its [`TransportConfig`](crate::TransportConfig). The connection tells the
//! controller about every packet sent, acknowledged or lost; the controller
//! answers with a congestion window in bytes. The trait is object safe so the
//! algorithm is chosen at run time.

mod new_reno;

use std::fmt;
use std::time::Instant;

pub use new_reno::{NewReno, NewRenoFactory};

use crate::connection::RttEstimator;

/// A congestion control algorithm for one connection.
pub trait Controller: Send + fmt::Debug {
    /// A packet of `bytes` counted in flight was sent at `now`.
    fn on_sent(&mut self, now: Instant, bytes: u64, bytes_in_flight: u64) {
        let _ = (now, bytes, bytes_in_flight);
    }

    /// A packet of `bytes` sent at `sent` was acknowledged. `app_limited` is
    /// true when the sender was not using the whole window when it was sent:
    /// such acks must not grow the window.
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    );

    /// Packets were lost; the newest of them was sent at `sent`. Called once
    /// per loss-detection pass. `persistent` is RFC 9002 §7.6 persistent congestion.
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        persistent: bool,
        lost_bytes: u64,
    );

    /// The congestion window in bytes.
    fn window(&self) -> u64;

    /// A copy of this controller, for tests and forking.
    fn clone_box(&self) -> Box<dyn Controller>;
}

/// Builds a controller for each new connection.
pub trait ControllerFactory: Send + Sync + fmt::Debug {
    /// A controller for a connection whose datagrams carry at most `max_datagram_size` bytes.
    fn build(&self, now: Instant, max_datagram_size: u64) -> Box<dyn Controller>;
}
