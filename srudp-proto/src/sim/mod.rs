//! A deterministic network simulator for testing UDP applications.
//!
//! [`Network`] is a seeded, event-driven model of an IP network: hosts on the
//! internet, NAT routers with hosts behind them, and links that delay, rate
//! limit, queue, lose, duplicate, reorder and corrupt datagrams. It never
//! reads a clock and never does I/O: you pass in the current virtual time,
//! and the same seed with the same calls gives the same results, byte for
//! byte, on every run and every machine. A failing test therefore replays
//! exactly, and a test can cover minutes of network time in milliseconds.
//!
//! # Building a topology
//!
//! Every host and NAT has one link, described by a [`LinkConfig`]:
//!
//! * [`Network::add_host`] puts a host with a public IP directly on the
//!   internet; its link is its access link.
//! * [`Network::add_nat`] adds a NAT router with a public IP; its link is its
//!   uplink to the internet. [`NatConfig`] sets its behaviour: the classic
//!   [`full_cone`](NatConfig::full_cone),
//!   [`restricted_cone`](NatConfig::restricted_cone),
//!   [`port_restricted_cone`](NatConfig::port_restricted_cone) and
//!   [`symmetric`](NatConfig::symmetric), or any combination of
//!   [`MappingBehavior`] and [`FilteringBehavior`], with port preservation,
//!   mapping timeout and hairpinning.
//! * [`Network::add_host_behind`] puts a host with a private IP behind a NAT;
//!   its link is its LAN link to the NAT.
//!
//! Every host IP and NAT public IP must be unique within the network (even
//! private IPs behind different NATs), since hosts are identified by address.
//!
//! A link applies its configuration to both directions, impairing each
//! independently (own queue, own loss state, own random stream). The path of
//! a datagram from a host behind NAT A to a host behind NAT B is: A's LAN
//! link, NAT A (outbound translation), NAT A's uplink, NAT B's uplink, NAT B
//! (inbound translation and filtering), B's LAN link; each link adds its
//! delays and impairments. Hosts behind the same NAT talk over the LAN (both
//! LAN links, no translation); a host sending to its own NAT's public IP is
//! hairpinned if the NAT supports it. Datagrams to any other address are
//! dropped ([`NetworkStats::dropped_no_route`]). Hosts accept datagrams on
//! every port; there is no socket binding.
//!
//! # Driving srudp endpoints: [`Simulation`]
//!
//! To test code built on srudp, bind [`Endpoint`](crate::Endpoint)s to
//! addresses of the network with a [`Simulation`], which owns the virtual
//! clock and runs the loop below for you: [`Simulation::step`] flushes every
//! endpoint's transmits into the network, returns the events they produced,
//! and otherwise jumps to the next delivery or timer.
//! [`Simulation::run_until`] steps until your closure says stop. Every
//! datagram is checked against the 1200-byte limit, and
//! [`Simulation::record_trace`] / [`Simulation::record_datagrams`] keep a
//! replayable log and copies of the raw datagrams.
//!
//! # Running the network by hand
//!
//! You own the clock. Take one [`Instant`] as the origin of virtual time
//! (e.g. `Instant::now()`, once) and derive every later time by adding
//! durations to it; only differences matter to the simulator.
//!
//! 1. [`Network::send`] a datagram from a host's socket at the current time.
//! 2. Ask [`Network::next_delivery_time`] when the next event is due; if your
//!    application has a timer that fires earlier, advance to the timer
//!    instead.
//! 3. Advance your clock to that time and call [`Network::poll_delivery`]
//!    until it returns `None`; each [`Datagram`] says which socket it is for
//!    ([`to`](Datagram::to)) and where it appears to come from
//!    ([`from`](Datagram::from), after NAT translation), so feed it to the
//!    application owning `to` and send its replies.
//! 4. Repeat until nothing is pending (`next_delivery_time()` is `None`) or
//!    your test's deadline.
//!
//! `next_delivery_time` counts intermediate hops too (a datagram reaching a
//! NAT), so a poll at that time may yield nothing; just continue the loop.
//! Calls should use non-decreasing times; going back in time does not panic
//! but gives meaningless delays.
//!
//! [`Network::stats`] counts what happened: datagrams sent and delivered,
//! and drops by reason. [`Network::set_link`] changes a link mid-run (e.g.
//! takes it down) and [`Network::flush_nat_mappings`] forgets a NAT's
//! mappings (the next outbound datagram gets a new external port).
//!
//! # Determinism
//!
//! All randomness comes from the seed given to [`Network::new`]; every link
//! direction and NAT draws from its own stream, forked in creation order.
//! Simultaneous events are handled in the order they were scheduled. For a
//! whole test to replay exactly, the application under test must be
//! deterministic too: seed its randomness, take time only from your virtual
//! clock, and avoid depending on `HashMap` iteration order.
//!
//! # Impairments
//!
//! Start from a preset ([`LinkConfig::ideal`], [`lan`](LinkConfig::lan),
//! [`broadband`](LinkConfig::broadband), [`mobile`](LinkConfig::mobile)) and
//! adjust, e.g. `LinkConfig::broadband().with_loss_rate(0.02)
//! .with_jitter(Duration::from_millis(5)).with_mtu(1280)`. Bursty loss is
//! [`LossModel::GilbertElliott`]; see [`LinkConfig`] for the exact order in
//! which a link applies its impairments. [`LinkConfig::jitter`] lets packets
//! overtake each other; [`LinkConfig::in_order_jitter`] perturbs timing
//! without ever reordering (useful to keep perfectly periodic senders from
//! locking into one phase at a drop-tail queue).
//!
//! # Example
//!
//! A client behind a home NAT pings a server and the server echoes:
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use std::time::{Duration, Instant};
//! use srudp_proto::sim::{LinkConfig, NatConfig, Network};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut net = Network::new(42); // the seed fixes every random decision
//!
//! let server: SocketAddr = "203.0.113.7:4433".parse()?;
//! net.add_host(server.ip(), LinkConfig::broadband())?;
//!
//! let nat_ip: IpAddr = "198.51.100.1".parse()?;
//! let nat = net.add_nat(
//!     nat_ip,
//!     NatConfig::port_restricted_cone(),
//!     LinkConfig::broadband().with_latency(Duration::from_millis(30)),
//! )?;
//! let client: SocketAddr = "192.168.1.20:5000".parse()?;
//! net.add_host_behind(nat, client.ip(), LinkConfig::lan())?;
//!
//! let start = Instant::now(); // origin of virtual time; never read again
//! let deadline = start + Duration::from_secs(5);
//! net.send(start, client, server, b"ping");
//!
//! let mut round_trips = Vec::new();
//! while let Some(now) = net.next_delivery_time() {
//!     if now > deadline {
//!         break;
//!     }
//!     while let Some(datagram) = net.poll_delivery(now) {
//!         if datagram.to == server {
//!             // The server sees the NAT's public address, not 192.168.1.20.
//!             assert_eq!(datagram.from.ip(), nat_ip);
//!             net.send(now, server, datagram.from, &datagram.payload);
//!         } else {
//!             assert_eq!(datagram.to, client);
//!             round_trips.push(now - start);
//!         }
//!     }
//! }
//! assert_eq!(round_trips.len(), 1);
//! // 2 × (LAN 0.1 ms + NAT uplink 30 ms + server link 10 ms) + jitter + serialisation.
//! assert!(round_trips[0] >= Duration::from_micros(80_200));
//! assert_eq!(net.stats().delivered, 2);
//! assert_eq!(net.nat_mappings(nat), 1);
//! # Ok(())
//! # }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

