//! The rendezvous server's relay sessions (spec §11.5): one per introduced
//! pair of peers, bounded in number, rate-limited, released when unused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::rate_limit::{RateLimit, TokenBucket};
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
}

#[derive(Debug, Default)]
pub(crate) struct RelayTable {
    sessions: BTreeMap<u64, RelaySession>,
    by_pair: BTreeMap<[PublicKey; 2], u64>,
    /// When to look at a session again (lazily re-armed while it is used).
    checks: BTreeSet<(Instant, u64)>,
}

impl RelayTable {
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// The session of the pair `a`, `b`: the existing one, or a new one if
    /// fewer than `max` exist. `None` when the table is full.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn session_for(
        &mut self,
        a: PublicKey,
        b: PublicKey,
        now: Instant,
        idle: Duration,
        max: usize,
        rate: RateLimit,
        rng: &mut Rng,
    ) -> Option<u64> {
        let pair = if a < b { [a, b] } else { [b, a] };
        if let Some(&id) = self.by_pair.get(&pair) {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.last_used = now;
            }
            return Some(id);
        }
        if self.sessions.len() >= max {
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
                bucket: TokenBucket::new(rate, now),
                last_used: now,
                next_poke: now,
            },
        );
        self.by_pair.insert(pair, id);
        self.checks.insert((now + idle, id));
        Some(id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut RelaySession> {
        self.sessions.get_mut(&id)
    }

    /// When to call [`expire`](Self::expire) next.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.checks.first().map(|(t, _)| *t)
    }

    /// Releases sessions unused for `idle`; returns how many.
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
            } else {
                let pair = s.peers;
                self.sessions.remove(&id);
                self.by_pair.remove(&pair);
                released += 1;
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_session_per_pair_bounded_and_released_when_idle() {
        let t = Instant::now();
        let idle = Duration::from_secs(30);
        let rate = RateLimit::new(1000, 1000);
        let mut rng = Rng::from_seed(1);
        let (a, b, c) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        let mut table = RelayTable::default();
        let ab = table.session_for(a, b, t, idle, 2, rate, &mut rng).unwrap();
        assert_eq!(
            table.session_for(b, a, t, idle, 2, rate, &mut rng),
            Some(ab),
            "either order, same pair"
        );
        let ac = table.session_for(a, c, t, idle, 2, rate, &mut rng).unwrap();
        assert_ne!(ab, ac);
        assert_eq!(
            table.session_for(b, c, t, idle, 2, rate, &mut rng),
            None,
            "full"
        );
        // Pair a-b keeps relaying; a-c goes quiet.
        table.get_mut(ab).unwrap().last_used = t + Duration::from_secs(20);
        assert_eq!(table.expire(t + idle, idle), 1);
        assert!(table.get_mut(ac).is_none());
        assert!(table.get_mut(ab).is_some());
        assert_eq!(table.next_check(), Some(t + Duration::from_secs(50)));
        assert_eq!(table.expire(t + Duration::from_secs(50), idle), 1);
        assert_eq!(table.len(), 0);
    }
}
