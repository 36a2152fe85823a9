//! Knocks (spec §4.4, §9.3.8–§9.3.9): answering those meant for our key,
//! routing the replies to our own punching connections, and opening
//! connections toward candidates from an introduction, which are knocked
//! before any HandshakeInit goes to them.

use super::*;
use crate::wire::{Knock, KnockReply, KNOCK_REPLY_SIZE};

impl Endpoint {
    /// Opens a connection like [`connect_at`](Self::connect_at), toward
    /// candidates the application learned from someone else (a rendezvous
    /// server's introduction, spec §11.4): none of them gets the 1200-byte
    /// HandshakeInit before it answered a small Knock with the token only it
    /// was sent (spec §4.4). What the connection sends to candidates that
    /// never answer is bounded by
    /// [`UNANSWERED_BYTES_PER_CONNECTION`](crate::UNANSWERED_BYTES_PER_CONNECTION),
    /// and, across all connections, by
    /// [`UNANSWERED_BYTES_PER_MINUTE`](crate::UNANSWERED_BYTES_PER_MINUTE).
    /// The first knocks go at once; only HandshakeInits wait for `punch_at`,
    /// so the knocks' round trip overlaps the wait.
    pub fn connect_introduced(
        &mut self,
        now: Instant,
        options: ConnectOptions,
        punch_at: Instant,
    ) -> Result<ConnectionHandle, ConnectError> {
        let handle = self.open(now, options, false)?;
        self.delay_punch(now, handle, punch_at);
        Ok(handle)
    }

    /// Ends the hold of a connection opened with
    /// [`connect_introduced`](Self::connect_introduced): its HandshakeInits
    /// and full knocks go from `now` instead of its `punch_at` (the peer
    /// opened its NAT toward us, spec §11.4). Nothing changes for a
    /// connection that is not held, closed or unknown.
    pub fn punch_now(&mut self, now: Instant, handle: ConnectionHandle) {
        if let Some(slot) = self.connections.get_mut(&handle) {
            slot.conn.punch_now(now);
        }
        self.refresh(handle);
    }

    /// Moves the handshake timeout of a connection still punching, or
    /// answered and not yet confirmed, to `at` (the rendezvous client, while
    /// the peer has not yet acted on its own Introduce, spec §11.4). Nothing
    /// for any other connection.
    pub(crate) fn set_handshake_deadline(&mut self, handle: ConnectionHandle, at: Instant) {
        if let Some(slot) = self.connections.get_mut(&handle) {
            slot.conn.set_handshake_deadline(at);
        }
        self.refresh(handle);
    }

    /// Starts the hard-NAT round of an established connection still on the
    /// relay (spec §4.4): a knock to `observed` — the peer's address as the
    /// rendezvous server observed it — from
    /// [`HARD_NAT_SPARE_SOCKETS`](crate::HARD_NAT_SPARE_SOCKETS) spare
    /// sockets (the [`Transmit::spare_sockets`](crate::Transmit::spare_sockets)
    /// hint), then [`HARD_NAT_KNOCKS`](crate::HARD_NAT_KNOCKS) knocks to
    /// random ports of `observed`'s IP address and never any other, drawn
    /// from the endpoint's budget of
    /// [`HARD_NAT_BYTES_PER_MINUTE`](crate::HARD_NAT_BYTES_PER_MINUTE). A
    /// knock answered from its own address starts a path validation there.
    /// Returns whether the round started (an established IPv4 connection
    /// with an authenticated peer, no round running).
    pub fn start_hard_nat_round(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        observed: SocketAddr,
    ) -> bool {
        let started = self
            .connections
            .get_mut(&handle)
            .is_some_and(|slot| slot.conn.start_hard_nat_round(now, observed));
        self.refresh(handle);
        started
    }

