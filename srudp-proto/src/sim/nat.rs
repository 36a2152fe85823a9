//! NAT boxes: their configuration ([`NatConfig`]) and translation table
//! (`NatTable`), following the vocabulary of RFC 4787.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::rng::SimRng;

/// Default [`NatConfig::mapping_timeout`]: 30 seconds.
pub const DEFAULT_MAPPING_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`NatConfig::max_mappings`].
pub const DEFAULT_MAX_MAPPINGS: usize = 65_536;
/// How many remote endpoints a mapping remembers for filtering.
pub const MAX_PERMISSIONS: usize = 1024;
/// How many recently released external ports a NAT avoids reusing.
pub const PORT_QUARANTINE: usize = 1024;

/// First external port chosen at random.
const FIRST_RANDOM_PORT: u16 = 1024;
/// Number of ports in `FIRST_RANDOM_PORT..=u16::MAX`.
const RANDOM_PORTS: u64 = (u16::MAX - FIRST_RANDOM_PORT) as u64 + 1;
/// Random picks tried before scanning for a free port.
const RANDOM_TRIES: usize = 32;

/// When an outbound packet reuses an existing mapping (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MappingBehavior {
    /// One external port per internal socket, whatever the destination.
    #[default]
    EndpointIndependent,
    /// One external port per internal socket and destination IP.
    AddressDependent,
    /// One external port per internal socket and destination IP:port
    /// ("symmetric NAT").
    AddressAndPortDependent,
}

/// Which inbound packets a mapping lets in (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FilteringBehavior {
    /// Anyone may send to the mapping's external port.
    EndpointIndependent,
    /// Only IPs the internal host has sent to through this mapping.
    AddressDependent,
    /// Only IP:port pairs the internal host has sent to through this mapping.
    #[default]
    AddressAndPortDependent,
}

/// The behaviour of a NAT box.
///
/// * **Mapping** ([`MappingBehavior`]) decides when an outbound packet reuses
///   an existing external port: for any destination (endpoint-independent),
///   for the same destination IP (address-dependent), or only for the same
///   destination IP and port (address-and-port-dependent, "symmetric").
/// * **Filtering** ([`FilteringBehavior`]) decides which inbound packets to a
///   mapping's external port are let in: from anyone, only from IPs the
///   internal host has sent to through this mapping, or only from exactly
///   the IP:port pairs it has sent to. These permissions live as long as
///   their mapping (at most [`MAX_PERMISSIONS`] per mapping; the least
///   recently used is forgotten first).
/// * A mapping expires once no outbound packet and no admitted inbound packet
///   has used it for [`mapping_timeout`](Self::mapping_timeout) (checked
///   lazily, from timestamps; filtered packets do not refresh it).
/// * External ports are drawn from the NAT's seeded random stream in
///   `1024..=65535` unless port preservation keeps the internal port. A port
///   released by expiry, eviction or
///   [`Network::flush_nat_mappings`](super::Network::flush_nat_mappings) is
///   avoided for a while (the [`PORT_QUARANTINE`] most recently released), so
///   a re-created mapping gets a new external port, as after `conntrack -F`.
///
/// `NatConfig::default()` is [`NatConfig::port_restricted_cone`], the most
/// common home-router behaviour. Out-of-range values never panic: a
/// `mapping_timeout` of zero makes every mapping expire at once (no reply
/// ever gets in), and `max_mappings` is treated as at least 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// When outbound packets share an external port.
    pub mapping: MappingBehavior,
    /// Which inbound packets are let in.
    pub filtering: FilteringBehavior,
    /// Try to use the internal port as the external port (falls back to a
    /// random port if it is taken, recently released, or 0).
    pub port_preservation: bool,
    /// Idle time after which a mapping expires.
    pub mapping_timeout: Duration,
    /// Whether a host behind the NAT can reach another host behind it through
    /// the NAT's public address. Without it such packets are dropped.
    pub hairpinning: bool,
    /// Size bound of the translation table; when full, expired mappings are
    /// purged, then the least recently used mapping is evicted.
    pub max_mappings: usize,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig::port_restricted_cone()
    }
}

