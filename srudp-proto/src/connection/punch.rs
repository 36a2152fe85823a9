//! Hole punching: the schedule of probes toward a peer's candidate
//! addresses (spec §4.4).
//!
//! One round probes every candidate, spaced by `punch_probe_spacing`; rounds
//! repeat with a gap that doubles from `handshake_retry_initial` up to
//! `handshake_retry_max`, until a response authenticates or the handshake
//! timeout passes. Outgoing probes also open our own NAT toward the peer,
//! which is what lets the peer's probes in.
//!
//! What a probe is depends on whether the candidate has answered us. A
//! candidate the application gave us itself is trusted and gets the cached
//! 1200-byte HandshakeInit. A candidate from an introduction (a third party)
//! gets a 34-byte Knock carrying a token only it is sent; once the token
//! comes back from it in a KnockReply, it gets the HandshakeInit at once.
//! Knocks to a candidate that never answers stop after
//! [`MAX_KNOCKS_PER_CANDIDATE`], after [`UNANSWERED_BYTES_PER_CONNECTION`]
//! for the whole connection, and when the endpoint's per-minute budget is
//! spent: nobody can aim our handshakes at a third party.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::unanswered_budget::UnansweredBudget;
use crate::config::TransportConfig;
use crate::random::Rng;
use crate::wire::{KNOCK_SIZE, KNOCK_TOKEN_LEN};

/// Most candidate addresses one connection probes.
pub const MAX_CANDIDATES: usize = 16;
/// Knocks one connection sends, at most, to a candidate that never answers.
pub const MAX_KNOCKS_PER_CANDIDATE: u8 = 4;
/// Bytes one connection sends, at most, to candidates that never answer:
/// eight knocks. A Connect costs its sender about 40 bytes (and an
/// unsolicited Introduce costs a lying server at least 60), so one
/// introduction makes us send third parties at most about 7× what it cost.
pub const UNANSWERED_BYTES_PER_CONNECTION: u64 = 8 * KNOCK_SIZE as u64;

/// A knock token: a secret for one candidate address.
pub(crate) type KnockToken = [u8; KNOCK_TOKEN_LEN];

/// What to send next, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The cached HandshakeInit, to a candidate that is trusted or answered.
    Init(SocketAddr),
    /// A knock with the candidate's token; `opening` when it goes ahead of
    /// a coordinated start (spec §4.4: sent with the small opening hop
    /// limit, it opens our own NAT toward the candidate without reaching
    /// the peer's).
    Knock {
        to: SocketAddr,
        token: KnockToken,
        opening: bool,
    },
}

/// What we know of one candidate address.
#[derive(Debug)]
struct Reach {
    token: KnockToken,
    /// Trusted (given by the application) or answered a knock.
    answered: bool,
    knocks: u8,
}

#[derive(Debug)]
pub(crate) struct Punch {
    candidates: Vec<SocketAddr>,
    /// Beside `candidates`, index for index.
    reach: Vec<Reach>,
    next_index: usize,
    round_gap: Duration,
    next_at: Instant,
    /// Candidates to send the init again at once, out of schedule (a cookie
    /// or a knock reply arrived from them, spec §4.4, §4.8), and since when.
    urgent: Vec<SocketAddr>,
    urgent_at: Instant,
    /// Peer-reflexive addresses owed one HandshakeInit at once, each for an
    /// authenticated initiation of the peer that came from there (spec
    /// §4.4); at most [`MAX_CANDIDATES`].
    reflexive: Vec<SocketAddr>,
    /// No HandshakeInit before this instant (a coordinated start, spec
    /// §11.4); knocks may go earlier, so that their round trip is over by then.
    inits_from: Instant,
    /// Bytes of knocks sent to candidates that have not answered.
    unanswered_bytes: u64,
}