mod harness;
mod link;
mod nat;
mod network;
mod queue;
mod rng;

pub use harness::{Captured, NodeId, SimEvent, Simulation};
pub use link::{LinkConfig, LossModel, DUPLICATE_DELAY};
pub use nat::{
    FilteringBehavior, MappingBehavior, NatConfig, DEFAULT_MAPPING_TIMEOUT, DEFAULT_MAX_MAPPINGS,
    MAX_PERMISSIONS, PORT_QUARANTINE,
};
pub use network::Network;

/// A host of a [`Network`], as returned by [`Network::add_host`] and
/// [`Network::add_host_behind`].
///
/// Ids are indices, meaningful only for the network that created them: an
/// id of another network is either unknown or names an unrelated host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub(crate) usize);

/// A NAT router of a [`Network`], as returned by [`Network::add_nat`].
///
/// Like [`HostId`], meaningful only for the network that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NatId(pub(crate) usize);

/// A link of a [`Network`]: a host's access or LAN link, or a NAT's uplink.
///
/// Both ids convert into it, so [`Network::set_link`] takes either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkId {
    /// The link of a host (to the internet, or to its NAT).
    Host(HostId),
    /// The uplink of a NAT.
    Nat(NatId),
}

impl From<HostId> for LinkId {
    fn from(id: HostId) -> Self {
        LinkId::Host(id)
    }
}

