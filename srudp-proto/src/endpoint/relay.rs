//! Relayed connections and the rendezvous-coordinated parts of an endpoint
//! (spec §11.4–§11.6).
//!
//! A rendezvous server gives two peers a relay session. Each peer binds it to
//! its connection with [`Endpoint::set_relay`]; from then on, a datagram the
//! connection sends to the server's address leaves wrapped in a
//! [`RelayData`] envelope, and an envelope of that session arriving from the
//! server is unwrapped and handled as if the inner datagram had come from
//! the server's address. The inner datagrams keep their end-to-end
//! protection, so the server can drop them but neither read nor forge them.
//! To the connection, the relay is one more candidate address: punching it,
//! answering on it and validating it work as for any other path.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use tracing::{debug, trace};

use super::{ConnectOptions, Endpoint};
use crate::connection::{ConnectError, Transmit};
use crate::crypto::HandshakePattern;
use crate::event::ConnectionHandle;
use crate::wire::{Packet, RelayData};

/// The name of a relay session: a random non-zero 64-bit value the
/// rendezvous server allots to a pair of peers (spec §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelaySessionId(pub u64);

impl fmt::Display for RelaySessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relay#{:016x}", self.0)
    }
}

/// How a connection currently reaches its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// Straight to the peer at this address.
    Direct(SocketAddr),
    /// Through the relay of a rendezvous server at this address.
    Relayed {
        /// The relay's address.
        via: SocketAddr,
    },
}

impl PathKind {
    /// Whether the path goes through a relay.
    pub fn is_relayed(&self) -> bool {
        matches!(self, PathKind::Relayed { .. })
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathKind::Direct(addr) => write!(f, "direct to {addr}"),
            PathKind::Relayed { via } => write!(f, "relayed via {via}"),
        }
    }
}

/// The relay sessions bound to connections.
#[derive(Debug, Default)]
pub(super) struct RelayRoutes {
    by_session: HashMap<u64, (ConnectionHandle, SocketAddr)>,
    by_handle: HashMap<ConnectionHandle, (SocketAddr, u64)>,
}

impl RelayRoutes {
    fn remove(&mut self, handle: ConnectionHandle) {
        if let Some((_, session)) = self.by_handle.remove(&handle) {
            self.by_session.remove(&session);
        }
    }
}

impl Endpoint {
    /// Opens a connection like [`connect_with`](Self::connect_with) but sends
    /// its first punch probe only at `punch_at` (a start time coordinated by
    /// a rendezvous server, spec §11.4). The candidates are trusted; for
    /// candidates the application learned from someone else, use
    /// [`connect_introduced`](Self::connect_introduced). Until then the connection already
    /// counts as punching toward the peer, so a HandshakeInit the peer sends
    /// first is resolved by the simultaneous-open rule (spec §4.5). The
    /// handshake timeout runs from `punch_at`.
    pub fn connect_at(
        &mut self,
        now: Instant,
        options: ConnectOptions,
        punch_at: Instant,
    ) -> Result<ConnectionHandle, ConnectError> {
        let handle = self.connect_with(now, options)?;
        self.delay_punch(now, handle, punch_at);
        Ok(handle)
    }

    /// Holds a new connection's first punch probe until `punch_at`.
    pub(super) fn delay_punch(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        punch_at: Instant,
    ) {
        if punch_at > now {
            if let Some(slot) = self.connections.get_mut(&handle) {
                slot.conn.delay_punch(punch_at);
            }
            self.refresh(handle);
        }
    }

    /// Binds relay session `session` of the rendezvous server at `server` to a
    /// connection (spec §11.5): datagrams the connection sends to `server`
    /// are wrapped in RelayData envelopes of that session, and envelopes of
    /// that session from `server` are delivered to it. Add `server` as a
    /// candidate ([`add_candidate`](Self::add_candidate)) to punch through
    /// the relay. Returns `false` (and changes nothing) for an unknown or
    /// closed connection, session 0, or a session bound to another connection.
    pub fn set_relay(
        &mut self,
        handle: ConnectionHandle,
        server: SocketAddr,
        session: RelaySessionId,
    ) -> bool {
        if session.0 == 0
            || self
                .relay_routes
                .by_session
                .get(&session.0)
                .is_some_and(|(h, _)| *h != handle)
        {
            return false;
        }
        let bound = self.with_visible(handle, |conn| {
            if conn.is_closed() {
                return false;
            }
            conn.set_relay_address(server);
            true
        });
        if bound != Some(true) {
            return false;
        }
        self.relay_routes.remove(handle);
        self.relay_routes
            .by_session
            .insert(session.0, (handle, server));
        self.relay_routes
            .by_handle
            .insert(handle, (server, session.0));
        debug!(%handle, %server, %session, "relay bound");
        true
    }