impl NatConfig {
    /// A NAT with the given mapping and filtering behaviour and the defaults
    /// for the rest: random ports, 30 s timeout, no hairpinning, 65536
    /// mappings.
    pub fn new(mapping: MappingBehavior, filtering: FilteringBehavior) -> Self {
        NatConfig {
            mapping,
            filtering,
            port_preservation: false,
            mapping_timeout: DEFAULT_MAPPING_TIMEOUT,
            hairpinning: false,
            max_mappings: DEFAULT_MAX_MAPPINGS,
        }
    }

    /// Full cone: endpoint-independent mapping and filtering.
    pub fn full_cone() -> Self {
        NatConfig::new(
            MappingBehavior::EndpointIndependent,
            FilteringBehavior::EndpointIndependent,
        )
    }

    /// Restricted cone: endpoint-independent mapping, address-dependent
    /// filtering.
    pub fn restricted_cone() -> Self {
        NatConfig::new(
            MappingBehavior::EndpointIndependent,
            FilteringBehavior::AddressDependent,
        )
    }

    /// Port-restricted cone: endpoint-independent mapping,
    /// address-and-port-dependent filtering.
    pub fn port_restricted_cone() -> Self {
        NatConfig::new(
            MappingBehavior::EndpointIndependent,
            FilteringBehavior::AddressAndPortDependent,
        )
    }

    /// Symmetric: address-and-port-dependent mapping and filtering, random
    /// external ports.
    pub fn symmetric() -> Self {
        NatConfig::new(
            MappingBehavior::AddressAndPortDependent,
            FilteringBehavior::AddressAndPortDependent,
        )
    }

    /// Sets port preservation.
    pub fn with_port_preservation(mut self, on: bool) -> Self {
        self.port_preservation = on;
        self
    }

    /// Sets the mapping idle timeout.
    pub fn with_mapping_timeout(mut self, timeout: Duration) -> Self {
        self.mapping_timeout = timeout;
        self
    }

    /// Enables or disables hairpinning.
    pub fn with_hairpinning(mut self, on: bool) -> Self {
        self.hairpinning = on;
        self
    }

    /// Sets the table size bound (at least 1 is used).
    pub fn with_max_mappings(mut self, max: usize) -> Self {
        self.max_mappings = max;
        self
    }
}

/// What identifies a mapping, per the mapping behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct MappingKey {
    internal: SocketAddr,
    remote_ip: Option<IpAddr>,
    remote_port: Option<u16>,
}

/// One entry of the translation table.
#[derive(Debug, Clone)]
struct Mapping {
    key: MappingKey,
    /// Last time an outbound or admitted inbound packet used it.
    last_used: Instant,
    /// Use counter value at the last use (tie-break for eviction).
    last_serial: u64,
    /// Remote endpoints sent to, with the use counter value of the last send.
    permissions: BTreeMap<SocketAddr, u64>,
}

/// The translation table of one NAT box.
#[derive(Debug, Clone)]
pub(crate) struct NatTable {
    config: NatConfig,
    rng: SimRng,
    /// Live (or not yet purged) mappings by external port.
    by_port: BTreeMap<u16, Mapping>,
    /// External port of each mapping key.
    by_key: BTreeMap<MappingKey, u16>,
    /// Recently released ports, oldest first, and the same as a set.
    released: VecDeque<u16>,
    released_set: BTreeSet<u16>,
    /// Use counter: increases on every use of any mapping.
    serial: u64,
}

impl NatTable {
    /// An empty table drawing ports from `rng`.
    pub(crate) fn new(config: NatConfig, rng: SimRng) -> Self {
        NatTable {
            config,
            rng,
            by_port: BTreeMap::new(),
            by_key: BTreeMap::new(),
            released: VecDeque::new(),
            released_set: BTreeSet::new(),
            serial: 0,
        }
    }

    /// The NAT's configuration.
    pub(crate) fn config(&self) -> &NatConfig {
        &self.config
    }