impl From<NatId> for LinkId {
    fn from(id: NatId) -> Self {
        LinkId::Nat(id)
    }
}

/// A datagram delivered to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The source as seen by the receiver (after any NAT translation).
    pub from: SocketAddr,
    /// The receiver's own socket address (its private address if behind a
    /// NAT).
    pub to: SocketAddr,
    /// The payload, possibly corrupted by a link.
    pub payload: Vec<u8>,
    /// When the sender handed it to [`Network::send`].
    pub sent_at: Instant,
}

/// What happened to datagrams in a [`Network`].
///
/// Every datagram passed to [`Network::send`] is counted in `sent`; each copy
/// is eventually either `delivered`, dropped (one of the `dropped_*`
/// counters), or still in flight. Duplication adds copies, so `delivered`
/// can exceed `sent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkStats {
    /// Datagrams passed to [`Network::send`].
    pub sent: u64,
    /// Datagrams returned by [`Network::poll_delivery`].
    pub delivered: u64,
    /// Dropped by random loss (or a delay too large to represent).
    pub dropped_loss: u64,
    /// Dropped because a link's transmit queue was full.
    pub dropped_queue_overflow: u64,
    /// Dropped because the payload exceeded a link's MTU.
    pub dropped_mtu: u64,
    /// Dropped because a link was down (or had zero bandwidth).
    pub dropped_link_down: u64,
    /// Dropped by a NAT: no live mapping, rejected by filtering, hairpinning
    /// disabled, or no external port available.
    pub dropped_nat_filtered: u64,
    /// Dropped because no host or NAT has the destination address.
    pub dropped_no_route: u64,
    /// Dropped because the source address is not a host of the network.
    pub dropped_unknown_source: u64,
    /// Datagrams that had a bit flipped (they are still delivered).
    pub corrupted: u64,
    /// Datagrams that were duplicated (the extra copies are delivered too).
    pub duplicated: u64,
}

impl NetworkStats {
    /// Total of all `dropped_*` counters.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss
            + self.dropped_queue_overflow
            + self.dropped_mtu
            + self.dropped_link_down
            + self.dropped_nat_filtered
            + self.dropped_no_route
            + self.dropped_unknown_source
    }
}

/// Why a topology change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The address is already used by a host or NAT of this network.
    #[error("IP address {0} is already used in this network")]
    DuplicateIp(IpAddr),
    /// The host id does not belong to this network.
    #[error("unknown host {0:?}")]
    UnknownHost(HostId),
    /// The NAT id does not belong to this network.
    #[error("unknown NAT {0:?}")]
    UnknownNat(NatId),
}

