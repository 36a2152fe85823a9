//! The rendezvous server's relay sessions (spec §11.5).
//!
//! An introduction only *offers* the pair a session: a random name and a
//! small record, with no relay capacity. The session is *allotted* — counted
//! against `max_relays` and the quota of the source that asked for the
//! introduction — when a member first sends a RelayData through it, that is
//! when the pair needs the relay, and released when it has been idle for the
//! idle timeout. Offers are bounded in total and per source of the caller,
//! and expire the same way.
//!
//! Charging the caller's source, not the sender's, means that nobody can
//! spend another source's quota: a host that asks for introductions to many
//! peers pays for every relay they end up using, even if the peers are the
//! ones that relay first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::source::{SourceCounts, SourcePrefix};
use crate::token_bucket::{RateLimit, TokenBucket};
use crate::{PublicKey, Rng};

/// One pair's relay.
#[derive(Debug)]
pub(crate) struct RelaySession {
    /// The two peers, lower key first.
    pub(crate) peers: [PublicKey; 2],
    /// Bytes this pair may still relay.
    pub(crate) bucket: TokenBucket,
    pub(crate) last_used: Instant,
    /// Earliest time a packet from an unexpected address may trigger a path
    /// probe of a member's rendezvous connection.
    pub(crate) next_poke: Instant,
    /// The source that asked for the introduction that offered the session:
    /// what the offer, and once allotted the session, counts against.
    caller: SourcePrefix,
    /// Whether the session has been allotted relay capacity.
    allotted: bool,
}

impl RelaySession {
    /// Whether the session has been allotted relay capacity.
    #[cfg(test)]
    fn is_allotted(&self) -> bool {
        self.allotted
    }
}

/// The bounds of the relay table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayLimits {
    /// Sessions allotted at once.
    pub(crate) max_relays: usize,
    /// Sessions allotted for introductions one source asked for.
    pub(crate) max_relays_per_source: usize,
    /// Sessions offered and not yet allotted.
    pub(crate) max_offers: usize,
    /// Offers made by introductions asked from one source.
    pub(crate) max_offers_per_source: usize,
    /// A session (offered or allotted) unused this long is released.
    pub(crate) idle: Duration,
    /// What each pair may relay.
    pub(crate) pair_rate: RateLimit,
}

/// Why a session could not be allotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllotError {
    /// No such session (never offered, or released).
    Unknown,
    /// `max_relays` sessions are allotted.
    Full,
    /// The caller's source holds its quota.
    SourceQuota,
}

#[derive(Debug, Default)]
pub(crate) struct RelayTable {
    sessions: BTreeMap<u64, RelaySession>,
    by_pair: BTreeMap<[PublicKey; 2], u64>,
    /// When to look at a session again (lazily re-armed while it is used).
    checks: BTreeSet<(Instant, u64)>,
    offers: SourceCounts,
    allotted: SourceCounts,
}

impl RelayTable {
    /// Sessions allotted.
    pub(crate) fn len(&self) -> usize {
        self.allotted.total()
    }

    /// Sessions offered and not yet allotted.
    pub(crate) fn offer_count(&self) -> usize {
        self.offers.total()
    }

    /// Sessions allotted for introductions `source` asked for.
    pub(crate) fn allotted_to(&self, source: SourcePrefix) -> usize {
        self.allotted.of(source)
    }

    /// Whether the pair `a`, `b` holds a session (offered or allotted): the
    /// server introduced them to each other within `relay_idle_timeout`.
    pub(crate) fn has_pair(&self, a: PublicKey, b: PublicKey) -> bool {
        let pair = if a < b { [a, b] } else { [b, a] };
        self.by_pair.contains_key(&pair)
    }

