//! The rendezvous server's registrations: who is reachable through which
//! connection, under which name, in which groups, until when (spec §11.3).
//!
//! Every map is ordered (`BTreeMap`), so iteration and therefore the
//! server's output are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use super::group::{GroupId, GroupMembership, MemberProof};
use super::message::{ErrorCode, Name, Target};
use super::source::{SourceCounts, SourcePrefix};
use crate::{ConnectionHandle, PublicKey};

/// One registered client.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    /// The connection that proved the key (IK) and carries messages.
    pub(crate) handle: ConnectionHandle,
    /// The source the registration counts against (its connection's).
    pub(crate) source: SourcePrefix,
    pub(crate) name: Option<Name>,
    /// Groups joined, by id, with the proof the client gave (sorted by id).
    pub(crate) groups: Vec<GroupMembership>,
    /// Host addresses the client reported (the observed one is the
    /// connection's remote address, looked up when needed).
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) expires: Instant,
    /// The client's link rides the stream carrier (its Register's flag,
    /// spec §11.2): its peers relay from the start.
    pub(crate) stream_only: bool,
}

/// What a registration changed, for notices and cleanup.
#[derive(Debug, Default)]
pub(crate) struct RegisterOutcome {
    /// Whether the key was not registered before.
    pub(crate) new: bool,
    /// An older connection that registered the same key, now replaced.
    pub(crate) replaced: Option<ConnectionHandle>,
    /// Groups newly joined.
    pub(crate) joined: Vec<GroupId>,
    /// Groups left.
    pub(crate) left: Vec<GroupId>,
}

/// Limits checked on registration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegistryLimits {
    pub(crate) max_registrations: usize,
    pub(crate) max_registrations_per_source: usize,
    pub(crate) max_group_members: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_key: BTreeMap<PublicKey, Registration>,
    by_name: BTreeMap<Name, PublicKey>,
    groups: BTreeMap<GroupId, BTreeSet<PublicKey>>,
    expiries: BTreeSet<(Instant, PublicKey)>,
    per_source: SourceCounts,
}

impl Registry {
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn get(&self, key: &PublicKey) -> Option<&Registration> {
        self.by_key.get(key)
    }

    /// Records whether `key`'s link rides the stream carrier.
    pub(crate) fn set_stream_only(&mut self, key: &PublicKey, stream_only: bool) {
        if let Some(r) = self.by_key.get_mut(key) {
            r.stream_only = stream_only;
        }
    }

    /// The registration a Connect request names.
    pub(crate) fn lookup(&self, target: &Target) -> Option<(PublicKey, &Registration)> {
        let key = match target {
            Target::Key(k) => *k,
            Target::Name(n) => *self.by_name.get(n)?,
        };
        self.by_key.get(&key).map(|r| (key, r))
    }

    /// Members of `group`, in key order.
    pub(crate) fn members(&self, group: &GroupId) -> impl Iterator<Item = &PublicKey> {
        self.groups.get(group).into_iter().flatten()
    }

    /// The proof `key` registered for `group`.
    pub(crate) fn proof_of(&self, key: &PublicKey, group: &GroupId) -> Option<MemberProof> {
        let r = self.by_key.get(key)?;
        r.groups.iter().find(|g| g.group == *group).map(|g| g.proof)
    }

    /// Registrations held for `source`.
    pub(crate) fn count_from(&self, source: SourcePrefix) -> usize {
        self.per_source.of(source)
    }