/// Helpers shared by the simulator's tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::net::{IpAddr, SocketAddr};
    use std::time::Instant;

    use super::{Datagram, Network};

    /// Parses a socket address.
    pub(crate) fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Parses an IP address.
    pub(crate) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Runs the network until nothing is pending; returns every delivery
    /// with its arrival time.
    pub(crate) fn drain(net: &mut Network) -> Vec<(Instant, Datagram)> {
        let mut out = Vec::new();
        while let Some(now) = net.next_delivery_time() {
            while let Some(d) = net.poll_delivery(now) {
                out.push((now, d));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use super::test_support::{drain, ip, sa};
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    type Trace = Vec<(Duration, SocketAddr, SocketAddr, Vec<u8>)>;

    /// Two clients behind different NATs on impaired links talk to an echo
    /// server; returns every delivery relative to the start, and the stats.
    fn echo_scenario(seed: u64) -> (Trace, NetworkStats) {
        let mut net = Network::new(seed);
        let bad = LinkConfig::ideal()
            .with_latency(5 * MS)
            .with_jitter(4 * MS)
            .with_bandwidth_bps(2_000_000)
            .with_queue_bytes(4_000)
            .with_loss(LossModel::bursty(0.05, 0.3))
            .with_duplicate(0.05)
            .with_reorder(0.05, 10 * MS)
            .with_corrupt(0.05);
        let server = sa("203.0.113.9:443");
        net.add_host(server.ip(), bad.clone()).unwrap();
        let n1 = net
            .add_nat(
                ip("198.51.100.1"),
                NatConfig::port_restricted_cone(),
                bad.clone(),
            )
            .unwrap();
        let n2 = net
            .add_nat(
                ip("198.51.100.2"),
                NatConfig::symmetric(),
                LinkConfig::mobile(),
            )
            .unwrap();
        let a = sa("10.0.1.2:1000");
        let b = sa("10.0.2.2:2000");
        net.add_host_behind(n1, a.ip(), bad).unwrap();
        net.add_host_behind(n2, b.ip(), LinkConfig::lan()).unwrap();

        let t0 = Instant::now();
        let mut trace = Vec::new();
        let mut sent = 0u32;
        loop {
            let app = (sent < 300).then(|| t0 + MS * sent);
            let now = match (app, net.next_delivery_time()) {
                (Some(x), Some(y)) => x.min(y),
                (x, y) => match x.or(y) {
                    Some(t) => t,
                    None => break,
                },
            };
            if app == Some(now) {
                let payload = vec![sent as u8; 200 + (sent as usize % 300)];
                net.send(now, a, server, &payload);
                net.send(now, b, server, &payload);
                sent += 1;
            }
            while let Some(d) = net.poll_delivery(now) {
                if d.to == server {
                    net.send(now, server, d.from, &d.payload);
                }
                trace.push((now - t0, d.from, d.to, d.payload));
            }
        }
        (trace, net.stats().clone())
    }

    #[test]
    fn same_seed_same_trace() {
        let (trace1, stats1) = echo_scenario(77);
        let (trace2, stats2) = echo_scenario(77);
        assert_eq!(trace1, trace2);
        assert_eq!(stats1, stats2);
        // The scenario really exercised the impairments.
        assert!(stats1.dropped_loss > 0 && stats1.duplicated > 0 && stats1.corrupted > 0);
        assert!(stats1.dropped_queue_overflow > 0, "{stats1:?}");
        assert!(
            trace1.len() > 300,
            "{} deliveries, {stats1:?}",
            trace1.len()
        );
    }

    #[test]
    fn different_seed_different_trace() {
        let (trace1, _) = echo_scenario(1);
        let (trace2, _) = echo_scenario(2);
        assert_ne!(trace1, trace2);
    }

    /// Two NATs with one host each plus a public reflector host.
    struct TwoNats {
        net: Network,
        n1: NatId,
        n2: NatId,
        a: SocketAddr,
        b: SocketAddr,
        reflector: SocketAddr,
        t0: Instant,
    }

    fn two_nats(c1: NatConfig, c2: NatConfig, uplink1: LinkConfig, uplink2: LinkConfig) -> TwoNats {
        let mut net = Network::new(3);
        let n1 = net.add_nat(ip("198.51.100.1"), c1, uplink1).unwrap();
        let n2 = net.add_nat(ip("198.51.100.2"), c2, uplink2).unwrap();
        let a = sa("10.0.1.2:1000");
        let b = sa("10.0.2.2:2000");
        net.add_host_behind(n1, a.ip(), LinkConfig::ideal().with_latency(MS))
            .unwrap();
        net.add_host_behind(n2, b.ip(), LinkConfig::ideal().with_latency(2 * MS))
            .unwrap();
        let reflector = sa("203.0.113.5:3478");
        net.add_host(reflector.ip(), LinkConfig::ideal()).unwrap();
        TwoNats {
            net,
            n1,
            n2,
            a,
            b,
            reflector,
            t0: Instant::now(),
        }
    }

    impl TwoNats {
        /// The public address `host` appears from, as seen by the reflector.
        fn discover(&mut self, host: SocketAddr) -> SocketAddr {
            self.net.send(self.t0, host, self.reflector, b"who am i");
            let got = drain(&mut self.net);
            assert_eq!(got.len(), 1);
            got[0].1.from
        }
    }

    #[test]
    fn delays_add_up_across_two_nats() {
        let mut w = two_nats(
            NatConfig::full_cone(),
            NatConfig::full_cone(),
            LinkConfig::ideal().with_latency(10 * MS),
            LinkConfig::ideal().with_latency(20 * MS),
        );
        let b_public = w.discover(w.b);
        let t1 = w.t0 + Duration::from_secs(1);
        w.net.send(t1, w.a, b_public, b"hello");
        let got = drain(&mut w.net);
        assert_eq!(got.len(), 1);
        let (at, d) = &got[0];
        // A's LAN 1 ms + NAT 1 uplink 10 ms + NAT 2 uplink 20 ms + B's LAN 2 ms.
        assert_eq!(*at - t1, 33 * MS);
        assert_eq!(d.to, w.b);
        assert_eq!(d.from.ip(), ip("198.51.100.1"));
        assert_eq!(d.sent_at, t1);
        assert_eq!(w.net.nat_mappings(w.n1), 1);
        assert_eq!(w.net.nat_mappings(w.n2), 1);
    }

    /// Both peers learn their public addresses, then send to each other at
    /// the same time, twice; returns how many punches got through.
    fn punch(c1: NatConfig, c2: NatConfig) -> usize {
        let mut w = two_nats(c1, c2, LinkConfig::ideal(), LinkConfig::ideal());
        let a_public = w.discover(w.a);
        let b_public = w.discover(w.b);
        let mut through = 0;
        for round in 1..=2u32 {
            let now = w.t0 + Duration::from_secs(round.into());
            w.net.send(now, w.a, b_public, b"punch");
            w.net.send(now, w.b, a_public, b"punch");
            through += drain(&mut w.net).len();
        }
        through
    }

    #[test]
    fn hole_punching_works_between_cones_but_not_with_symmetric() {
        let prc = NatConfig::port_restricted_cone;
        // Round 1: the first punch is filtered, the answer gets in; round 2: both.
        assert_eq!(punch(prc(), prc()), 3);
        assert_eq!(punch(NatConfig::restricted_cone(), prc()), 3);
        // A symmetric NAT uses a new port towards the peer: nothing gets in.
        assert_eq!(punch(prc(), NatConfig::symmetric()), 0);
    }

    #[test]
    fn hairpinning_on_and_off() {
        for hairpinning in [true, false] {
            let mut net = Network::new(10);
            let nat_ip = ip("198.51.100.1");
            let config = NatConfig::full_cone().with_hairpinning(hairpinning);
            let nat = net.add_nat(nat_ip, config, LinkConfig::ideal()).unwrap();
            let (a, b) = (sa("10.0.0.2:1000"), sa("10.0.0.3:2000"));
            net.add_host_behind(nat, a.ip(), LinkConfig::ideal())
                .unwrap();
            net.add_host_behind(nat, b.ip(), LinkConfig::ideal())
                .unwrap();
            let reflector = sa("203.0.113.5:3478");
            net.add_host(reflector.ip(), LinkConfig::ideal()).unwrap();
            let t0 = Instant::now();
            let public = |net: &mut Network, host| {
                net.send(t0, host, reflector, b"who am i");
                drain(net)[0].1.from
            };
            let a_public = public(&mut net, a);
            let b_public = public(&mut net, b);
            net.send(t0, a, b_public, b"hairpin");
            let got = drain(&mut net);
            if hairpinning {
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].1.to, b);
                assert_eq!(got[0].1.from, a_public, "source is translated");
            } else {
                assert!(got.is_empty());
                assert_eq!(net.stats().dropped_nat_filtered, 1);
            }
        }
    }

    #[test]
    fn a_clone_continues_identically() {
        let mut net = Network::new(9);
        let (a, b) = (sa("192.0.2.1:1"), sa("192.0.2.2:1"));
        let lossy = LinkConfig::ideal().with_jitter(5 * MS).with_loss_rate(0.3);
        net.add_host(a.ip(), lossy.clone()).unwrap();
        net.add_host(b.ip(), lossy).unwrap();
        let t0 = Instant::now();
        for i in 0..50u8 {
            net.send(t0 + MS * u32::from(i), a, b, &[i]);
        }
        let mut copy = net.clone();
        let trace = drain(&mut net);
        assert!(!trace.is_empty());
        assert_eq!(trace, drain(&mut copy));
        assert_eq!(net.stats(), copy.stats());
    }
}
