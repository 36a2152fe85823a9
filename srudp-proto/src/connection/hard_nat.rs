//! The hard-NAT round (spec §4.4): "birthday" punching between a NAT with
//! endpoint-independent mapping and a symmetric one, for a connection that
//! is still on the relay after its first direct attempts.
//!
//! A symmetric NAT gives each (local socket, destination) a random external
//! port; a NAT with endpoint-independent mapping keeps one external port for
//! everything but lets in only the exact (address, port) its host sent to.
//! Neither side knows which one it is, so each does both halves:
//!
//! * **Spare probe**: one knock to the peer's observed address, sent from
//!   [`HARD_NAT_SPARE_SOCKETS`] fresh local sockets (the
//!   [`Transmit::spare_sockets`] hint) with the opening hop limit. Behind a
//!   symmetric NAT that makes that many mappings toward the peer, at random
//!   ports, without reaching the peer's NAT (no conntrack collision there).
//! * **Knocks**: [`HARD_NAT_KNOCKS`] knocks from our own socket to random
//!   ports of the peer's observed IP address, paced. Each one opens our
//!   filter toward that port; one that lands on a spare's mapping reaches
//!   the peer, which answers it through that spare. With K spares and N
//!   knocks over 64 512 ports, P(hit) ≈ 1 − exp(−K·N/64 512): 98 % here.
//!
//! A KnockReply carrying the token of its source address starts a path
//! validation of that address (§6.7, §11.6). Tokens are not stored: each is
//! `MAC(round key, address)`.
//!
//! Bounds: knocks go only to the IP address the rendezvous server observed
//! for the peer, at most [`HARD_NAT_KNOCKS`] per round, one round per
//! introduction, and everything the round sends (the spare probe counted
//! once per spare) is drawn from the endpoint's own budget of
//! [`HARD_NAT_BYTES_PER_MINUTE`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, trace};

use super::punch::KnockToken;
use super::unanswered_budget::UnansweredBudget;
use super::{Connection, State, Timer, Transmit};
use crate::crypto::cookie::{address_mac, MacKeys};
use crate::random::Rng;
use crate::wire::{Knock, KnockReply, KNOCK_SIZE, KNOCK_TOKEN_LEN, MAC_LEN};

/// Spare sockets one hard-NAT round asks the adapter for.
pub const HARD_NAT_SPARE_SOCKETS: u16 = 256;
/// Knocks one hard-NAT round sends to random ports of the peer's IP.
pub const HARD_NAT_KNOCKS: u16 = 1024;
/// Bytes an endpoint sends, at most, in hard-NAT rounds per minute, across
/// all its connections: one round (256 spare knocks and 1024 knocks,
/// 43 520 bytes) fits, a second one in the same minute does not.
pub const HARD_NAT_BYTES_PER_MINUTE: u64 = 64 * 1024;

/// Knocks sent per tick, and the tick: about 1000 knocks a second.
const KNOCKS_PER_TICK: u16 = 8;
const TICK: Duration = Duration::from_millis(8);
/// The knocks start this long after the spare probe: the peer's round
/// starts about when ours does, and its spares' mappings must exist
/// before our knocks reach its NAT.
const KNOCKS_AFTER: Duration = Duration::from_millis(500);
/// The lowest port knocked: NATs allocate above the well-known ports.
const LOWEST_PORT: u16 = 1024;
/// Answers that start a path validation, at most, per round.
const MAX_HITS: u8 = 4;

/// What the round sends next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HardNatSend {
    /// A knock to the peer's observed address, from
    /// [`HARD_NAT_SPARE_SOCKETS`] spare sockets, with the opening hop limit.
    SpareProbe { to: SocketAddr, token: KnockToken },
    /// A knock from our socket to a random port of the peer's observed IP.
    Knock { to: SocketAddr, token: KnockToken },
}

/// One hard-NAT round of a connection.
pub(crate) struct HardNatRound {
    /// The peer's address as the rendezvous server observed it.
    observed: SocketAddr,
    /// Keys the tokens.
    key: [u8; 32],
    /// Keys the knocks' MAC (the peer's static key, spec §9.3.8).
    pub(crate) knock_keys: Box<MacKeys>,
    spare_probe_due: bool,
    knocks_left: u16,
    next_knock_at: Instant,
    hits: u8,
}