    /// Registers (or refreshes) `key`, which the connection `handle` (from
    /// `source`) proved.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &mut self,
        key: PublicKey,
        handle: ConnectionHandle,
        source: SourcePrefix,
        name: Option<Name>,
        groups: Vec<GroupMembership>,
        candidates: Vec<SocketAddr>,
        expires: Instant,
        limits: RegistryLimits,
    ) -> Result<RegisterOutcome, ErrorCode> {
        let old = self.by_key.get(&key);
        if old.is_none() && self.by_key.len() >= limits.max_registrations {
            return Err(ErrorCode::ServerFull);
        }
        let charged_before = old.is_some_and(|r| r.source == source);
        if !charged_before && self.per_source.of(source) >= limits.max_registrations_per_source {
            return Err(ErrorCode::QuotaExceeded);
        }
        if let Some(n) = &name {
            if self.by_name.get(n).is_some_and(|holder| *holder != key) {
                return Err(ErrorCode::NameTaken);
            }
        }
        let mut groups = groups;
        groups.sort_by_key(|g| g.group);
        groups.dedup_by_key(|g| g.group);
        let ids: Vec<GroupId> = groups.iter().map(|g| g.group).collect();
        let old_ids: Vec<GroupId> =
            old.map_or(Vec::new(), |r| r.groups.iter().map(|g| g.group).collect());
        let joined: Vec<GroupId> = ids
            .iter()
            .filter(|g| !old_ids.contains(g))
            .copied()
            .collect();
        let left: Vec<GroupId> = old_ids
            .iter()
            .filter(|g| !ids.contains(g))
            .copied()
            .collect();
        for g in &joined {
            if self.groups.get(g).map_or(0, BTreeSet::len) >= limits.max_group_members {
                return Err(ErrorCode::GroupFull);
            }
        }
        // Checks done: apply.
        let outcome = RegisterOutcome {
            new: old.is_none(),
            replaced: old.map(|r| r.handle).filter(|h| *h != handle),
            joined,
            left,
        };
        if let Some(old) = self.by_key.remove(&key) {
            self.expiries.remove(&(old.expires, key));
            self.per_source.remove(old.source);
            if let Some(n) = old.name {
                if name.as_ref() != Some(&n) {
                    self.by_name.remove(&n);
                }
            }
        }
        for g in &outcome.left {
            self.leave_group(g, &key);
        }
        for g in &outcome.joined {
            self.groups.entry(*g).or_default().insert(key);
        }
        if let Some(n) = &name {
            self.by_name.insert(n.clone(), key);
        }
        self.expiries.insert((expires, key));
        self.per_source.add(source);
        self.by_key.insert(
            key,
            Registration {
                handle,
                source,
                name,
                groups,
                candidates,
                expires,
                stream_only: false,
            },
        );
        Ok(outcome)
    }

    /// Removes `key`'s registration.
    pub(crate) fn remove(&mut self, key: &PublicKey) -> Option<Registration> {
        let r = self.by_key.remove(key)?;
        self.expiries.remove(&(r.expires, *key));
        self.per_source.remove(r.source);
        if let Some(n) = &r.name {
            self.by_name.remove(n);
        }
        for g in &r.groups {
            self.leave_group(&g.group, key);
        }
        Some(r)
    }

    fn leave_group(&mut self, group: &GroupId, key: &PublicKey) {
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(key);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// When the next registration expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// A registration that expired at `now`, removed.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(PublicKey, Registration)> {
        let &(t, key) = self.expiries.first()?;
        if t > now {
            return None;
        }
        self.remove(&key).map(|r| (key, r))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: RegistryLimits = RegistryLimits {
        max_registrations: 2,
        max_registrations_per_source: 2,
        max_group_members: 2,
    };

    fn src(b: u8) -> SourcePrefix {
        SourcePrefix::V4([192, 0, 2, b])
    }

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    #[test]
    fn names_belong_to_one_key_and_follow_it() {
        let t = Instant::now();
        let mut r = Registry::default();
        let h = ConnectionHandle;
        let o = r
            .register(
                key(1),
                h(1),
                src(1),
                Some(name("alice")),
                vec![],
                vec![],
                t,
                LIMITS,
            )
            .unwrap();
        assert!(o.new);
        assert_eq!(
            r.register(
                key(2),
                h(2),
                src(1),
                Some(name("alice")),
                vec![],
                vec![],
                t,
                LIMITS
            )
            .unwrap_err(),
            ErrorCode::NameTaken
        );
        // Alice renames herself: the old name is free again.
        r.register(
            key(1),
            h(1),
            src(1),
            Some(name("alicia")),
            vec![],
            vec![],
            t,
            LIMITS,
        )
        .unwrap();
        assert!(r.lookup(&Target::Name(name("alice"))).is_none());
        r.register(
            key(2),
            h(2),
            src(1),
            Some(name("alice")),
            vec![],
            vec![],
            t,
            LIMITS,
        )
        .unwrap();
        assert_eq!(r.lookup(&Target::Name(name("alice"))).unwrap().0, key(2));
        assert_eq!(
            r.register(key(3), h(3), src(1), None, vec![], vec![], t, LIMITS)
                .unwrap_err(),
            ErrorCode::ServerFull
        );
    }

    #[test]
    fn a_second_connection_of_the_same_key_replaces_the_first() {
        let t = Instant::now();
        let mut r = Registry::default();
        let h = ConnectionHandle;
        r.register(key(1), h(1), src(1), None, vec![], vec![], t, LIMITS)
            .unwrap();
        let o = r
            .register(key(1), h(5), src(1), None, vec![], vec![], t, LIMITS)
            .unwrap();
        assert!(!o.new);
        assert_eq!(o.replaced, Some(h(1)));
        assert_eq!(r.get(&key(1)).unwrap().handle, h(5));
    }

    fn member(group: u8) -> GroupMembership {
        GroupMembership {
            group: GroupId([group; 32]),
            proof: MemberProof([group ^ 0xff; 32]),
        }
    }

    #[test]
    fn groups_report_joins_and_leaves_and_are_bounded() {
        let t = Instant::now();
        let mut r = Registry::default();
        let h = ConnectionHandle;
        let (g, k) = (member(1), member(2));
        let o = r
            .register(key(1), h(1), src(1), None, vec![g, g], vec![], t, LIMITS)
            .unwrap();
        assert_eq!(o.joined, vec![g.group]);
        r.register(key(2), h(2), src(1), None, vec![g], vec![], t, LIMITS)
            .unwrap();
        assert_eq!(r.members(&g.group).count(), 2);
        assert_eq!(r.proof_of(&key(2), &g.group), Some(g.proof));
        assert_eq!(r.proof_of(&key(2), &k.group), None);
        let o = r
            .register(key(1), h(1), src(1), None, vec![k], vec![], t, LIMITS)
            .unwrap();
        assert_eq!((o.joined, o.left), (vec![k.group], vec![g.group]));
        assert_eq!(
            r.members(&g.group).copied().collect::<Vec<_>>(),
            vec![key(2)]
        );
        r.remove(&key(2));
        assert_eq!(r.members(&g.group).count(), 0);
    }

    #[test]
    fn registrations_expire_unless_refreshed() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut r = Registry::default();
        let h = ConnectionHandle;
        r.register(
            key(1),
            h(1),
            src(1),
            None,
            vec![],
            vec![],
            t + 45 * s,
            LIMITS,
        )
        .unwrap();
        r.register(
            key(2),
            h(2),
            src(1),
            None,
            vec![],
            vec![],
            t + 45 * s,
            LIMITS,
        )
        .unwrap();
        // Key 1 refreshes at 15 s.
        r.register(
            key(1),
            h(1),
            src(1),
            None,
            vec![],
            vec![],
            t + 60 * s,
            LIMITS,
        )
        .unwrap();
        assert_eq!(r.next_expiry(), Some(t + 45 * s));
        assert!(r.pop_expired(t + 44 * s).is_none());
        assert_eq!(r.pop_expired(t + 45 * s).unwrap().0, key(2));
        assert!(r.pop_expired(t + 45 * s).is_none());
        assert_eq!(r.pop_expired(t + 60 * s).unwrap().0, key(1));
        assert_eq!(r.len(), 0);
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    const LIMITS: RegistryLimits = RegistryLimits {
        max_registrations: 100,
        max_registrations_per_source: 3,
        max_group_members: 100,
    };

    #[test]
    fn one_source_holds_at_most_its_quota_of_registrations() {
        let t = Instant::now();
        let (host, other) = (
            SourcePrefix::V4([192, 0, 2, 66]),
            SourcePrefix::V4([192, 0, 2, 7]),
        );
        let mut r = Registry::default();
        // Key `[k; 32]` registers over connection `c` from `source`.
        let register = |r: &mut Registry, k: u8, c: u64, source| {
            r.register(
                PublicKey([k; 32]),
                ConnectionHandle(c),
                source,
                None,
                vec![],
                vec![],
                t,
                LIMITS,
            )
        };
        let outcomes: Vec<_> = (1..=10u8)
            .map(|k| register(&mut r, k, u64::from(k), host))
            .map(|o| o.err())
            .collect();
        assert_eq!(&outcomes[..3], &[None, None, None]);
        assert!(outcomes[3..]
            .iter()
            .all(|e| *e == Some(ErrorCode::QuotaExceeded)));
        assert_eq!(r.count_from(host), 3);
        // A refresh of a held registration is not a new one.
        register(&mut r, 1, 1, host).unwrap();
        // Another source is unaffected.
        register(&mut r, 50, 50, other).unwrap();
        // A key that moves to another source takes its count along.
        register(&mut r, 2, 60, other).unwrap();
        assert_eq!((r.count_from(host), r.count_from(other)), (2, 2));
        r.remove(&PublicKey([1; 32]));
        assert_eq!(r.count_from(host), 1);
        register(&mut r, 9, 9, host).unwrap();
    }
}