impl Punch {
    /// A schedule over `candidates`: trusted ones (the application's own)
    /// get the init from the first round, the others knocks until they answer.
    pub(crate) fn new(
        candidates: &[SocketAddr],
        trusted: bool,
        now: Instant,
        config: &TransportConfig,
        rng: &mut Rng,
    ) -> Self {
        let mut punch = Punch {
            candidates: Vec::with_capacity(candidates.len()),
            reach: Vec::with_capacity(candidates.len()),
            next_index: 0,
            round_gap: config.handshake_retry_initial,
            next_at: now,
            urgent: Vec::new(),
            urgent_at: now,
            reflexive: Vec::new(),
            inits_from: now,
            unanswered_bytes: 0,
        };
        for &addr in candidates {
            punch.push(addr, trusted, rng);
        }
        punch
    }

    fn push(&mut self, addr: SocketAddr, trusted: bool, rng: &mut Rng) {
        let mut token = [0u8; KNOCK_TOKEN_LEN];
        rng.fill(&mut token);
        self.candidates.push(addr);
        self.reach.push(Reach {
            token,
            answered: trusted,
            knocks: 0,
        });
    }

    /// The probe due at `now`, if any. Knocks are charged to `budget`.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        config: &TransportConfig,
        budget: &mut UnansweredBudget,
    ) -> Option<Probe> {
        if let Some(addr) = self.reflexive.pop() {
            return Some(Probe::Init(addr));
        }
        if now >= self.inits_from {
            if let Some(addr) = self.urgent.pop() {
                return Some(Probe::Init(addr));
            }
        }
        if now < self.next_at || self.candidates.is_empty() {
            return None;
        }
        // At most one pass: candidates that may not be knocked any more are
        // skipped without a gap, and a round with nothing to send ends early.
        for _ in 0..self.candidates.len() {
            let probe = self.probe_of(self.next_index, now, budget);
            self.next_index += 1;
            let round_over = self.next_index == self.candidates.len();
            if round_over {
                self.next_index = 0;
                if now < self.inits_from {
                    // A round of knocks ahead of the start: the first full
                    // round begins at the start, with the first gap.
                    self.next_at = self.inits_from;
                } else {
                    self.next_at = now + self.round_gap;
                    self.round_gap = (self.round_gap * 2).min(config.handshake_retry_max);
                }
            }
            if probe.is_some() {
                if !round_over {
                    self.next_at = now + config.punch_probe_spacing;
                }
                return probe;
            }
            if round_over {
                return None;
            }
        }
        None
    }

    /// What candidate `i` gets this round: the init if it answered, a knock
    /// while it and the budgets allow, otherwise nothing.
    fn probe_of(&mut self, i: usize, now: Instant, budget: &mut UnansweredBudget) -> Option<Probe> {
        let (addr, c) = (self.candidates[i], &mut self.reach[i]);
        if c.answered {
            return (now >= self.inits_from).then_some(Probe::Init(addr));
        }
        let size = KNOCK_SIZE as u64;
        if c.knocks >= MAX_KNOCKS_PER_CANDIDATE
            || self.unanswered_bytes + size > UNANSWERED_BYTES_PER_CONNECTION
            || !budget.try_spend(now, size)
        {
            return None;
        }
        c.knocks += 1;
        self.unanswered_bytes += size;
        Some(Probe::Knock {
            to: addr,
            token: c.token,
            opening: now < self.inits_from,
        })
    }

    pub(crate) fn next_at(&self) -> Instant {
        if !self.reflexive.is_empty() {
            return self.urgent_at.min(self.next_at).min(self.inits_from);
        }
        if self.urgent.is_empty() {
            self.next_at
        } else {
            self.urgent_at.max(self.inits_from).min(self.next_at)
        }
    }

    /// Sends the init to `addr` once more at once, outside the schedule, if
    /// it is a candidate that answered.
    pub(crate) fn probe_now(&mut self, addr: SocketAddr, now: Instant) {
        let answered = self
            .candidates
            .iter()
            .zip(&self.reach)
            .any(|(a, c)| *a == addr && c.answered);
        if answered && !self.urgent.contains(&addr) {
            if self.urgent.is_empty() {
                self.urgent_at = now;
            }
            self.urgent.push(addr);
        }
    }

    /// An initiation that authenticated as the peer arrived from `from`:
    /// answer it with one HandshakeInit at once, whether or not `from` is a
    /// candidate, and even before a coordinated start (the peer has
    /// started). Its NAT gave it `from` toward us (perhaps not the address
    /// the rendezvous saw, after a conntrack clash), and our answer is a
    /// reply through that mapping. One init per authenticated datagram: a
    /// replay of the peer's initiation from a spoofed source makes us send
    /// that source one datagram no larger than the replay, never a stream
    /// of them. Returns whether an init is now due.
    pub(crate) fn answer_peer_reflexive(&mut self, from: SocketAddr, now: Instant) -> bool {
        if self.reflexive.contains(&from) || self.reflexive.len() >= MAX_CANDIDATES {
            return false;
        }
        if self.reflexive.is_empty() && self.urgent.is_empty() {
            self.urgent_at = now;
        }
        self.reflexive.push(from);
        true
    }

    /// A KnockReply carrying `token` arrived from `from`. If it is the token
    /// we sent to that very address, the address has answered: it gets the
    /// init at once and from then on. Returns whether it was new.
    pub(crate) fn on_knock_reply(
        &mut self,
        from: SocketAddr,
        token: &KnockToken,
        now: Instant,
    ) -> bool {
        let Some(c) = self
            .candidates
            .iter()
            .zip(self.reach.iter_mut())
            .find_map(|(a, c)| (*a == from && !c.answered).then_some(c))
        else {
            return false;
        };
        // Only the address the token was sent to can echo it: a reply from
        // anywhere else, or with another candidate's token, unlocks nothing.
        if !tokens_equal(&c.token, token) {
            return false;
        }
        c.answered = true;
        self.probe_now(from, now);
        true
    }

    /// Sends no HandshakeInit before `at` (a coordinated start). Candidates
    /// that have not answered are knocked at once, so that a reply can
    /// arrive by then: the knock's round trip overlaps the wait instead of
    /// delaying the handshake. With nothing to knock, nothing is sent before `at`.
    pub(crate) fn delay_until(&mut self, at: Instant) {
        self.inits_from = self.inits_from.max(at);
        if self.reach.iter().all(|r| r.answered) {
            self.next_at = self.next_at.max(at);
        }
    }

    /// Ends a [`delay_until`](Self::delay_until) hold: the first full round
    /// starts at `now` (if it had not started yet).
    pub(crate) fn start_now(&mut self, now: Instant) {
        if now < self.inits_from {
            self.inits_from = now;
            self.next_at = self.next_at.min(now);
        }
    }

    pub(crate) fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// Adds a candidate learned late (for example the relay of a
    /// rendezvous); probes it at once. A `trusted` one gets the init.
    pub(crate) fn add_candidate(
        &mut self,
        addr: SocketAddr,
        trusted: bool,
        now: Instant,
        rng: &mut Rng,
    ) -> bool {
        if self.candidates.contains(&addr) || self.candidates.len() >= MAX_CANDIDATES {
            return false;
        }
        self.push(addr, trusted, rng);
        // Probed at once, even before a coordinated start (as before knocks).
        self.next_at = self.next_at.min(now);
        self.inits_from = self.inits_from.min(now);
        true
    }
}