    /// A Knock arrived from `from`: if its MAC is keyed by our public key,
    /// answer with a KnockReply (smaller than the knock, so nothing is
    /// amplified), keeping no state.
    pub(super) fn answer_knock(&mut self, from: SocketAddr, knock: &Knock, datagram: &[u8]) {
        if !self.mac_keys.check_knock(datagram) {
            self.stats.dropped_bad_handshake += 1;
            return;
        }
        if self.stateless.len() >= MAX_STATELESS_QUEUE {
            return;
        }
        let mut out = [0u8; KNOCK_REPLY_SIZE];
        let Ok(n) = KnockReply::to(knock).emit(&mut out) else {
            return;
        };
        self.stats.knocks_answered += 1;
        self.stateless.push_back((from, out[..n].into()));
    }

    /// A KnockReply arrived from `from`: it can only concern one of our
    /// connections still punching.
    pub(super) fn handle_knock_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        reply: &KnockReply,
    ) {
        let Some(&handle) = self.by_cid.get(&reply.initiator_cid) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        if let Some(slot) = self.connections.get_mut(&handle) {
            slot.conn.handle_knock_reply(now, from, reply);
        }
        self.refresh(handle);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wire::{KNOCK_SIZE, KNOCK_TOKEN_LEN};
    use crate::{EndpointConfig, Keypair, Rng};

    fn endpoint(seed: u64) -> Endpoint {
        let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
        config.rng_seed = Some(seed + 100);
        Endpoint::new(config).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Every datagram `ep` sends at `now`, with its destination.
    fn drain(ep: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut buf = [0u8; 1400];
        std::iter::from_fn(|| {
            ep.poll_transmit(now, &mut buf)
                .map(|t| (t.destination, buf[..t.size].to_vec()))
        })
        .collect()
    }

    fn introduced(client: &mut Endpoint, peer: PublicKey, candidates: &[SocketAddr], now: Instant) {
        let options = ConnectOptions {
            pattern: Some(HandshakePattern::IK),
            ..ConnectOptions::new(peer, candidates.to_vec())
        };
        client.connect_introduced(now, options, now).unwrap();
    }

    #[test]
    fn an_introduced_candidate_gets_the_init_once_it_answered_a_knock() {
        let (mut client, mut server) = (endpoint(1), endpoint(2));
        let (c_addr, s_addr) = (addr("192.0.2.1:1000"), addr("192.0.2.2:2000"));
        let mut now = Instant::now();
        introduced(&mut client, server.public_key(), &[s_addr], now);
        let out = drain(&mut client, now);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].0, out[0].1.len()),
            (s_addr, KNOCK_SIZE),
            "a knock, not an init"
        );
        server.handle_datagram(now, c_addr, &out[0].1);
        let replies = drain(&mut server, now);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].0, c_addr);
        assert!(
            replies[0].1.len() < KNOCK_SIZE,
            "the reply amplifies nothing"
        );
        assert_eq!(server.endpoint_stats().knocks_answered, 1);
        assert_eq!(server.connection_count(), 0, "answering keeps no state");
        client.handle_datagram(now, s_addr, &replies[0].1);
        // Now the handshake runs as usual.
        let mut connected = false;
        for _ in 0..20 {
            for (to, dg) in drain(&mut client, now) {
                assert_eq!(to, s_addr);
                server.handle_datagram(now, c_addr, &dg);
            }
            for (to, dg) in drain(&mut server, now) {
                assert_eq!(to, c_addr);
                client.handle_datagram(now, s_addr, &dg);
            }
            while let Some((_, e)) = client.poll_event() {
                connected |= matches!(e, Event::Connected { .. });
            }
            now += Duration::from_millis(5);
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
        assert!(connected);
    }

    #[test]
    fn a_reply_from_the_wrong_address_or_with_a_guessed_token_unlocks_nothing() {
        let mut client = endpoint(3);
        let peer = endpoint(4).public_key();
        // The attacker controls `mine` (so it sees the knock sent there) and
        // wants the client's handshakes to go to `victim`.
        let (victim, mine) = (addr("198.51.100.7:53"), addr("203.0.113.9:4000"));
        let mut now = Instant::now();
        introduced(&mut client, peer, &[victim, mine], now);
        let mut knocks = Vec::new();
        for _ in 0..10 {
            knocks.extend(drain(&mut client, now));
            now += Duration::from_millis(2);
            client.handle_timeout(now);
        }
        let to_mine = knocks.iter().find(|(to, _)| *to == mine).unwrap();
        let Ok(Packet::Knock(k)) = Packet::parse(&to_mine.1) else {
            panic!("a knock");
        };
        let forged = [
            // The token the attacker saw, echoed "from" the victim.
            KnockReply::to(&k),
            // A guessed token.
            KnockReply {
                initiator_cid: k.sender_cid,
                token: [0; KNOCK_TOKEN_LEN],
            },
        ];
        let mut bytes = [0u8; KNOCK_REPLY_SIZE];
        for reply in forged {
            reply.emit(&mut bytes).unwrap();
            client.handle_datagram(now, victim, &bytes);
        }
        // For the rest of the handshake, the victim gets knocks only, and
        // few of them.
        let mut to_victim = Vec::new();
        let end = now + Duration::from_secs(11);
        while now < end {
            for (to, dg) in drain(&mut client, now) {
                if to == victim {
                    to_victim.push(dg);
                }
            }
            now = client
                .poll_timeout()
                .unwrap_or(end)
                .max(now + Duration::from_millis(1));
            client.handle_timeout(now);
        }
        to_victim.extend(
            knocks
                .iter()
                .filter(|(to, _)| *to == victim)
                .map(|(_, d)| d.clone()),
        );
        assert!(to_victim.iter().all(|d| d.len() == KNOCK_SIZE));
        assert_eq!(
            to_victim.len(),
            usize::from(crate::MAX_KNOCKS_PER_CANDIDATE),
            "knocks stop"
        );
    }

    #[test]
    fn a_knock_for_another_key_is_not_answered() {
        let mut client = endpoint(5);
        let mut stranger = endpoint(6);
        let someone_else = endpoint(7).public_key();
        let (c_addr, s_addr) = (addr("192.0.2.1:1000"), addr("192.0.2.2:2000"));
        let now = Instant::now();
        introduced(&mut client, someone_else, &[s_addr], now);
        let out = drain(&mut client, now);
        stranger.handle_datagram(now, c_addr, &out[0].1);
        assert!(drain(&mut stranger, now).is_empty());
        assert_eq!(stranger.endpoint_stats().knocks_answered, 0);
        assert_eq!(stranger.endpoint_stats().dropped_bad_handshake, 1);
    }

    proptest::proptest! {
        /// Whatever KnockReplies an off-path attacker sends, from whichever
        /// address, with whichever cid and token, no HandshakeInit goes to a
        /// candidate that did not answer: the attacker never saw the tokens.
        #[test]
        fn forged_knock_replies_never_unlock_a_handshake_init(
            replies in proptest::collection::vec(
                (0usize..4, proptest::prelude::any::<bool>(), proptest::prelude::any::<[u8; KNOCK_TOKEN_LEN]>()),
                1..20,
            ),
        ) {
            let mut client = endpoint(8);
            let peer = endpoint(9).public_key();
            let candidates = [
                addr("198.51.100.1:1"),
                addr("198.51.100.2:2"),
                addr("10.0.0.3:3"),
                addr("[2001:db8::4]:4"),
            ];
            let mut now = Instant::now();
            introduced(&mut client, peer, &candidates, now);
            let mut cid = None;
            let end = now + Duration::from_secs(11);
            let mut replies = replies.into_iter();
            while now < end {
                for (to, dg) in drain(&mut client, now) {
                    proptest::prop_assert_eq!(dg.len(), KNOCK_SIZE, "to {}", to);
                    if let Ok(Packet::Knock(k)) = Packet::parse(&dg) {
                        cid = Some(k.sender_cid);
                    }
                }
                if let (Some((from, right_cid, token)), Some(cid)) = (replies.next(), cid) {
                    let reply = KnockReply {
                        initiator_cid: if right_cid { cid } else { crate::wire::ConnectionId(!cid.0) },
                        token,
                    };
                    let mut bytes = [0u8; KNOCK_REPLY_SIZE];
                    reply.emit(&mut bytes).unwrap();
                    client.handle_datagram(now, candidates[from], &bytes);
                }
                now = client.poll_timeout().unwrap_or(end).max(now + Duration::from_millis(1));
                client.handle_timeout(now);
            }
        }
    }
}
