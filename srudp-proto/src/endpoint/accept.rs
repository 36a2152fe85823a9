//! Answering handshake initiations (spec §4.2, §4.5, §4.6, §4.8): `mac1`,
//! retransmitted initiations, load and cookies, limits and the handshake
//! capacity, simultaneous open, and the accept policy.

use super::*;
use crate::crypto::cookie::has_mac2;
use tracing::warn;

impl Endpoint {
    /// A HandshakeInit arrived from `from`: decides in the order of spec
    /// §4.8 whether to drop it, resend a cached response, answer with a
    /// cookie, refuse it, or accept it.
    pub(super) fn handle_init(
        &mut self,
        now: Instant,
        from: SocketAddr,
        init: &HandshakeInit<'_>,
        datagram: &[u8],
    ) {
        let len = datagram.len();
        // The cheap checks first (spec §4.8): mac1 drops garbage and
        // initiations for another key before any Noise work.
        if !self.mac_keys.check_mac1(datagram) {
            self.stats.dropped_bad_handshake += 1;
            return;
        }
        let Some(ephemeral) = init
            .noise
            .get(..32)
            .and_then(|e| <[u8; 32]>::try_from(e).ok())
        else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if let Some(&handle) = self.by_init.get(&ephemeral) {
            // A retransmission (or replay) of an initiation we answered: resend
            // the same response, create nothing.
            if let Some(slot) = self.connections.get_mut(&handle) {
                slot.conn.handle_duplicate_init(from, len);
            }
            self.refresh(handle);
            return;
        }
        let under_load =
            self.load
                .on_arrival(now, self.pending.len(), self.config.max_pending_handshakes);
        let cookie_needed = match self.config.cookie_mode {
            CookieMode::UnderLoad => under_load,
            CookieMode::Always => true,
            CookieMode::Never => false,
        };
        let over_limit = self.pending.len() >= self.config.max_pending_handshakes
            || self.connections.len() >= self.config.max_connections;
        if cookie_needed && has_mac2(datagram) && (over_limit || !self.load.can_work(now)) {
            // Dropped below whatever its mac2: a valid one changes nothing,
            // an invalid one gets its CookieReply once there is room again.
            // Skipping the check saves a flood of retransmissions from
            // cookie holders two MACs over 1184 bytes each (spec §4.8).
            if over_limit {
                self.stats.dropped_over_limit += 1;
            } else {
                self.stats.dropped_over_capacity += 1;
            }
            return;
        }
        if cookie_needed
            && !self
                .cookie_secrets
                .check_mac2(now, &mut self.rng, from, datagram)
        {
            // No state and no handshake work for a source that has not
            // shown it receives at its address: hand it a cookie instead.
            self.send_cookie_reply(now, from, init.sender_cid, datagram);
            return;
        }
        if over_limit {
            self.stats.dropped_over_limit += 1;
            return;
        }
        if !self.load.try_work(now) {
            self.stats.dropped_over_capacity += 1;
            return;
        }
        let Ok(mut handshake) = Handshake::responder(
            init.pattern,
            init.cipher,
            &self.config.keypair,
            init.sender_cid,
            self.rng.seed32(),
        ) else {
            return;
        };
        let mut payload = [0u8; MAX_DATAGRAM_SIZE];
        let Ok(n) = handshake.read(init.noise, &mut payload) else {
            self.stats.dropped_bad_handshake += 1;
            return;
        };
        let peer_params = match TransportParams::decode(&payload[..n]) {
            Ok(p) if p.cid == init.sender_cid && !p.refused => p,
            _ => {
                self.stats.dropped_bad_handshake += 1;
                return;
            }
        };
        let identity = handshake.remote_static();

        // Simultaneous open (spec §4.5): are we punching toward this peer
        // ourselves? Only an initiator that authenticated (IK) as the key we
        // are punching toward can cross: an address proves nothing, so an
        // anonymous (NK) initiation is never attributed to a key. Only our
        // own initiations still punching can cross: the walk is bounded by
        // our outstanding connects, not by all connections.
        let crossing = identity.and_then(|id| {
            self.punching.iter().find_map(|h| {
                let s = self.connections.get(h)?;
                let crosses =
                    !s.released && s.conn.is_handshaking() && s.conn.expected_peer() == Some(id);
                crosses.then(|| (*h, id, s.conn.own_pattern(), s.conn.ticket().cloned()))
            })
        });
        // The ticket that applies (spec §4.9): the one our own crossing
        // connect was opened with, else the one the accept policy requires.
        let required_ticket = match &crossing {
            Some((_, _, _, ticket)) => ticket.clone(),
            None => match &self.config.accept {
                AcceptPolicy::Ticket(ticket) => Some(ticket.clone()),
                _ => None,
            },
        };
        let ticket_ok = required_ticket.as_ref().is_none_or(|t| {
            t.verify(
                ProofRole::Initiator,
                init.sender_cid,
                peer_params.ticket_proof.as_ref(),
            )
        });
        // A cipher we implement but do not accept: an authenticated refusal
        // like any other (below), so the initiator learns at once (spec
        // §4.1) — also when it crosses our own initiation.
        let cipher_accepted = self.config.accepted_ciphers.contains(&init.cipher);
        let crosses = crossing.is_some();
        if let (Some((handle, peer, our_pattern, _)), true, true) =
            (crossing, cipher_accepted, ticket_ok)
        {
            if self.public_key() < peer && our_pattern == Some(HandshakePattern::IK) {
                // We hold the lower key: our own initiation wins; the peer will
                // answer it (it is IK, so the peer can match it) and drop its own.
                // Its source is where the peer's NAT maps it toward us, which
                // may be no candidate of ours (a conntrack clash made its
                // masquerade pick another port): a peer-reflexive candidate,
                // answered at once with our own initiation (spec §4.4).
                trace!(%handle, %from, "crossing handshake: we initiate, answering the peer's source");
                if let Some(slot) = self.connections.get_mut(&handle) {
                    slot.conn.answer_peer_reflexive(from, now);
                }
                self.refresh(handle);
                return;
            }
            debug!(%handle, "crossing handshake: the peer initiates, we answer");
            let local_cid = self.connections[&handle].conn.local_cid();
            let params = self.response_params(local_cid, init, required_ticket.as_ref());
            let Some((response, session)) = self.respond(handshake, init, params) else {
                return;
            };
            let setup = ResponderSetup {
                local_cid,
                remote_cid: init.sender_cid,
                remote: from,
                peer: identity,
                peer_params,
                session,
                response,
                init_len: len,
                ticket: required_ticket,
            };
            if let Some(slot) = self.connections.get_mut(&handle) {
                slot.conn.become_responder(now, setup);
                slot.init_key = Some(ephemeral);
            }
            self.by_init.insert(ephemeral, handle);
            self.refresh(handle);
            return;
        }

        let accept = match &self.config.accept {
            AcceptPolicy::AcceptAll | AcceptPolicy::Ticket(_) => true,
            AcceptPolicy::RefuseAll => false,
            AcceptPolicy::AcceptKeys(keys) => identity.is_some_and(|id| keys.contains(&id)),
        };
        // A crossing initiation that failed the cipher or ticket check is
        // refused, and our own initiation goes on.
        let accept = accept && cipher_accepted && ticket_ok && !crosses;
        if !accept {
            self.stats.refused += 1;
            let cid = ConnectionId(self.rng.next_u64());
            let mut params = self.local_params(cid);
            params.refused = true;
            if !ticket_ok {
                // The log line an operator looks for: someone who knows our
                // key, but not the ticket, tried to connect.
                self.stats.refused_without_ticket += 1;
                warn!(%from, "refused a connection without a valid ticket");
                params.ticket_required = true;
            } else {
                debug!(%from, "refusing handshake by policy");
            }
            if let Some((response, _)) = self.respond(handshake, init, params) {
                if self.stateless.len() < MAX_STATELESS_QUEUE {
                    self.stateless.push_back((from, response));
                }
            }
            return;
        }
        let local_cid = self.new_cid();
        let params = self.response_params(local_cid, init, required_ticket.as_ref());
        let Some((response, session)) = self.respond(handshake, init, params) else {
            return;
        };
        let setup = ResponderSetup {
            local_cid,
            remote_cid: init.sender_cid,
            remote: from,
            peer: identity,
            peer_params,
            session,
            response,
            init_len: len,
            ticket: required_ticket,
        };
        let cc = self
            .config
            .transport
            .congestion
            .build(now, MAX_DATAGRAM_SIZE as u64);
        let conn = Connection::new_responder(
            now,
            self.config.transport.clone(),
            setup,
            cc,
            self.child_rng(),
        );
        let handle = self.insert(conn, Some(ephemeral));
        self.by_init.insert(ephemeral, handle);
        self.stats.accepted += 1;
        trace!(%handle, %from, "answered handshake");
    }