/// Compares two tokens without an early exit.
fn tokens_equal(a: &KnockToken, b: &KnockToken) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rounds_probe_every_trusted_candidate_with_the_init_then_back_off() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(1);
        let t0 = Instant::now();
        let (a, b) = (addr("192.0.2.1:1"), addr("198.51.100.1:2"));
        let mut p = Punch::new(&[a, b], true, t0, &config, &mut rng);
        assert_eq!(p.poll(t0, &config, &mut budget), Some(Probe::Init(a)));
        assert_eq!(
            p.poll(t0, &config, &mut budget),
            None,
            "spaced within a round"
        );
        let t1 = t0 + config.punch_probe_spacing;
        assert_eq!(p.poll(t1, &config, &mut budget), Some(Probe::Init(b)));
        assert_eq!(p.next_at(), t1 + config.handshake_retry_initial);
        let t2 = p.next_at();
        assert_eq!(p.poll(t2, &config, &mut budget), Some(Probe::Init(a)));
        let t3 = p.next_at();
        assert_eq!(p.poll(t3, &config, &mut budget), Some(Probe::Init(b)));
        assert_eq!(p.next_at(), t3 + config.handshake_retry_initial * 2);
    }

    /// Polls every probe due until `until`, jumping from deadline to deadline.
    fn drain(
        p: &mut Punch,
        from: Instant,
        until: Instant,
        budget: &mut UnansweredBudget,
    ) -> Vec<Probe> {
        let config = TransportConfig::default();
        let mut out = Vec::new();
        let mut now = from;
        while now <= until {
            while let Some(probe) = p.poll(now, &config, budget) {
                out.push(probe);
            }
            now = p.next_at().max(now + Duration::from_micros(1));
        }
        out
    }

    #[test]
    fn introduced_candidates_get_knocks_until_they_answer_then_the_init() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(2);
        let t0 = Instant::now();
        let (a, b) = (addr("192.0.2.1:1"), addr("198.51.100.1:2"));
        let mut p = Punch::new(&[a, b], false, t0, &config, &mut rng);
        let Some(Probe::Knock {
            to, token: token_a, ..
        }) = p.poll(t0, &config, &mut budget)
        else {
            panic!("an introduced candidate is knocked first");
        };
        assert_eq!(to, a);
        let t1 = t0 + config.punch_probe_spacing;
        let Some(Probe::Knock {
            to, token: token_b, ..
        }) = p.poll(t1, &config, &mut budget)
        else {
            panic!("knock b");
        };
        assert_eq!(to, b);
        assert_ne!(token_a, token_b, "one secret per address");
        // b's token from a, a's token from b, a guessed token: nothing.
        assert!(!p.on_knock_reply(a, &token_b, t1));
        assert!(!p.on_knock_reply(b, &token_a, t1));
        assert!(!p.on_knock_reply(a, &[0; KNOCK_TOKEN_LEN], t1));
        assert_eq!(p.poll(t1, &config, &mut budget), None);
        // a echoes its own token: the init goes there at once.
        assert!(p.on_knock_reply(a, &token_a, t1));
        assert!(!p.on_knock_reply(a, &token_a, t1), "answered once");
        assert_eq!(p.next_at(), t1);
        assert_eq!(p.poll(t1, &config, &mut budget), Some(Probe::Init(a)));
        // Next round: the init to a, still a knock to b.
        let t2 = p.next_at();
        assert_eq!(p.poll(t2, &config, &mut budget), Some(Probe::Init(a)));
        let t3 = p.next_at();
        assert!(
            matches!(p.poll(t3, &config, &mut budget), Some(Probe::Knock { to, opening: false, .. }) if to == b)
        );
    }

    #[test]
    fn knocks_go_ahead_of_a_coordinated_start_and_inits_wait_for_it() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(7);
        let t0 = Instant::now();
        let start = t0 + Duration::from_millis(30);
        let a = addr("192.0.2.1:1");
        let mut p = Punch::new(&[a], false, t0, &config, &mut rng);
        p.delay_until(start);
        let Some(Probe::Knock {
            token,
            opening: true,
            ..
        }) = p.poll(t0, &config, &mut budget)
        else {
            panic!("an opening knock at once");
        };
        assert_eq!(p.next_at(), start, "the first full round at the start");
        // Answered before the start: the init still waits for it.
        let t1 = t0 + Duration::from_millis(20);
        assert!(p.on_knock_reply(a, &token, t1));
        assert_eq!(p.poll(t1, &config, &mut budget), None);
        assert_eq!(p.next_at(), start);
        assert_eq!(p.poll(start, &config, &mut budget), Some(Probe::Init(a)));
        // A trusted candidate: nothing at all before the start.
        let mut q = Punch::new(&[a], true, t0, &config, &mut rng);
        q.delay_until(start);
        assert_eq!(q.poll(t0, &config, &mut budget), None);
        assert_eq!(q.next_at(), start);
        assert_eq!(q.poll(start, &config, &mut budget), Some(Probe::Init(a)));
    }

    #[test]
    fn knocks_to_a_silent_candidate_stop() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(3);
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut p = Punch::new(&[a, b], false, t0, &config, &mut rng);
        let probes = drain(&mut p, t0, t0 + config.handshake_timeout, &mut budget);
        let to_a = probes
            .iter()
            .filter(|x| matches!(x, Probe::Knock { to, .. } if *to == a))
            .count();
        assert_eq!(to_a, usize::from(MAX_KNOCKS_PER_CANDIDATE));
        assert_eq!(probes.len(), 2 * usize::from(MAX_KNOCKS_PER_CANDIDATE));
        assert!(
            probes.iter().all(|x| matches!(x, Probe::Knock { .. })),
            "never an init"
        );
    }

    #[test]
    fn sixteen_silent_candidates_share_one_connection_budget() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(4);
        let t0 = Instant::now();
        let many: Vec<SocketAddr> = (1..=16).map(|i| addr(&format!("10.0.0.{i}:9"))).collect();
        let mut p = Punch::new(&many, false, t0, &config, &mut rng);
        let probes = drain(&mut p, t0, t0 + config.handshake_timeout, &mut budget);
        let bytes = probes.len() as u64 * KNOCK_SIZE as u64;
        assert!(bytes <= UNANSWERED_BYTES_PER_CONNECTION, "{bytes} bytes");
        assert_eq!(
            probes.len() as u64,
            UNANSWERED_BYTES_PER_CONNECTION / KNOCK_SIZE as u64
        );
    }

    #[test]
    fn connections_share_the_endpoint_budget() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(5);
        let t0 = Instant::now();
        let mut knocks = 0u64;
        for i in 0..100 {
            let c = addr(&format!("10.1.0.{i}:9"));
            let mut p = Punch::new(&[c], false, t0, &config, &mut rng);
            knocks += drain(&mut p, t0, t0 + config.handshake_timeout, &mut budget).len() as u64;
        }
        // Without the endpoint's budget: 100 × 4 knocks. With it: what a
        // minute holds, plus what it earned during the 10 s of punching.
        let per_minute = crate::connection::unanswered_budget::UNANSWERED_BYTES_PER_MINUTE;
        let knock = KNOCK_SIZE as u64;
        assert!(knocks >= per_minute / knock, "{knocks} knocks");
        assert!(
            knocks * knock <= per_minute + per_minute / 6,
            "{knocks} knocks"
        );
        assert!(knocks < 100 * u64::from(MAX_KNOCKS_PER_CANDIDATE));
    }

    #[test]
    fn a_cookie_retry_goes_only_to_a_candidate_that_answered() {
        let config = TransportConfig::default();
        let mut budget = UnansweredBudget::default();
        let mut rng = Rng::from_seed(6);
        let t0 = Instant::now();
        let a = addr("192.0.2.1:1");
        let mut p = Punch::new(&[a], false, t0, &config, &mut rng);
        assert!(matches!(
            p.poll(t0, &config, &mut budget),
            Some(Probe::Knock { .. })
        ));
        p.probe_now(a, t0);
        assert_eq!(p.poll(t0, &config, &mut budget), None);
    }
}