    /// Whether the connection reaches its peer directly or through its relay,
    /// and at which address.
    pub fn path_kind(&self, handle: ConnectionHandle) -> Option<PathKind> {
        let conn = self.visible(handle)?;
        let remote = conn.remote_address();
        let relayed = self
            .relay_routes
            .by_handle
            .get(&handle)
            .is_some_and(|(server, _)| *server == remote);
        Some(if relayed {
            PathKind::Relayed { via: remote }
        } else {
            PathKind::Direct(remote)
        })
    }

    /// Probes `addr`, another address at which the peer of an established
    /// connection may be reachable, with an authenticated PATH_CHALLENGE; if
    /// the answer comes back from there the connection moves to it and
    /// reports [`Event::PathChanged`](crate::Event::PathChanged) (spec §11.6).
    /// A relayed connection uses this to find a direct path. Returns whether
    /// a probe was queued.
    pub fn probe_path(&mut self, now: Instant, handle: ConnectionHandle, addr: SocketAddr) -> bool {
        self.with_visible(handle, |c| c.probe_path(now, addr))
            .unwrap_or(false)
    }

    /// A RelayData envelope arrived from `from` (spec §11.5).
    pub(super) fn handle_relay_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) {
        let relay = match RelayData::parse(datagram) {
            Ok(r) => r,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                trace!(%from, "dropping relay envelope: {e}");
                return;
            }
        };
        let Some(&(owner, server)) = self.relay_routes.by_session.get(&relay.session) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        if server != from {
            // Only the server that allotted the session relays it.
            self.stats.dropped_unknown_connection += 1;
            return;
        }
        let inner = relay.inner;
        // At most 1190 bytes (the envelope was at most 1200); an init is
        // exactly 1190.
        let packet = match Packet::parse_relayed(inner) {
            Ok(p) => p,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                trace!(%from, "dropping relayed datagram: {e}");
                return;
            }
        };
        match packet {
            Packet::Data(header, sealed) => {
                if self.by_cid.get(&header.dcid) != Some(&owner) {
                    self.stats.dropped_unknown_connection += 1;
                    return;
                }
                if let Some(slot) = self.connections.get_mut(&owner) {
                    slot.conn.handle_data(
                        now,
                        from,
                        header,
                        sealed,
                        inner.len(),
                        &mut self.scratch,
                    );
                }
                self.refresh(owner);
            }
            Packet::HandshakeResponse(response) => {
                if self.by_cid.get(&response.initiator_cid) != Some(&owner) {
                    self.stats.dropped_unknown_connection += 1;
                    return;
                }
                if let Some(slot) = self.connections.get_mut(&owner) {
                    slot.conn
                        .handle_response(now, from, &response, &mut self.scratch);
                }
                self.refresh(owner);
            }
            Packet::HandshakeInit(init) => {
                // A relayed initiation is attributed by its authenticated key
                // (IK), never by the relay's address, and only to the
                // connection that owns the session: either still punching
                // (simultaneous open, spec §4.5) or a retransmission of an
                // initiation it already answered.
                let ephemeral = init
                    .noise
                    .get(..32)
                    .and_then(|e| <[u8; 32]>::try_from(e).ok());
                let expected = self
                    .connections
                    .get(&owner)
                    .is_some_and(|s| s.conn.is_handshaking())
                    || ephemeral.is_some_and(|e| self.by_init.get(&e) == Some(&owner));
                if init.pattern != HandshakePattern::IK || !expected {
                    self.stats.dropped_unknown_connection += 1;
                    return;
                }
                self.handle_init(now, from, &init, inner);
            }
            Packet::CookieReply(_) | Packet::Knock(_) | Packet::KnockReply(_) => {
                // Knocks never travel through a relay: the relay is our own
                // server, trusted as a candidate (spec §4.4).
                self.stats.dropped_unknown_connection += 1;
            }
        }
    }

    /// Wraps a datagram a relayed connection addressed to its relay. The
    /// connection built it for the relay, 1190 bytes at most, so the
    /// envelope fits in 1200 (spec §11.5).
    pub(super) fn relay_wrap(
        &self,
        handle: ConnectionHandle,
        buf: &mut [u8],
        t: Transmit,
    ) -> Transmit {
        match self.relay_routes.by_handle.get(&handle) {
            Some(&(server, session)) if server == t.destination => {
                match RelayData::wrap_in_place(session, buf, t.size) {
                    Ok(size) => Transmit {
                        destination: server,
                        size,
                        hop_limit: t.hop_limit,
                        spare_sockets: t.spare_sockets,
                    },
                    // Unreachable: the connection sizes packets for the
                    // relay, and `buf` holds 1200 bytes.
                    Err(e) => {
                        debug_assert!(false, "relayed datagram of {} bytes: {e}", t.size);
                        t
                    }
                }
            }
            _ => t,
        }
    }

    /// Forgets the relay route of a connection that is gone.
    pub(super) fn forget_relay(&mut self, handle: ConnectionHandle) {
        self.relay_routes.remove(handle);
    }
}
