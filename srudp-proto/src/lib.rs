//! # srudp-proto — the sans-IO core of srudp
//!
//! srudp (Secure Reliable UDP) gives two programs, possibly both behind NATs,
//! an encrypted, reliable, ordered byte stream over UDP. This crate is the
//! whole protocol as a state machine: you feed it datagrams and the current
//! time; it hands back datagrams to send, the next deadline, and events. It
//! never touches a socket, a clock, a thread or global randomness, so it runs
//! the same under any event loop — and under the deterministic network
//! simulator in [`sim`] (feature `sim`).
//!
//! The wire format and state machines are specified in `protocol-spec.md` at
//! the repository root; code comments refer to its sections as "spec §N".
//!
//! Cargo features, none on by default (none changes the wire format, so
//! peers built with different features interoperate):
//!
//! * `sim` — the deterministic network simulator, [`sim`];
//! * `ring` — ChaCha20-Poly1305 from ring (assembly) for packet protection;
//! * `aws-lc` — X25519 from AWS-LC for handshakes (about 40 % less CPU per
//!   handshake on a responder; a C build);
//! * `test-hooks` — for tests and benches that play a hostile peer: hidden
//!   methods that forge an authenticated peer's packets and check internal
//!   invariants. Not an API; never enable it in production.
//!
//! ## The calling contract
//!
//! One [`Endpoint`] serves one UDP socket and any number of connections,
//! each named by a [`ConnectionHandle`]. Its methods come in four kinds:
//!
//! * **Inputs** — [`Endpoint::handle_datagram`]`(now, from, bytes)` for every
//!   datagram the socket receives (or [`Endpoint::handle_datagram_in_place`]
//!   with a buffer you own and no longer need: one copy less per packet), and
//!   [`Endpoint::handle_timeout`]`(now)` when the deadline from `poll_timeout`
//!   has passed.
//! * **Commands** from the application — [`Endpoint::connect`] (toward a peer
//!   whose public key you know, at one or more candidate addresses; both
//!   sides may connect to each other at once if both use
//!   [`HandshakePattern::IK`] through [`Endpoint::connect_with`]: a peer's
//!   key is reported only when the handshake authenticated it, never on the
//!   strength of an address), [`Endpoint::write`],
//!   [`Endpoint::read`], [`Endpoint::finish`] (graceful end of our direction),
//!   [`Endpoint::close`] (abrupt, with a code the peer receives),
//!   [`Endpoint::release`] (forget a handle). Incoming handshakes are
//!   accepted or refused by the [`AcceptPolicy`] in the [`EndpointConfig`].
//!   A rendezvous ([`rendezvous`]) also uses [`Endpoint::connect_introduced`]
//!   (punch at a coordinated moment toward candidates someone else gave,
//!   knocking before any handshake goes there), [`Endpoint::set_relay`] (bind a relay
//!   session) and [`Endpoint::probe_path`] (look for a better path).
//! * **Outputs**, to drain after *every* input or command, in this order:
//!   1. [`Endpoint::poll_transmit`]`(now, buf)` until it returns `None`: each
//!      call writes one datagram into your buffer and returns its
//!      destination and length. Give it [`MAX_UDP_PAYLOAD_SIZE`] = 1472
//!      bytes: a direct path whose MTU discovery (spec §6.9) finds room then
//!      carries Data packets that large. A buffer of at least
//!      [`MAX_DATAGRAM_SIZE`] = 1200 bytes also works (datagrams then stay
//!      that small); a smaller one gets nothing. Receive buffers need
//!      [`MAX_UDP_PAYLOAD_SIZE`] bytes too;
//!   2. [`Endpoint::poll_event`] until `None`: [`Event`]s such as `Connected`,
//!      `Readable`, `Writable`, `PeerFinished`, `AllDataAcked`, `PathChanged`, `Closed`;
//!   3. [`Endpoint::poll_timeout`]: the exact instant at which to call
//!      `handle_timeout` next (`None`: no timer is armed).
//! * **Getters** — [`Endpoint::stats`], [`Endpoint::remote_address`], [`Endpoint::path_kind`],
//!   [`Endpoint::peer_identity`], [`Endpoint::is_closed`], [`Endpoint::public_key`].
//!
//! The runtime adapters (the `srudp-async` crate) drive this contract with
//! real sockets and timers and turn the events into an accept queue,
//! connect calls that complete, parked readers and writers, and
//! [`std::io::Error`]s; none of that lives here.
//!
//! Every input takes `now`; time never goes backwards between calls.
//!
//! **Cost.** Each call costs O(log n) in the number of connections `n`, plus
//! the work actually due: the endpoint keeps every connection's deadline in
//! a timer queue (`poll_timeout` is O(1); `handle_timeout` visits only the
//! connections whose deadline passed, earliest first, ties by handle), and
//! `poll_transmit` asks only connections that an input, a command or a
//! timer touched since they last had nothing to send. Hence the contract's
//! one strict rule: a connection that waits for a deadline (a paced packet,
//! the next punch probe, a delayed ACK) sends only after `handle_timeout`
//! has been called at or after that deadline; calling `poll_transmit` with a
//! later `now` alone does not make it send.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use srudp_proto::{Endpoint, EndpointConfig, Event, Keypair, Rng};
//!
//! let mut rng = Rng::from_seed(1);
//! let mut alice = Endpoint::new(EndpointConfig::new(Keypair::generate(&mut rng))).unwrap();
//! let mut bob = Endpoint::new(EndpointConfig::new(Keypair::generate(&mut rng))).unwrap();
//! let (a_addr, b_addr) = ("192.0.2.1:4000".parse().unwrap(), "192.0.2.2:4000".parse().unwrap());
//!
//! let mut now = Instant::now();
//! let conn = alice.connect(now, bob.public_key(), &[b_addr]).unwrap();
//! alice.write(conn, b"hello").unwrap();
//!
//! // A tiny run loop: carry every datagram straight across until neither
//! // side has anything to send, then jump the clock to the next deadline.
//! let mut buf = [0u8; 1200];
//! let mut received = Vec::new();
//! for _ in 0..100 {
//!     let mut moved = true;
//!     while moved {
//!         moved = false;
//!         while let Some(t) = alice.poll_transmit(now, &mut buf) {
//!             bob.handle_datagram(now, a_addr, &buf[..t.size]);
//!             moved = true;
//!         }
//!         while let Some(t) = bob.poll_transmit(now, &mut buf) {
//!             alice.handle_datagram(now, b_addr, &buf[..t.size]);
//!             moved = true;
//!         }
//!     }
//!     while let Some((handle, event)) = bob.poll_event() {
//!         if event == Event::Readable {
//!             let mut chunk = [0u8; 64];
//!             while let Ok(n) = bob.read(handle, &mut chunk) {
//!                 if n == 0 { break; }
//!                 received.extend_from_slice(&chunk[..n]);
//!             }
//!         }
//!     }
//!     if received == b"hello" { break; }
//!     let next = [alice.poll_timeout(), bob.poll_timeout()].into_iter().flatten().min();
//!     now = next.unwrap_or(now + Duration::from_millis(1)).max(now);
//!     alice.handle_timeout(now);
//!     bob.handle_timeout(now);
//! }
//! assert_eq!(received, b"hello");
//! ```
//!
//! ## Rendezvous
//!
//! [`rendezvous::RendezvousClient`] and [`rendezvous::RendezvousServer`] wrap
//! an endpoint with the same calling contract: peers register at a server
//! under their key (and a name), connect to each other by key or name
//! through its introductions, fall back to its relay when no direct path
//! works, and learn how their NATs behave (spec §11).
//!
//! ## Determinism
//!
//! All randomness (connection ids, ephemeral keys, path challenges) comes
//! from an [`Rng`] seeded by [`EndpointConfig::rng_seed`] (from the OS when
//! `None`). With fixed seeds and the same inputs, every output is identical.
//!
//! ## Robustness
//!
//! Anything from the network is hostile. Parsers return typed errors and
//! never panic; a datagram that does not parse or authenticate is dropped
//! and changes no connection state; unauthenticated senders cannot make the
//! endpoint hold more than a fixed, configurable amount of state
//! ([`EndpointConfig::max_pending_handshakes`], [`EndpointConfig::max_connections`]),
//! nor do more handshake work than [`EndpointConfig::handshake_rate`]; under
//! a flood of initiations the endpoint answers with stateless cookies
//! ([`CookieMode`]) and genuine peers still connect. An authenticated peer
//! cannot make a connection buffer more than
//! [`TransportConfig::max_buffered_bytes`]. No response to an address not
//! yet validated is larger than three times what came from it. See
//! `protocol-spec.md` §10 for the threat model. Misuse of the API (writing
//! after finish, using a released handle) returns an error.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod congestion;
pub mod connection;
mod crypto;
mod endpoint;
mod event;
#[cfg(all(feature = "sim", any(test, fuzzing)))]
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub(crate) mod local_key_hash;
mod random;
// Not part of the API: public for this crate's benchmarks only.
#[doc(hidden)]
pub mod range_set;
pub mod rendezvous;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stream_carrier;
mod ticket;
mod token_bucket;
// Not part of the API: public for this crate's tests, fuzz targets and
// benchmarks, which build hostile packets with it.
#[doc(hidden)]
pub mod wire;

pub use config::{AcceptPolicy, ConfigError, CookieMode, EndpointConfig, TransportConfig};
pub use connection::{
    ConnectError, ConnectionStats, ReadError, Transmit, WriteError, CLOSING_PERIOD,
    HARD_NAT_BYTES_PER_MINUTE, HARD_NAT_KNOCKS, HARD_NAT_SPARE_SOCKETS, MAX_KNOCKS_PER_CANDIDATE,
    UNANSWERED_BYTES_PER_CONNECTION, UNANSWERED_BYTES_PER_MINUTE,
};
pub use crypto::{Cipher, CryptoError, HandshakePattern, Suite};
pub use endpoint::{ConnectOptions, Endpoint, EndpointStats, PathKind, RelaySessionId};
pub use event::{close_code, CloseReason, ConnectionHandle, Event};
pub use keys::{KeyParseError, Keypair, PublicKey, SecretKey};
pub use random::Rng;
pub use ticket::{TicketSecret, TICKET_SECRET_LEN};
pub use wire::{MAX_DATAGRAM_SIZE, MAX_UDP_PAYLOAD_SIZE};