impl std::fmt::Debug for HardNatRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HardNatRound")
            .field("observed", &self.observed)
            .field("knocks_left", &self.knocks_left)
            .field("hits", &self.hits)
            .finish_non_exhaustive()
    }
}

impl HardNatRound {
    /// A round toward `observed`, the address the rendezvous server saw for
    /// the peer, starting at `now`.
    pub(crate) fn new(
        now: Instant,
        observed: SocketAddr,
        knock_keys: MacKeys,
        rng: &mut Rng,
    ) -> Self {
        HardNatRound {
            observed,
            key: rng.seed32(),
            knock_keys: Box::new(knock_keys),
            spare_probe_due: true,
            knocks_left: HARD_NAT_KNOCKS,
            next_knock_at: now + KNOCKS_AFTER,
            hits: 0,
        }
    }

    /// The token of the knock sent to `addr`.
    pub(crate) fn token_for(&self, addr: SocketAddr) -> KnockToken {
        let mac = address_mac(&self.key, addr);
        let mut token = [0u8; KNOCK_TOKEN_LEN];
        token.copy_from_slice(&mac[..KNOCK_TOKEN_LEN]);
        token
    }

    /// What to send at `now`, if anything, paid from `budget`. Ports come
    /// from `rng` (the connection's, seeded by the endpoint's config).
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        budget: &mut UnansweredBudget,
    ) -> Option<HardNatSend> {
        let size = KNOCK_SIZE as u64;
        if self.spare_probe_due {
            self.spare_probe_due = false;
            if budget.try_spend(now, size * u64::from(HARD_NAT_SPARE_SOCKETS)) {
                let to = self.observed;
                return Some(HardNatSend::SpareProbe {
                    to,
                    token: self.token_for(to),
                });
            }
        }
        if self.knocks_left == 0 || now < self.next_knock_at {
            return None;
        }
        if !budget.try_spend(now, size) {
            // The endpoint's budget is spent: the round ends here.
            self.knocks_left = 0;
            return None;
        }
        self.knocks_left -= 1;
        if self.knocks_left % KNOCKS_PER_TICK == 0 {
            self.next_knock_at = now + TICK;
        }
        let span = u64::from(u16::MAX - LOWEST_PORT) + 1;
        let port = LOWEST_PORT + rng.below(span) as u16;
        let to = SocketAddr::new(self.observed.ip(), port);
        Some(HardNatSend::Knock {
            to,
            token: self.token_for(to),
        })
    }

    /// When the round has something to send next; `None` once it is over.
    pub(crate) fn next_at(&self, now: Instant) -> Option<Instant> {
        if self.spare_probe_due {
            return Some(now);
        }
        (self.knocks_left > 0).then_some(self.next_knock_at)
    }

    /// A KnockReply with `token` arrived from `from`: whether it answers one
    /// of this round's knocks (its source is on the observed IP address and
    /// echoes the token of that very address), and may start a path
    /// validation (at most [`MAX_HITS`] per round).
    pub(crate) fn on_knock_reply(&mut self, from: SocketAddr, token: &KnockToken) -> bool {
        if from.ip() != self.observed.ip() || self.hits >= MAX_HITS {
            return false;
        }
        let expected = self.token_for(from);
        if expected
            .iter()
            .zip(token)
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
        {
            return false;
        }
        self.hits += 1;
        true
    }
}

impl Connection {
    /// Starts a hard-NAT round toward `observed`, the peer's address as the
    /// rendezvous server saw it (spec §4.4). Only an established IPv4
    /// connection whose peer is authenticated runs one, and one at a time.
    /// Returns whether the round started.
    pub(crate) fn start_hard_nat_round(&mut self, now: Instant, observed: SocketAddr) -> bool {
        let Some(peer) = self.peer else { return false };
        if !matches!(self.state, State::Established)
            || !observed.is_ipv4()
            || self
                .hard_nat
                .as_ref()
                .is_some_and(|r| r.next_at(now).is_some())
        {
            return false;
        }
        debug!(cid = %self.local_cid, %observed, "hard-NAT round");
        self.hard_nat = Some(HardNatRound::new(
            now,
            observed,
            MacKeys::for_responder(&peer),
            &mut self.rng,
        ));
        self.timers.set(Timer::Punch, now);
        true
    }