    /// Our parameters for a response that accepts `init` as connection
    /// `local_cid`, proving we hold `ticket` if the connection has one.
    fn response_params(
        &self,
        local_cid: ConnectionId,
        init: &HandshakeInit<'_>,
        ticket: Option<&crate::TicketSecret>,
    ) -> TransportParams {
        let mut params = self.local_params(local_cid);
        params.ticket_proof = ticket.map(|t| t.proof(ProofRole::Responder, init.sender_cid));
        params
    }

    /// Queues a CookieReply to `to` for the initiation `init` (spec §4.8).
    fn send_cookie_reply(
        &mut self,
        now: Instant,
        to: SocketAddr,
        initiator_cid: ConnectionId,
        init: &[u8],
    ) {
        if self.stateless.len() >= MAX_STATELESS_QUEUE {
            return;
        }
        let cookie = self.cookie_secrets.cookie_for(now, &mut self.rng, to);
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        self.rng.fill(&mut nonce);
        let sealed = self.mac_keys.seal_cookie(&nonce, &cookie, mac1_of(init));
        let mut out = [0u8; MAX_DATAGRAM_SIZE];
        let Ok(n) = (CookieReply {
            initiator_cid,
            nonce,
            sealed_cookie: &sealed,
        })
        .emit(&mut out) else {
            return;
        };
        self.stats.cookie_replies_sent += 1;
        trace!(%to, "under load: answering with a cookie");
        self.stateless.push_back((to, out[..n].into()));
    }

    /// Writes our handshake response carrying `params`; returns it with the
    /// session keys.
    fn respond(
        &mut self,
        mut handshake: Handshake,
        init: &HandshakeInit<'_>,
        params: TransportParams,
    ) -> Option<(Box<[u8]>, crate::crypto::Session)> {
        let mut payload = [0u8; MAX_PARAMS_LEN];
        let n = params.encode(&mut payload).ok()?;
        let mut noise = [0u8; MAX_DATAGRAM_SIZE];
        let noise_len = handshake.write(&payload[..n], &mut noise).ok()?;
        let mut out = [0u8; MAX_DATAGRAM_SIZE];
        let size = HandshakeResponse {
            initiator_cid: init.sender_cid,
            responder_cid: params.cid,
            noise: &noise[..noise_len],
        }
        .emit(&mut out)
        .ok()?;
        let session = handshake.into_session().ok()?;
        Some((out[..size].to_vec().into_boxed_slice(), session))
    }
}