    /// Translates an outbound packet from `internal` to `remote` at `now`:
    /// the external port to use, creating a mapping if needed. `None` only
    /// if no port could be found at all.
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        internal: SocketAddr,
        remote: SocketAddr,
    ) -> Option<u16> {
        let key = self.key(internal, remote);
        if let Some(&port) = self.by_key.get(&key) {
            if self.is_expired(port, now) {
                self.remove(port);
            } else {
                self.touch(port, now, Some(remote));
                return Some(port);
            }
        }
        self.make_room(now);
        let port = self.allocate(now, internal.port())?;
        self.by_key.insert(key, port);
        self.by_port.insert(
            port,
            Mapping {
                key,
                last_used: now,
                last_serial: 0,
                permissions: BTreeMap::new(),
            },
        );
        self.touch(port, now, Some(remote));
        Some(port)
    }

    /// Translates an inbound packet from `remote` to external `port` at
    /// `now`: the internal socket to deliver to, or `None` if there is no
    /// live mapping or filtering rejects the packet.
    pub(crate) fn inbound(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        port: u16,
    ) -> Option<SocketAddr> {
        if self.is_expired(port, now) {
            self.remove(port);
            return None;
        }
        let mapping = self.by_port.get(&port)?;
        let allowed = match self.config.filtering {
            FilteringBehavior::EndpointIndependent => true,
            FilteringBehavior::AddressDependent => mapping
                .permissions
                .keys()
                .any(|sent_to| sent_to.ip() == remote.ip()),
            FilteringBehavior::AddressAndPortDependent => mapping.permissions.contains_key(&remote),
        };
        if !allowed {
            return None;
        }
        let internal = mapping.key.internal;
        self.touch(port, now, None);
        Some(internal)
    }

    /// Forgets every mapping (like `conntrack -F`).
    pub(crate) fn flush(&mut self) {
        let ports: Vec<u16> = self.by_port.keys().copied().collect();
        for port in ports {
            self.remove(port);
        }
    }

    /// Number of mappings not expired at `at` (all of them if `at` is `None`).
    pub(crate) fn live_mappings(&self, at: Option<Instant>) -> usize {
        match at {
            None => self.by_port.len(),
            Some(at) => self
                .by_port
                .values()
                .filter(|m| !self.expired(m, at))
                .count(),
        }
    }

    fn key(&self, internal: SocketAddr, remote: SocketAddr) -> MappingKey {
        let (remote_ip, remote_port) = match self.config.mapping {
            MappingBehavior::EndpointIndependent => (None, None),
            MappingBehavior::AddressDependent => (Some(remote.ip()), None),
            MappingBehavior::AddressAndPortDependent => (Some(remote.ip()), Some(remote.port())),
        };
        MappingKey {
            internal,
            remote_ip,
            remote_port,
        }
    }

    fn expired(&self, mapping: &Mapping, now: Instant) -> bool {
        now.saturating_duration_since(mapping.last_used) >= self.config.mapping_timeout
    }

    /// Whether a mapping exists on `port` and has expired at `now`.
    fn is_expired(&self, port: u16, now: Instant) -> bool {
        self.by_port
            .get(&port)
            .is_some_and(|m| self.expired(m, now))
    }

    /// Records a use of the mapping on `port`; an outbound use to `remote`
    /// also grants (or refreshes) the permission for it.
    fn touch(&mut self, port: u16, now: Instant, remote: Option<SocketAddr>) {
        self.serial += 1;
        let serial = self.serial;
        let Some(mapping) = self.by_port.get_mut(&port) else {
            return;
        };
        mapping.last_used = mapping.last_used.max(now);
        mapping.last_serial = serial;
        if let Some(remote) = remote {
            mapping.permissions.insert(remote, serial);
            if mapping.permissions.len() > MAX_PERMISSIONS {
                let oldest = mapping
                    .permissions
                    .iter()
                    .min_by_key(|&(addr, used)| (*used, *addr))
                    .map(|(addr, _)| *addr);
                if let Some(oldest) = oldest {
                    mapping.permissions.remove(&oldest);
                }
            }
        }
    }

    /// Removes the mapping on `port` and quarantines the port.
    fn remove(&mut self, port: u16) {
        let Some(mapping) = self.by_port.remove(&port) else {
            return;
        };
        self.by_key.remove(&mapping.key);
        if self.released_set.insert(port) {
            self.released.push_back(port);
            if self.released.len() > PORT_QUARANTINE {
                if let Some(old) = self.released.pop_front() {
                    self.released_set.remove(&old);
                }
            }
        }
    }

    /// Makes room for one more mapping if the table is full.
    fn make_room(&mut self, now: Instant) {
        let max = self.config.max_mappings.max(1);
        if self.by_port.len() >= max {
            self.purge_expired(now);
        }
        while self.by_port.len() >= max {
            if !self.evict_lru() {
                break;
            }
        }
    }

    /// Removes expired mappings; `true` if any was removed.
    fn purge_expired(&mut self, now: Instant) -> bool {
        let expired: Vec<u16> = self
            .by_port
            .iter()
            .filter(|(_, m)| self.expired(m, now))
            .map(|(&port, _)| port)
            .collect();
        for &port in &expired {
            self.remove(port);
        }
        !expired.is_empty()
    }

    /// Evicts the least recently used mapping; `false` if the table is empty.
    fn evict_lru(&mut self) -> bool {
        let lru = self
            .by_port
            .iter()
            .min_by_key(|(_, m)| (m.last_used, m.last_serial))
            .map(|(&port, _)| port);
        match lru {
            Some(port) => {
                self.remove(port);
                true
            }
            None => false,
        }
    }

    /// Picks an external port for a new mapping of internal port `preferred`,
    /// evicting mappings if every port is taken.
    fn allocate(&mut self, now: Instant, preferred: u16) -> Option<u16> {
        loop {
            if let Some(port) = self.free_port(preferred) {
                if self.released_set.remove(&port) {
                    self.released.retain(|&p| p != port);
                }
                return Some(port);
            }
            if !self.purge_expired(now) && !self.evict_lru() {
                return None;
            }
        }
    }

    /// A port not used by any mapping, preferring ports not recently released.
    fn free_port(&mut self, preferred: u16) -> Option<u16> {
        let fresh = |t: &Self, p: u16| !t.by_port.contains_key(&p) && !t.released_set.contains(&p);
        if self.config.port_preservation && preferred != 0 && fresh(self, preferred) {
            return Some(preferred);
        }
        for _ in 0..RANDOM_TRIES {
            let port = self.random_port();
            if fresh(self, port) {
                return Some(port);
            }
        }
        let start = self.random_port();
        for skip_released in [true, false] {
            let found = self
                .first_free(start, u16::MAX, skip_released)
                .or_else(|| self.first_free(FIRST_RANDOM_PORT, start - 1, skip_released));
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The lowest port in `lo..=hi` without a mapping (and, if
    /// `skip_released`, not recently released). Walks only the used ports.
    fn first_free(&self, lo: u16, hi: u16, skip_released: bool) -> Option<u16> {
        if lo > hi {
            return None;
        }
        let mut used = self.by_port.range(lo..=hi).map(|(&p, _)| p).peekable();
        let mut released = self.released_set.range(lo..=hi).copied().peekable();
        let mut port = lo;
        loop {
            while used.next_if(|&u| u < port).is_some() {}
            while released.next_if(|&r| r < port).is_some() {}
            let taken =
                used.peek() == Some(&port) || (skip_released && released.peek() == Some(&port));
            if !taken {
                return Some(port);
            }
            if port == hi {
                return None;
            }
            port += 1;
        }
    }

    fn random_port(&mut self) -> u16 {
        FIRST_RANDOM_PORT + self.rng.below(RANDOM_PORTS) as u16
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sim::test_support::sa;

    const SEC: Duration = Duration::from_secs(1);

    /// A table with one client socket, two servers and a time origin.
    struct Nat {
        table: NatTable,
        client: SocketAddr,
        s1: SocketAddr,
        s2: SocketAddr,
        t0: Instant,
    }

    fn nat(seed: u64, config: NatConfig) -> Nat {
        Nat {
            table: NatTable::new(config, SimRng::new(seed)),
            client: sa("10.0.0.2:5000"),
            s1: sa("203.0.113.1:3478"),
            s2: sa("203.0.113.2:3478"),
            t0: Instant::now(),
        }
    }

    impl Nat {
        fn out(&mut self, at: Duration, internal: SocketAddr, remote: SocketAddr) -> u16 {
            self.table.outbound(self.t0 + at, internal, remote).unwrap()
        }

        /// Whether a packet from `remote` to external `port` gets in.
        fn admits(&mut self, at: Duration, remote: SocketAddr, port: u16) -> bool {
            let got = self.table.inbound(self.t0 + at, remote, port);
            assert!(
                got.is_none() || got == Some(self.client) || got.unwrap().ip() == self.client.ip()
            );
            got.is_some()
        }
    }

    const T0: Duration = Duration::ZERO;

    #[test]
    fn full_cone_accepts_from_anyone_after_outbound() {
        let mut n = nat(1, NatConfig::full_cone());
        assert!(!n.admits(T0, n.s2, 40000), "no mapping yet");
        let port = n.out(T0, n.client, n.s1);
        assert!(n.admits(T0, sa("192.0.2.77:9999"), port));
        assert_eq!(n.table.inbound(n.t0, n.s2, port), Some(n.client));
    }

    #[test]
    fn restricted_cone_filters_unknown_address() {
        let mut n = nat(2, NatConfig::restricted_cone());
        let port = n.out(T0, n.client, n.s1);
        assert!(
            n.admits(T0, sa("203.0.113.1:4000"), port),
            "any port of a known IP"
        );
        assert!(!n.admits(T0, n.s2, port));
    }

    #[test]
    fn port_restricted_cone_filters_unknown_port() {
        let mut n = nat(3, NatConfig::port_restricted_cone());
        let port = n.out(T0, n.client, n.s1);
        assert!(!n.admits(T0, sa("203.0.113.1:4000"), port));
        assert!(n.admits(T0, n.s1, port));
    }

    #[test]
    fn symmetric_nat_uses_new_port_per_destination() {
        let mut n = nat(4, NatConfig::symmetric());
        let s1b = sa("203.0.113.1:4000");
        let p1 = n.out(T0, n.client, n.s1);
        let p2 = n.out(T0, n.client, s1b);
        let p3 = n.out(T0, n.client, n.s2);
        assert!(p1 != p2 && p2 != p3 && p1 != p3, "{p1} {p2} {p3}");
        assert_eq!(
            n.out(SEC, n.client, n.s1),
            p1,
            "same destination, same mapping"
        );
        assert_eq!(n.table.live_mappings(None), 3);
        // Each mapping only answers to its own destination.
        assert!(!n.admits(SEC, s1b, p1));
        assert!(n.admits(SEC, s1b, p2));
    }

    #[test]
    fn address_dependent_mapping_shares_port_per_destination_ip() {
        let config = NatConfig::new(
            MappingBehavior::AddressDependent,
            FilteringBehavior::AddressDependent,
        );
        let mut n = nat(5, config);
        let p1 = n.out(T0, n.client, n.s1);
        assert_eq!(n.out(T0, n.client, sa("203.0.113.1:4000")), p1);
        assert_ne!(n.out(T0, n.client, n.s2), p1);
    }

    #[test]
    fn endpoint_independent_mapping_reuses_port() {
        let mut n = nat(6, NatConfig::port_restricted_cone());
        let p1 = n.out(T0, n.client, n.s1);
        assert_eq!(n.out(SEC, n.client, sa("203.0.113.1:4000")), p1);
        assert_eq!(n.out(2 * SEC, n.client, n.s2), p1);
        assert_ne!(p1, n.client.port(), "ports are random without preservation");
        assert!(p1 >= 1024);
        assert_ne!(n.out(2 * SEC, sa("10.0.0.2:5001"), n.s1), p1);
        assert_eq!(n.table.live_mappings(None), 2);
    }

    #[test]
    fn port_preservation_keeps_the_internal_port_when_free() {
        let mut n = nat(7, NatConfig::full_cone().with_port_preservation(true));
        assert_eq!(n.out(T0, n.client, n.s1), 5000);
        let other = n.out(T0, sa("10.0.0.3:5000"), n.s1);
        assert_ne!(other, 5000, "taken: another port is picked");
        assert!(other >= 1024);
        assert_ne!(
            n.out(T0, sa("10.0.0.4:0"), n.s1),
            0,
            "port 0 is never preserved"
        );
    }

    #[test]
    fn mapping_expires_after_timeout_and_is_refreshed_by_traffic() {
        let mut n = nat(8, NatConfig::port_restricted_cone());
        let port = n.out(T0, n.client, n.s1);
        // Admitted inbound traffic refreshes the mapping...
        assert!(n.admits(29 * SEC, n.s1, port));
        assert!(n.admits(58 * SEC, n.s1, port));
        // ...filtered inbound traffic does not...
        assert!(!n.admits(87 * SEC, n.s2, port));
        // ...outbound traffic does.
        assert_eq!(n.out(80 * SEC, n.client, n.s1), port);
        assert!(n.admits(109 * SEC, n.s1, port));
        assert_eq!(n.table.live_mappings(Some(n.t0 + 138 * SEC)), 1);
        assert_eq!(n.table.live_mappings(Some(n.t0 + 139 * SEC)), 0);
        // 30 s of silence: gone, and the next mapping gets a new port.
        assert!(!n.admits(139 * SEC, n.s1, port));
        assert_ne!(n.out(140 * SEC, n.client, n.s1), port);
    }

    #[test]
    fn flush_gives_a_new_port() {
        for preserve in [false, true] {
            for seed in 0..20 {
                let config = NatConfig::port_restricted_cone().with_port_preservation(preserve);
                let mut n = nat(seed, config);
                let before = n.out(T0, n.client, n.s1);
                n.table.flush();
                assert_eq!(n.table.live_mappings(None), 0);
                assert!(!n.admits(SEC, n.s1, before), "old mapping is gone");
                let after = n.out(2 * SEC, n.client, n.s1);
                assert_ne!(before, after);
                assert!(n.admits(3 * SEC, n.s1, after));
            }
        }
    }

    #[test]
    fn max_mappings_evicts_the_least_recently_used() {
        let mut n = nat(11, NatConfig::full_cone().with_max_mappings(2));
        let sockets = [sa("10.0.0.2:1"), sa("10.0.0.2:2"), sa("10.0.0.2:3")];
        let p1 = n.out(T0, sockets[0], n.s1);
        let p2 = n.out(SEC, sockets[1], n.s1);
        assert!(n.admits(2 * SEC, n.s1, p1)); // p1 is now the most recent
        n.out(3 * SEC, sockets[2], n.s1);
        assert_eq!(n.table.live_mappings(None), 2);
        assert!(!n.admits(4 * SEC, n.s1, p2), "p2 was evicted");
        assert!(n.admits(4 * SEC, n.s1, p1));
        // A limit of zero is treated as one.
        let mut n = nat(12, NatConfig::full_cone().with_max_mappings(0));
        n.out(T0, n.client, n.s1);
        assert_eq!(n.table.live_mappings(None), 1);
    }

    #[test]
    fn zero_timeout_lets_nothing_back_in() {
        let mut n = nat(
            13,
            NatConfig::full_cone().with_mapping_timeout(Duration::ZERO),
        );
        let port = n.out(T0, n.client, n.s1);
        assert!(!n.admits(T0, n.s1, port));
    }

    #[test]
    fn permissions_are_bounded() {
        let mut n = nat(14, NatConfig::port_restricted_cone());
        let ip = n.s1.ip();
        let remote = |i: usize| SocketAddr::new(ip, 10_000 + i as u16);
        let port = n.out(T0, n.client, remote(0));
        for i in 1..=MAX_PERMISSIONS {
            n.out(T0, n.client, remote(i));
        }
        assert!(
            !n.admits(T0, remote(0), port),
            "oldest permission forgotten"
        );
        assert!(n.admits(T0, remote(1), port));
    }

    #[test]
    fn port_exhaustion_recycles_the_oldest_mappings() {
        // More destinations than ports: every port gets used, then the least
        // recently used mappings are recycled. No panic, no failure.
        let mut n = nat(15, NatConfig::symmetric());
        let count = RANDOM_PORTS as u16 + 10;
        for i in 0..count {
            let remote = SocketAddr::new(n.s1.ip(), i);
            assert!(n.table.outbound(n.t0, n.client, remote).is_some());
        }
        assert_eq!(n.table.live_mappings(Some(n.t0)), RANDOM_PORTS as usize);
    }
}