    /// The session of the pair `a`, `b` for an introduction asked from
    /// `caller`: the existing one (kept alive), or a new offer if the bounds
    /// allow one. `None` when they do not: the introduction goes on without
    /// a relay.
    pub(crate) fn offer(
        &mut self,
        a: PublicKey,
        b: PublicKey,
        caller: SourcePrefix,
        now: Instant,
        limits: &RelayLimits,
        rng: &mut Rng,
    ) -> Option<u64> {
        let pair = if a < b { [a, b] } else { [b, a] };
        if let Some(&id) = self.by_pair.get(&pair) {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_used = now;
            }
            return Some(id);
        }
        if self.offers.total() >= limits.max_offers
            || self.offers.of(caller) >= limits.max_offers_per_source
        {
            return None;
        }
        let id = loop {
            let id = rng.next_u64();
            if id != 0 && !self.sessions.contains_key(&id) {
                break id;
            }
        };
        self.sessions.insert(
            id,
            RelaySession {
                peers: pair,
                bucket: TokenBucket::new(limits.pair_rate),
                last_used: now,
                next_poke: now,
                caller,
                allotted: false,
            },
        );
        self.offers.add(caller);
        self.by_pair.insert(pair, id);
        self.checks.insert((now + limits.idle, id));
        Some(id)
    }

    /// Allots relay capacity to session `id`, which a member is using for
    /// the first time (nothing happens if it is allotted), against its
    /// caller's source.
    pub(crate) fn allot(&mut self, id: u64, limits: &RelayLimits) -> Result<(), AllotError> {
        let s = self.sessions.get_mut(&id).ok_or(AllotError::Unknown)?;
        if s.allotted {
            return Ok(());
        }
        if self.allotted.total() >= limits.max_relays {
            return Err(AllotError::Full);
        }
        if self.allotted.of(s.caller) >= limits.max_relays_per_source {
            return Err(AllotError::SourceQuota);
        }
        self.offers.remove(s.caller);
        self.allotted.add(s.caller);
        s.allotted = true;
        Ok(())
    }

    pub(crate) fn get(&self, id: u64) -> Option<&RelaySession> {
        self.sessions.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut RelaySession> {
        self.sessions.get_mut(&id)
    }

    /// When to call [`expire`](Self::expire) next.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.checks.first().map(|(t, _)| *t)
    }

    /// Releases sessions (offered or allotted) unused for `idle`; returns
    /// how many.
    pub(crate) fn expire(&mut self, now: Instant, idle: Duration) -> usize {
        let mut released = 0;
        while let Some(&(t, id)) = self.checks.first() {
            if t > now {
                break;
            }
            self.checks.pop_first();
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            let due = s.last_used + idle;
            if due > now {
                self.checks.insert((due, id));
            } else if let Some(s) = self.sessions.remove(&id) {
                self.by_pair.remove(&s.peers);
                if s.allotted {
                    self.allotted.remove(s.caller);
                } else {
                    self.offers.remove(s.caller);
                }
                released += 1;
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RelayLimits = RelayLimits {
        max_relays: 2,
        max_relays_per_source: 1,
        max_offers: 3,
        max_offers_per_source: 2,
        idle: Duration::from_secs(30),
        pair_rate: RateLimit::new(1000, 1000),
    };

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn src(b: u8) -> SourcePrefix {
        SourcePrefix::V4([192, 0, 2, b])
    }

    #[test]
    fn one_session_per_pair_offered_then_allotted_bounded_and_released_when_idle() {
        let t = Instant::now();
        let idle = LIMITS.idle;
        let mut rng = Rng::from_seed(1);
        let (a, b, c) = (key(1), key(2), key(3));
        let mut table = RelayTable::default();
        let ab = table.offer(a, b, src(1), t, &LIMITS, &mut rng).unwrap();
        assert_eq!(
            table.offer(b, a, src(2), t, &LIMITS, &mut rng),
            Some(ab),
            "either order, same pair"
        );
        let ac = table.offer(a, c, src(1), t, &LIMITS, &mut rng).unwrap();
        assert_ne!(ab, ac);
        assert_eq!(
            table.offer(b, c, src(1), t, &LIMITS, &mut rng),
            None,
            "the caller's source made its offers"
        );
        let bc = table.offer(b, c, src(2), t, &LIMITS, &mut rng).unwrap();
        assert_eq!(
            table.offer(key(4), key(5), src(3), t, &LIMITS, &mut rng),
            None,
            "offers full"
        );
        assert_eq!(
            (table.len(), table.offer_count()),
            (0, 3),
            "offers hold no relay"
        );
        // Allotted when a member first relays, against the caller's source,
        // within the bounds.
        assert_eq!(table.allot(ab, &LIMITS), Ok(()));
        assert_eq!(table.allot(ab, &LIMITS), Ok(()), "once");
        assert_eq!(table.allot(ac, &LIMITS), Err(AllotError::SourceQuota));
        assert_eq!(table.allot(bc, &LIMITS), Ok(()));
        assert_eq!(table.allot(ac, &LIMITS), Err(AllotError::Full));
        assert_eq!(table.allot(99, &LIMITS), Err(AllotError::Unknown));
        assert_eq!((table.len(), table.offer_count()), (2, 1));
        assert_eq!(
            (table.allotted_to(src(1)), table.allotted_to(src(2))),
            (1, 1)
        );
        // Pair a-b keeps relaying; the others go quiet.
        table.get_mut(ab).unwrap().last_used = t + Duration::from_secs(20);
        assert_eq!(table.expire(t + idle, idle), 2);
        assert!(table.get(ac).is_none() && table.get(bc).is_none());
        assert!(table.get(ab).is_some_and(RelaySession::is_allotted));
        assert_eq!((table.len(), table.offer_count()), (1, 0));
        assert_eq!(table.next_check(), Some(t + Duration::from_secs(50)));
        assert_eq!(table.expire(t + Duration::from_secs(50), idle), 1);
        assert_eq!((table.len(), table.allotted_to(src(1))), (0, 0));
    }
}
