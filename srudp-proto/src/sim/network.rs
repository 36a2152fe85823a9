//! The simulated network: topology, routing and the event queue.
//!
//! See the [module documentation](super) for how to build and drive one.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::link::LinkConfig;
use super::nat::{NatConfig, NatTable};
use super::queue::{Direction, Link, LinkDrop};
use super::rng::SimRng;
use super::{Datagram, HostId, LinkId, NatId, NetworkStats, TopologyError};

/// A seeded, event-driven simulated packet network.
///
/// The caller owns the clock: [`send`](Self::send) takes the current virtual
/// time, [`next_delivery_time`](Self::next_delivery_time) tells when the
/// next event is due, and [`poll_delivery`](Self::poll_delivery) hands out
/// the datagrams due by a given time. The same seed and the same sequence of
/// calls (with the same time offsets) give the same results, byte for byte.
///
/// Cloning snapshots the whole network, packets in flight and random state
/// included: the clone continues exactly as the original would.
#[derive(Debug, Clone)]
pub struct Network {
    /// Master generator; only used to seed components as they are created.
    rng: SimRng,
    hosts: Vec<Host>,
    nats: Vec<Nat>,
    /// Every host IP and every NAT public IP.
    by_ip: BTreeMap<IpAddr, Node>,
    /// Latest time the caller passed in.
    latest: Option<Instant>,
    sched: Scheduler,
}

/// What owns an IP address.
#[derive(Debug, Clone, Copy)]
enum Node {
    Host(HostId),
    Nat(NatId),
}

/// A host: on the internet (`nat == None`) or behind a NAT.
#[derive(Debug, Clone)]
struct Host {
    ip: IpAddr,
    nat: Option<NatId>,
    link: Link,
}

/// A NAT box and its uplink.
#[derive(Debug, Clone)]
struct Nat {
    public_ip: IpAddr,
    table: NatTable,
    uplink: Link,
}

/// Where a packet is when its event fires.
#[derive(Debug, Clone, Copy)]
enum Hop {
    /// In the internet core, to be routed by destination IP.
    Internet,
    /// At a NAT, arriving from its LAN.
    NatFromLan(NatId),
    /// At a NAT, arriving from the internet.
    NatFromWan(NatId),
    /// At its destination host: ready for delivery.
    Host,
}

/// A packet in flight; addresses are rewritten by NATs as it travels.
#[derive(Debug, Clone)]
struct Packet {
    from: SocketAddr,
    to: SocketAddr,
    payload: Vec<u8>,
    sent_at: Instant,
}

/// Pending events and statistics.
#[derive(Debug, Clone, Default)]
struct Scheduler {
    /// Events by (due time, sequence number): ties fire in scheduling order.
    events: BTreeMap<(Instant, u64), (Hop, Packet)>,
    next_seq: u64,
    stats: NetworkStats,
}

impl Scheduler {
    fn push(&mut self, at: Instant, hop: Hop, packet: Packet) {
        self.events.insert((at, self.next_seq), (hop, packet));
        self.next_seq += 1;
    }

    /// Sends `packet` across one link direction; on arrival it is at `next`.
    fn cross(
        &mut self,
        link: &mut Link,
        direction: Direction,
        now: Instant,
        mut packet: Packet,
        next: Hop,
    ) {
        match link.cross(direction, now, &mut packet.payload) {
            Err(drop) => self.stats.record_drop(drop),
            Ok(crossing) => {
                if crossing.corrupted {
                    self.stats.corrupted += 1;
                }
                match crossing.duplicate {
                    Some(second) => {
                        self.stats.duplicated += 1;
                        self.push(crossing.arrival, next, packet.clone());
                        self.push(second, next, packet);
                    }
                    None => self.push(crossing.arrival, next, packet),
                }
            }
        }
    }
}

impl NetworkStats {
    fn record_drop(&mut self, drop: LinkDrop) {
        match drop {
            LinkDrop::Down => self.dropped_link_down += 1,
            LinkDrop::Mtu => self.dropped_mtu += 1,
            LinkDrop::QueueOverflow => self.dropped_queue_overflow += 1,
            LinkDrop::Loss => self.dropped_loss += 1,
        }
    }
}

impl Network {
    /// An empty network whose randomness is all derived from `seed`.
    pub fn new(seed: u64) -> Self {
        Network {
            rng: SimRng::new(seed),
            hosts: Vec::new(),
            nats: Vec::new(),
            by_ip: BTreeMap::new(),
            latest: None,
            sched: Scheduler::default(),
        }
    }