    /// The next datagram of the hard-NAT round, if one is due: a knock,
    /// written into `buf`. Re-arms the round's timer (the punch timer,
    /// idle once established).
    pub(super) fn poll_hard_nat(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        budget: &mut UnansweredBudget,
    ) -> Option<Transmit> {
        let round = self.hard_nat.as_mut()?;
        // Over (its key still checks late replies), or not due: the timer
        // is already set to what is due next.
        if round.next_at(now)? > now {
            return None;
        }
        let send = round.poll(now, &mut self.rng, budget);
        match round.next_at(now) {
            Some(at) => self.timers.set(Timer::Punch, at),
            None => self.timers.stop(Timer::Punch),
        }
        let (to, token, spare_sockets, hop_limit) = match send? {
            HardNatSend::SpareProbe { to, token } => (
                to,
                token,
                HARD_NAT_SPARE_SOCKETS,
                self.config.punch_opening_hop_limit,
            ),
            HardNatSend::Knock { to, token } => (to, token, 0, None),
        };
        let knock = Knock {
            sender_cid: self.local_cid,
            token,
            mac: [0; MAC_LEN],
        };
        let len = knock.emit(buf).ok()?;
        round.knock_keys.stamp_knock(&mut buf[..len]);
        self.stats.knocks_sent += 1;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        trace!(cid = %self.local_cid, %to, spare_sockets, "hard-NAT knock");
        Some(Transmit {
            destination: to,
            size: len,
            hop_limit,
            spare_sockets,
        })
    }

