//! When a client moves its server link to the stream carrier, and back
//! (spec §12.5): UDP first; if the server has not answered over UDP within
//! a short delay, the stream opens beside it and datagrams to the server go
//! on both; whichever carrier brings the link up (the client registers)
//! wins and the other is dropped.
//!
//! Sans-IO like the rest of the crate: the adapter reports what happened
//! (datagrams from the server and on which carrier, the stream opening and
//! closing, the link coming up and going down, timeouts) and reads back
//! where datagrams to the server go ([`route`](CarrierFallback::route))
//! and whether it should hold a stream open
//! ([`wants_stream`](CarrierFallback::wants_stream)). It opens, closes and
//! reads the TCP connection itself.

use std::time::{Duration, Instant};

/// What a datagram to or from the server travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// UDP, the client's own socket.
    Udp,
    /// The stream carrier: a TCP connection to the server (spec §12).
    Stream,
}

/// Where datagrams to the server's address go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRoute {
    /// Over UDP only.
    Udp,
    /// A copy on each carrier: the race of spec §12.5.
    Both,
    /// On the stream only.
    Stream,
}

/// The timing of the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackConfig {
    /// How long the server may leave UDP unanswered before the stream
    /// opens beside it (default 1 s; the bound: never the full UDP
    /// handshake timeout).
    pub delay: Duration,
    /// How long to wait before opening the stream again after it failed
    /// or closed before the link came up on it (default 5 s).
    pub retry: Duration,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            delay: Duration::from_secs(1),
            retry: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// UDP alone; the stream opens at `open_at` unless the link is up.
    Udp { open_at: Instant },
    /// The stream is wanted and not open yet; UDP alone meanwhile.
    Opening,
    /// Both carriers take datagrams to the server.
    Racing,
    /// The link came up on this carrier.
    Settled(Carrier),
}

/// The fallback of one client's server link. See the module docs.
#[derive(Debug, Clone)]
pub struct CarrierFallback {
    config: FallbackConfig,
    phase: Phase,
    stream_open: bool,
    /// The carrier of the latest datagram from the server: the one that
    /// completed the handshake when the link comes up.
    last_answer: Option<Carrier>,
}

impl CarrierFallback {
    /// A link that starts now, over UDP.
    pub fn new(now: Instant, config: FallbackConfig) -> CarrierFallback {
        let open_at = now + config.delay;
        CarrierFallback {
            config,
            phase: Phase::Udp { open_at },
            stream_open: false,
            last_answer: None,
        }
    }

    // ----- getters ---------------------------------------------------------

    /// Where datagrams to the server's address go now.
    pub fn route(&self) -> ServerRoute {
        match self.phase {
            Phase::Udp { .. } | Phase::Opening | Phase::Settled(Carrier::Udp) => ServerRoute::Udp,
            Phase::Racing => ServerRoute::Both,
            Phase::Settled(Carrier::Stream) => ServerRoute::Stream,
        }
    }

    /// Whether the adapter should hold a stream to the server open (open
    /// one if it has none; close the one it has when this turns false).
    pub fn wants_stream(&self) -> bool {
        matches!(
            self.phase,
            Phase::Opening | Phase::Racing | Phase::Settled(Carrier::Stream)
        )
    }

    /// The carrier the link came up on, once it did.
    pub fn carrier(&self) -> Option<Carrier> {
        match self.phase {
            Phase::Settled(c) => Some(c),
            _ => None,
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Udp { open_at } => Some(open_at),
            _ => None,
        }
    }

    // ----- inputs ----------------------------------------------------------