    /// Adds a host directly on the internet with address `ip` and access
    /// link `link` (both directions impaired independently).
    ///
    /// Fails if `ip` is already used by a host or NAT of this network.
    pub fn add_host(&mut self, ip: IpAddr, link: LinkConfig) -> Result<HostId, TopologyError> {
        self.insert_host(ip, None, link)
    }

    /// Adds a NAT router with public address `public_ip`, behaviour `nat`,
    /// and uplink `uplink` to the internet.
    ///
    /// Fails if `public_ip` is already used by a host or NAT of this network.
    pub fn add_nat(
        &mut self,
        public_ip: IpAddr,
        nat: NatConfig,
        uplink: LinkConfig,
    ) -> Result<NatId, TopologyError> {
        if self.by_ip.contains_key(&public_ip) {
            return Err(TopologyError::DuplicateIp(public_ip));
        }
        let id = NatId(self.nats.len());
        let table = NatTable::new(nat, self.rng.fork());
        let uplink = Link::new(uplink, &mut self.rng);
        self.nats.push(Nat {
            public_ip,
            table,
            uplink,
        });
        self.by_ip.insert(public_ip, Node::Nat(id));
        Ok(id)
    }

    /// Adds a host with private address `private_ip` behind `nat`; `link`
    /// is its LAN link to the NAT.
    ///
    /// Fails if `nat` is not a NAT of this network or `private_ip` is already
    /// used: every host IP must be unique in the whole network (so that
    /// [`send`](Self::send) can tell hosts apart by their address), even
    /// across different NATs.
    pub fn add_host_behind(
        &mut self,
        nat: NatId,
        private_ip: IpAddr,
        link: LinkConfig,
    ) -> Result<HostId, TopologyError> {
        if nat.0 >= self.nats.len() {
            return Err(TopologyError::UnknownNat(nat));
        }
        self.insert_host(private_ip, Some(nat), link)
    }

    fn insert_host(
        &mut self,
        ip: IpAddr,
        nat: Option<NatId>,
        link: LinkConfig,
    ) -> Result<HostId, TopologyError> {
        if self.by_ip.contains_key(&ip) {
            return Err(TopologyError::DuplicateIp(ip));
        }
        let id = HostId(self.hosts.len());
        let link = Link::new(link, &mut self.rng);
        self.hosts.push(Host { ip, nat, link });
        self.by_ip.insert(ip, Node::Host(id));
        Ok(id)
    }