    /// A KnockReply reached an established connection: if it answers a
    /// knock of the hard-NAT round, the address it came from is validated
    /// as a path (spec §6.7, §11.6).
    pub(super) fn hard_nat_knock_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        reply: &KnockReply,
    ) {
        let Some(round) = &mut self.hard_nat else {
            return;
        };
        if round.on_knock_reply(from, &reply.token) {
            debug!(cid = %self.local_cid, %from, "hard-NAT knock answered: probing the path");
            self.probe_path(now, from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    fn round(seed: u64, now: Instant) -> (HardNatRound, Rng) {
        let mut rng = Rng::from_seed(seed);
        let peer = Keypair::generate(&mut Rng::from_seed(99)).public();
        let observed: SocketAddr = "203.0.113.22:40000".parse().unwrap();
        let r = HardNatRound::new(now, observed, MacKeys::for_responder(&peer), &mut rng);
        (r, rng)
    }

    /// Every send of the round, polling at each deadline.
    fn drain(
        r: &mut HardNatRound,
        rng: &mut Rng,
        budget: &mut UnansweredBudget,
        t0: Instant,
    ) -> Vec<(Instant, HardNatSend)> {
        let mut out = Vec::new();
        let mut now = t0;
        while let Some(at) = r.next_at(now) {
            now = now.max(at);
            while let Some(s) = r.poll(now, rng, budget) {
                out.push((now, s));
            }
        }
        out
    }

    #[test]
    fn a_round_is_one_spare_probe_then_paced_knocks_to_the_observed_ip_only() {
        let t0 = Instant::now();
        let (mut r, mut rng) = round(1, t0);
        let mut budget = UnansweredBudget::per_minute(HARD_NAT_BYTES_PER_MINUTE);
        let sends = drain(&mut r, &mut rng, &mut budget, t0);
        let observed: SocketAddr = "203.0.113.22:40000".parse().unwrap();
        assert_eq!(
            sends[0],
            (
                t0,
                HardNatSend::SpareProbe {
                    to: observed,
                    token: r.token_for(observed)
                }
            )
        );
        let knocks: Vec<_> = sends[1..]
            .iter()
            .map(|(at, s)| match s {
                HardNatSend::Knock { to, .. } => (*at, *to),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(knocks.len(), usize::from(HARD_NAT_KNOCKS));
        assert!(knocks.iter().all(|(_, to)| to.ip() == observed.ip()));
        assert!(knocks.iter().all(|(_, to)| to.port() >= LOWEST_PORT));
        assert!(knocks[0].0 >= t0 + KNOCKS_AFTER, "the spares first");
        // Paced: 8 per 8 ms, so 1024 knocks take about a second.
        let took = knocks.last().unwrap().0 - knocks[0].0;
        assert_eq!(
            took,
            TICK * u32::from(HARD_NAT_KNOCKS / KNOCKS_PER_TICK - 1)
        );
        let distinct: std::collections::HashSet<u16> =
            knocks.iter().map(|(_, to)| to.port()).collect();
        assert!(distinct.len() > 900, "spread over the port range");
    }

    #[test]
    fn the_same_seed_knocks_the_same_ports_and_another_seed_others() {
        let t0 = Instant::now();
        let ports = |seed| {
            let (mut r, mut rng) = round(seed, t0);
            let mut budget = UnansweredBudget::per_minute(HARD_NAT_BYTES_PER_MINUTE);
            drain(&mut r, &mut rng, &mut budget, t0)
                .into_iter()
                .filter_map(|(_, s)| match s {
                    HardNatSend::Knock { to, .. } => Some(to.port()),
                    HardNatSend::SpareProbe { .. } => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ports(5), ports(5));
        assert_ne!(ports(5), ports(6));
    }

    #[test]
    fn only_the_token_of_the_answering_address_on_the_observed_ip_counts() {
        let t0 = Instant::now();
        let (mut r, _) = round(2, t0);
        let hit: SocketAddr = "203.0.113.22:51234".parse().unwrap();
        let elsewhere: SocketAddr = "198.51.100.9:51234".parse().unwrap();
        let other_port: SocketAddr = "203.0.113.22:51235".parse().unwrap();
        // The token of one address, echoed from another port or another IP.
        assert!(!r.on_knock_reply(other_port, &r.token_for(hit)));
        assert!(!r.on_knock_reply(elsewhere, &r.token_for(elsewhere)));
        assert!(!r.on_knock_reply(hit, &[0; KNOCK_TOKEN_LEN]));
        assert!(r.on_knock_reply(hit, &r.token_for(hit)));
        // A flood of right answers starts at most MAX_HITS validations.
        let hits = (0..100)
            .filter(|i| {
                let a = SocketAddr::new(hit.ip(), 2000 + i);
                r.on_knock_reply(a, &r.token_for(a))
            })
            .count();
        assert_eq!(hits, usize::from(MAX_HITS) - 1);
    }

    #[test]
    fn rounds_of_many_connections_share_the_endpoint_budget() {
        // A flood of introductions (or a lying server naming a victim as
        // the observed address): whatever the number of rounds, the victim
        // gets at most the endpoint's per-minute budget, plus what a minute
        // earns back.
        let t0 = Instant::now();
        let mut budget = UnansweredBudget::per_minute(HARD_NAT_BYTES_PER_MINUTE);
        let mut bytes = 0u64;
        let mut last = t0;
        for seed in 0..50 {
            let start = t0 + Duration::from_millis(100 * seed);
            let (mut r, mut rng) = round(seed, start);
            for (at, s) in drain(&mut r, &mut rng, &mut budget, start) {
                last = last.max(at);
                bytes += match s {
                    HardNatSend::SpareProbe { .. } => {
                        KNOCK_SIZE as u64 * u64::from(HARD_NAT_SPARE_SOCKETS)
                    }
                    HardNatSend::Knock { .. } => KNOCK_SIZE as u64,
                };
            }
        }
        let minutes = (last - t0).as_secs_f64() / 60.0;
        let allowed = HARD_NAT_BYTES_PER_MINUTE as f64 * (1.0 + minutes);
        assert!((bytes as f64) <= allowed, "{bytes} bytes in {minutes} min");
        assert!(bytes >= HARD_NAT_BYTES_PER_MINUTE - KNOCK_SIZE as u64);
    }
}