    /// Time passed: after the delay without a link, the stream is wanted.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Udp { open_at } = self.phase {
            if now >= open_at {
                self.phase = if self.stream_open {
                    Phase::Racing
                } else {
                    Phase::Opening
                };
            }
        }
    }

    /// A datagram from the server's address arrived on `carrier` (before
    /// it is handed to the client).
    pub fn handle_server_datagram(&mut self, carrier: Carrier) {
        self.last_answer = Some(carrier);
    }

    /// The stream connected.
    pub fn handle_stream_opened(&mut self) {
        self.stream_open = true;
        if self.phase == Phase::Opening {
            self.phase = Phase::Racing;
        }
    }

    /// The stream failed to connect, or closed. If the link was on it or
    /// racing for it, UDP is alone again and the stream is tried again
    /// after [`FallbackConfig::retry`].
    pub fn handle_stream_closed(&mut self, now: Instant) {
        self.stream_open = false;
        if self.last_answer == Some(Carrier::Stream) {
            self.last_answer = None;
        }
        match self.phase {
            Phase::Opening | Phase::Racing | Phase::Settled(Carrier::Stream) => {
                self.phase = Phase::Udp {
                    open_at: now + self.config.retry,
                };
            }
            Phase::Udp { .. } | Phase::Settled(Carrier::Udp) => {}
        }
    }

    /// The client registered: its link is up, authenticated by the
    /// carrier that brought the server's latest datagram. That carrier
    /// wins; the other stops carrying datagrams to the server.
    pub fn handle_link_up(&mut self) {
        let winner = match self.last_answer {
            Some(Carrier::Stream) if self.stream_open => Carrier::Stream,
            _ => Carrier::Udp,
        };
        self.phase = Phase::Settled(winner);
    }

    /// The client lost its link (it reconnects by itself). After a link
    /// on the stream, the race starts again at once — UDP was blocked a
    /// moment ago — else UDP has its delay again.
    pub fn handle_link_lost(&mut self, now: Instant) {
        self.last_answer = None;
        self.phase = match self.phase {
            Phase::Settled(Carrier::Stream) if self.stream_open => Phase::Racing,
            Phase::Settled(Carrier::Stream) => Phase::Opening,
            Phase::Settled(Carrier::Udp) => Phase::Udp {
                open_at: now + self.config.delay,
            },
            unsettled => unsettled,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn start() -> (CarrierFallback, Instant) {
        let t0 = Instant::now();
        (CarrierFallback::new(t0, FallbackConfig::default()), t0)
    }

    #[test]
    fn the_default_delay_is_at_most_a_second() {
        assert!(FallbackConfig::default().delay <= Duration::from_secs(1));
    }

    #[test]
    fn a_server_that_answers_over_udp_in_time_never_needs_the_stream() {
        let (mut f, t0) = start();
        assert_eq!(f.route(), ServerRoute::Udp);
        assert!(!f.wants_stream());
        f.handle_timeout(t0 + 300 * MS);
        f.handle_server_datagram(Carrier::Udp);
        f.handle_link_up();
        assert_eq!(f.carrier(), Some(Carrier::Udp));
        assert_eq!(f.poll_timeout(), None);
        f.handle_timeout(t0 + 60_000 * MS);
        assert!(!f.wants_stream());
        assert_eq!(f.route(), ServerRoute::Udp);
    }

    #[test]
    fn silent_udp_opens_the_stream_after_the_delay_and_the_stream_wins() {
        let (mut f, t0) = start();
        assert_eq!(f.poll_timeout(), Some(t0 + 1000 * MS));
        f.handle_timeout(t0 + 999 * MS);
        assert!(!f.wants_stream(), "not before the delay");
        f.handle_timeout(t0 + 1000 * MS);
        assert!(f.wants_stream());
        assert_eq!(f.route(), ServerRoute::Udp, "until the stream connects");
        f.handle_stream_opened();
        assert_eq!(f.route(), ServerRoute::Both, "racing");
        f.handle_server_datagram(Carrier::Stream);
        f.handle_link_up();
        assert_eq!(f.carrier(), Some(Carrier::Stream));
        assert_eq!(f.route(), ServerRoute::Stream);
        assert!(f.wants_stream());
    }

    #[test]
    fn udp_that_answers_during_the_race_wins_and_the_stream_is_let_go() {
        let (mut f, t0) = start();
        f.handle_timeout(t0 + 1000 * MS);
        f.handle_stream_opened();
        f.handle_server_datagram(Carrier::Stream);
        f.handle_server_datagram(Carrier::Udp);
        f.handle_link_up();
        assert_eq!(f.carrier(), Some(Carrier::Udp));
        assert!(!f.wants_stream(), "the adapter closes the stream");
        f.handle_stream_closed(t0 + 1100 * MS);
        assert_eq!(f.route(), ServerRoute::Udp);
        assert_eq!(f.carrier(), Some(Carrier::Udp));
    }

    #[test]
    fn a_stream_that_fails_is_tried_again_after_the_retry_delay() {
        let (mut f, t0) = start();
        f.handle_timeout(t0 + 1000 * MS);
        f.handle_stream_closed(t0 + 1200 * MS); // connect refused
        assert!(!f.wants_stream());
        assert_eq!(f.route(), ServerRoute::Udp);
        assert_eq!(f.poll_timeout(), Some(t0 + 6200 * MS));
        f.handle_timeout(t0 + 6200 * MS);
        assert!(f.wants_stream());
    }

    #[test]
    fn a_link_on_a_stream_that_closes_falls_back_to_udp_then_races_again() {
        let (mut f, t0) = start();
        f.handle_timeout(t0 + 1000 * MS);
        f.handle_stream_opened();
        f.handle_server_datagram(Carrier::Stream);
        f.handle_link_up();
        f.handle_stream_closed(t0 + 9000 * MS);
        assert_eq!(f.route(), ServerRoute::Udp);
        assert_eq!(f.carrier(), None);
        f.handle_timeout(t0 + 14_000 * MS);
        assert!(f.wants_stream());
    }

    #[test]
    fn a_lost_link_races_again_at_once_when_it_was_on_the_stream() {
        let (mut f, t0) = start();
        f.handle_timeout(t0 + 1000 * MS);
        f.handle_stream_opened();
        f.handle_server_datagram(Carrier::Stream);
        f.handle_link_up();
        f.handle_link_lost(t0 + 20_000 * MS);
        assert_eq!(
            f.route(),
            ServerRoute::Both,
            "no new delay: UDP was blocked"
        );
        assert_eq!(f.carrier(), None);
        // A link that was on UDP gets UDP's delay again.
        let (mut g, t0) = start();
        g.handle_server_datagram(Carrier::Udp);
        g.handle_link_up();
        g.handle_link_lost(t0 + 5000 * MS);
        assert_eq!(g.route(), ServerRoute::Udp);
        assert_eq!(g.poll_timeout(), Some(t0 + 6000 * MS));
    }

    #[test]
    fn an_answer_on_a_stream_already_closed_does_not_win() {
        let (mut f, t0) = start();
        f.handle_timeout(t0 + 1000 * MS);
        f.handle_stream_opened();
        f.handle_server_datagram(Carrier::Stream);
        f.handle_stream_closed(t0 + 1500 * MS);
        f.handle_link_up();
        assert_eq!(f.carrier(), Some(Carrier::Udp));
        assert!(!f.wants_stream());
    }
}