    /// Sends a datagram from socket `from` to `to` at time `now`.
    ///
    /// `from.ip()` must be the address of a host of this network (a private
    /// address for a host behind a NAT); otherwise the datagram is dropped
    /// and counted in [`NetworkStats::dropped_unknown_source`]. Any port may
    /// be used: hosts accept datagrams on every port.
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
        self.observe(now);
        self.sched.stats.sent += 1;
        let Some(id) = self.host_by_ip(from.ip()) else {
            self.sched.stats.dropped_unknown_source += 1;
            return;
        };
        let Some(host) = self.hosts.get_mut(id.0) else {
            return;
        };
        let next = match host.nat {
            Some(nat) => Hop::NatFromLan(nat),
            None => Hop::Internet,
        };
        let packet = Packet {
            from,
            to,
            payload: payload.to_vec(),
            sent_at: now,
        };
        self.sched
            .cross(&mut host.link, Direction::Outward, now, packet, next);
    }

    /// When the earliest pending event is due, or `None` if nothing is in
    /// flight.
    ///
    /// Events include intermediate hops (a packet reaching a NAT or the
    /// internet core), so [`poll_delivery`](Self::poll_delivery) at this time
    /// may return nothing; just ask again.
    pub fn next_delivery_time(&self) -> Option<Instant> {
        self.sched.events.keys().next().map(|&(at, _)| at)
    }

    /// Processes events due by `now` and returns the next datagram that has
    /// arrived at its host, or `None` once nothing more is due by `now`.
    ///
    /// Call it repeatedly until it returns `None`. Datagrams come out in
    /// arrival order; simultaneous arrivals in the order they were scheduled.
    pub fn poll_delivery(&mut self, now: Instant) -> Option<Datagram> {
        self.observe(now);
        loop {
            let (&(at, _), _) = self.sched.events.first_key_value()?;
            if at > now {
                return None;
            }
            let (_, (hop, packet)) = self.sched.events.pop_first()?;
            match hop {
                Hop::Host => {
                    self.sched.stats.delivered += 1;
                    return Some(Datagram {
                        from: packet.from,
                        to: packet.to,
                        payload: packet.payload,
                        sent_at: packet.sent_at,
                    });
                }
                Hop::Internet => self.route_internet(at, packet),
                Hop::NatFromLan(nat) => self.route_from_lan(nat, at, packet),
                Hop::NatFromWan(nat) => self.route_from_wan(nat, at, packet),
            }
        }
    }

    /// Routes a packet in the internet core by its destination IP.
    fn route_internet(&mut self, at: Instant, packet: Packet) {
        match self.by_ip.get(&packet.to.ip()).copied() {
            Some(Node::Host(id)) => match self.hosts.get_mut(id.0) {
                Some(host) if host.nat.is_none() => {
                    let next = Hop::Host;
                    self.sched
                        .cross(&mut host.link, Direction::Inward, at, packet, next);
                }
                _ => self.sched.stats.dropped_no_route += 1,
            },
            Some(Node::Nat(id)) => match self.nats.get_mut(id.0) {
                Some(nat) => {
                    let next = Hop::NatFromWan(id);
                    self.sched
                        .cross(&mut nat.uplink, Direction::Inward, at, packet, next);
                }
                None => self.sched.stats.dropped_no_route += 1,
            },
            None => self.sched.stats.dropped_no_route += 1,
        }
    }

    /// A packet reaches a NAT from the internet: translate, filter, forward.
    fn route_from_wan(&mut self, id: NatId, at: Instant, mut packet: Packet) {
        let Some(nat) = self.nats.get_mut(id.0) else {
            self.sched.stats.dropped_no_route += 1;
            return;
        };
        match nat.table.inbound(at, packet.from, packet.to.port()) {
            Some(internal) => {
                packet.to = internal;
                self.forward_on_lan(id, at, packet);
            }
            None => self.sched.stats.dropped_nat_filtered += 1,
        }
    }

    /// A packet reaches a NAT from its LAN: LAN delivery, hairpinning, or
    /// translation and out through the uplink.
    fn route_from_lan(&mut self, id: NatId, at: Instant, mut packet: Packet) {
        if self.lan_host(id, packet.to.ip()).is_some() {
            self.forward_on_lan(id, at, packet);
            return;
        }
        let Some(nat) = self.nats.get_mut(id.0) else {
            self.sched.stats.dropped_no_route += 1;
            return;
        };
        let hairpin = packet.to.ip() == nat.public_ip;
        if hairpin && !nat.table.config().hairpinning {
            self.sched.stats.dropped_nat_filtered += 1;
            return;
        }
        let Some(port) = nat.table.outbound(at, packet.from, packet.to) else {
            self.sched.stats.dropped_nat_filtered += 1;
            return;
        };
        packet.from = SocketAddr::new(nat.public_ip, port);
        if !hairpin {
            self.sched.cross(
                &mut nat.uplink,
                Direction::Outward,
                at,
                packet,
                Hop::Internet,
            );
            return;
        }
        // Hairpinning: translated like any outbound packet, then handled as
        // if it had arrived from the internet (filtering included).
        match nat.table.inbound(at, packet.from, packet.to.port()) {
            Some(internal) => {
                packet.to = internal;
                self.forward_on_lan(id, at, packet);
            }
            None => self.sched.stats.dropped_nat_filtered += 1,
        }
    }

    /// Sends a packet from NAT `id` down the LAN link of its destination.
    fn forward_on_lan(&mut self, id: NatId, at: Instant, packet: Packet) {
        let Some(host_id) = self.lan_host(id, packet.to.ip()) else {
            self.sched.stats.dropped_no_route += 1;
            return;
        };
        if let Some(host) = self.hosts.get_mut(host_id.0) {
            let next = Hop::Host;
            self.sched
                .cross(&mut host.link, Direction::Inward, at, packet, next);
        }
    }

    /// The host behind NAT `nat` with address `ip`, if any.
    fn lan_host(&self, nat: NatId, ip: IpAddr) -> Option<HostId> {
        let id = self.host_by_ip(ip)?;
        let host = self.hosts.get(id.0)?;
        (host.nat == Some(nat)).then_some(id)
    }

    fn observe(&mut self, now: Instant) {
        self.latest = Some(self.latest.map_or(now, |latest| latest.max(now)));
    }

    /// Replaces the configuration of a host's link or a NAT's uplink.
    ///
    /// Takes effect for packets entering the link from now on; packets
    /// already past it are unaffected. Queue and loss-model state are kept.
    pub fn set_link(
        &mut self,
        link: impl Into<LinkId>,
        config: LinkConfig,
    ) -> Result<(), TopologyError> {
        let target = match link.into() {
            LinkId::Host(id) => self
                .hosts
                .get_mut(id.0)
                .map(|h| &mut h.link)
                .ok_or(TopologyError::UnknownHost(id))?,
            LinkId::Nat(id) => self
                .nats
                .get_mut(id.0)
                .map(|n| &mut n.uplink)
                .ok_or(TopologyError::UnknownNat(id))?,
        };
        target.config = config;
        Ok(())
    }

    /// The configuration of a host's link or a NAT's uplink.
    pub fn link(&self, link: impl Into<LinkId>) -> Option<&LinkConfig> {
        match link.into() {
            LinkId::Host(id) => self.hosts.get(id.0).map(|h| &h.link.config),
            LinkId::Nat(id) => self.nats.get(id.0).map(|n| &n.uplink.config),
        }
    }

    /// Forgets all mappings of `nat` (like `conntrack -F`): the next outbound
    /// packet of each internal socket gets a new mapping with a new port.
    pub fn flush_nat_mappings(&mut self, nat: NatId) -> Result<(), TopologyError> {
        let nat = self
            .nats
            .get_mut(nat.0)
            .ok_or(TopologyError::UnknownNat(nat))?;
        nat.table.flush();
        Ok(())
    }

    /// The number of live mappings of `nat` as of the latest time passed to
    /// [`send`](Self::send) or [`poll_delivery`](Self::poll_delivery)
    /// (0 for an id of another network).
    pub fn nat_mappings(&self, nat: NatId) -> usize {
        self.nats
            .get(nat.0)
            .map_or(0, |n| n.table.live_mappings(self.latest))
    }

    /// Counters of what happened to packets so far.
    pub fn stats(&self) -> &NetworkStats {
        &self.sched.stats
    }

    /// Number of pending events (packets in flight, counting each copy).
    pub fn in_flight(&self) -> usize {
        self.sched.events.len()
    }

    /// The host with address `ip` (public, or private behind a NAT).
    pub fn host_by_ip(&self, ip: IpAddr) -> Option<HostId> {
        match self.by_ip.get(&ip) {
            Some(Node::Host(id)) => Some(*id),
            _ => None,
        }
    }

    /// The address of `host`.
    pub fn host_ip(&self, host: HostId) -> Option<IpAddr> {
        self.hosts.get(host.0).map(|h| h.ip)
    }

    /// The NAT `host` sits behind, if any.
    pub fn host_nat(&self, host: HostId) -> Option<NatId> {
        self.hosts.get(host.0).and_then(|h| h.nat)
    }

    /// The public address of `nat`.
    pub fn nat_public_ip(&self, nat: NatId) -> Option<IpAddr> {
        self.nats.get(nat.0).map(|n| n.public_ip)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sim::test_support::{drain, ip, sa};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn hosts_behind_same_nat_talk_over_lan() {
        let mut net = Network::new(4);
        let nat = net
            .add_nat(
                ip("198.51.100.1"),
                NatConfig::symmetric(),
                LinkConfig::ideal().with_latency(50 * MS),
            )
            .unwrap();
        let a = sa("192.168.0.2:1000");
        let b = sa("192.168.0.3:2000");
        net.add_host_behind(nat, a.ip(), LinkConfig::ideal().with_latency(MS))
            .unwrap();
        net.add_host_behind(nat, b.ip(), LinkConfig::ideal().with_latency(2 * MS))
            .unwrap();
        let t0 = Instant::now();
        net.send(t0, a, b, b"over the lan");
        let got = drain(&mut net);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0 - t0, 3 * MS, "both LAN links, not the uplink");
        assert_eq!(got[0].1.from, a, "no translation");
        assert_eq!(got[0].1.to, b);
        assert_eq!(net.nat_mappings(nat), 0);
    }

    #[test]
    fn unroutable_datagrams_are_counted() {
        let mut net = Network::new(5);
        let server = sa("203.0.113.1:1");
        net.add_host(server.ip(), LinkConfig::ideal()).unwrap();
        let n1 = net
            .add_nat(
                ip("198.51.100.1"),
                NatConfig::full_cone(),
                LinkConfig::ideal(),
            )
            .unwrap();
        let n2 = net
            .add_nat(
                ip("198.51.100.2"),
                NatConfig::full_cone(),
                LinkConfig::ideal(),
            )
            .unwrap();
        let a = sa("10.0.1.2:1");
        let b = sa("10.0.2.2:1");
        net.add_host_behind(n1, a.ip(), LinkConfig::ideal())
            .unwrap();
        net.add_host_behind(n2, b.ip(), LinkConfig::ideal())
            .unwrap();
        let t0 = Instant::now();
        net.send(t0, sa("192.0.2.99:1"), server, b"spoofed");
        assert_eq!(net.stats().dropped_unknown_source, 1);
        net.send(t0, server, sa("192.0.2.99:1"), b"nowhere");
        net.send(t0, server, b, b"private address from outside");
        net.send(t0, a, b, b"private address behind another NAT");
        assert!(drain(&mut net).is_empty());
        let stats = net.stats();
        assert_eq!(stats.dropped_no_route, 3);
        assert_eq!((stats.sent, stats.delivered, stats.dropped()), (4, 0, 4));
    }

    #[test]
    fn topology_errors() {
        let (ideal, nat_cfg) = (LinkConfig::ideal, NatConfig::default);
        let mut net = Network::new(6);
        let host = net.add_host(ip("192.0.2.1"), ideal()).unwrap();
        let nat = net.add_nat(ip("192.0.2.2"), nat_cfg(), ideal()).unwrap();
        let dup = |addr| TopologyError::DuplicateIp(ip(addr));
        assert_eq!(
            net.add_host(ip("192.0.2.2"), ideal()),
            Err(dup("192.0.2.2"))
        );
        let again = net.add_nat(ip("192.0.2.1"), nat_cfg(), ideal());
        assert_eq!(again, Err(dup("192.0.2.1")));
        let behind = net.add_host_behind(nat, ip("192.0.2.1"), ideal());
        assert_eq!(behind, Err(dup("192.0.2.1")));
        let private = net.add_host_behind(nat, ip("10.0.0.1"), ideal()).unwrap();
        assert_eq!(net.host_ip(private), Some(ip("10.0.0.1")));
        assert_eq!(
            (net.host_nat(private), net.host_nat(host)),
            (Some(nat), None)
        );
        assert_eq!(net.nat_public_ip(nat), Some(ip("192.0.2.2")));
        // Ids of a bigger network are unknown here.
        let mut other = Network::new(7);
        let mut foreign = (None, None);
        for i in 1..=3 {
            let n = other.add_nat(ip(&format!("1.1.1.{i}")), nat_cfg(), ideal());
            let h = other.add_host(ip(&format!("1.1.2.{i}")), ideal());
            foreign = (Some(n.unwrap()), Some(h.unwrap()));
        }
        let (Some(f_nat), Some(f_host)) = foreign else {
            unreachable!()
        };
        let behind = net.add_host_behind(f_nat, ip("10.0.0.9"), ideal());
        assert_eq!(behind, Err(TopologyError::UnknownNat(f_nat)));
        assert_eq!(
            net.flush_nat_mappings(f_nat),
            Err(TopologyError::UnknownNat(f_nat))
        );
        let set = net.set_link(f_host, ideal());
        assert_eq!(set, Err(TopologyError::UnknownHost(f_host)));
        assert_eq!(net.nat_mappings(f_nat), 0);
        assert!(net.link(f_host).is_none());
        let down = ideal().with_up(false);
        net.set_link(nat, down.clone()).unwrap();
        assert_eq!(net.link(nat), Some(&down));
    }

    #[test]
    fn events_are_only_due_at_their_time() {
        let mut net = Network::new(8);
        let a = sa("192.0.2.1:1");
        let b = sa("192.0.2.2:1");
        net.add_host(a.ip(), LinkConfig::ideal().with_latency(5 * MS))
            .unwrap();
        net.add_host(b.ip(), LinkConfig::ideal().with_latency(5 * MS))
            .unwrap();
        assert_eq!(net.next_delivery_time(), None);
        let t0 = Instant::now();
        net.send(t0, a, b, b"1");
        net.send(t0, a, b, b"2");
        assert_eq!(net.in_flight(), 2);
        // First hop: A's link, into the internet core.
        assert_eq!(net.next_delivery_time(), Some(t0 + 5 * MS));
        assert!(net.poll_delivery(t0 + 4 * MS).is_none());
        assert!(
            net.poll_delivery(t0 + 5 * MS).is_none(),
            "an intermediate hop"
        );
        assert_eq!(net.next_delivery_time(), Some(t0 + 10 * MS));
        // Simultaneous arrivals come out in sending order.
        assert_eq!(net.poll_delivery(t0 + 20 * MS).unwrap().payload, b"1");
        assert_eq!(net.poll_delivery(t0 + 20 * MS).unwrap().payload, b"2");
        assert!(net.poll_delivery(t0 + 20 * MS).is_none());
        assert_eq!(net.in_flight(), 0);
    }
}
