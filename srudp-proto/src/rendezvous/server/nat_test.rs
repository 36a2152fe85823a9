//! The server's side of NAT behaviour tests (spec §11.7): the second
//! socket, its probes, the report of what it observed, and the table of
//! open tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use tracing::trace;

use super::RendezvousServer;
use crate::rendezvous::message::{ErrorCode, Message, RequestId};
use crate::rendezvous::source::SourceRate;
use crate::wire::relay::is_nat_probe;
use crate::wire::{NatProbe, NAT_PROBE_SIZE, NAT_PROBE_TOKEN_LEN};
use crate::{ConnectionHandle, Transmit};

/// Copies of the unsolicited NAT probe (a lost probe would read as "filtered").
const FILTER_PROBE_COPIES: usize = 2;

/// A NAT test waiting for the client's probe at the second socket.
#[derive(Debug)]
struct NatTestEntry {
    handle: ConnectionHandle,
    request: RequestId,
    expires: Instant,
}

type Token = [u8; NAT_PROBE_TOKEN_LEN];

/// The open NAT tests, at most one per client connection, indexed by the
/// probe's token, by client and by expiry: starting, answering, forgetting
/// and expiring a test each touch a constant number of entries, however
/// many tests are open (spec §11.7).
#[derive(Debug, Default)]
pub(super) struct NatTests {
    by_token: BTreeMap<Token, NatTestEntry>,
    by_client: BTreeMap<ConnectionHandle, Token>,
    expiries: BTreeSet<(Instant, Token)>,
    /// Entries inserted, looked up or removed: the work done, which tests
    /// count instead of timing it.
    touched: u64,
}

impl NatTests {
    /// Opens a test for `handle`, replacing its previous one.
    fn start(
        &mut self,
        handle: ConnectionHandle,
        token: Token,
        request: RequestId,
        expires: Instant,
    ) {
        self.forget_client(handle);
        self.touched += 1;
        self.by_token.insert(
            token,
            NatTestEntry {
                handle,
                request,
                expires,
            },
        );
        self.by_client.insert(handle, token);
        self.expiries.insert((expires, token));
    }

    /// Closes the test a probe's `token` names, if it is open and not
    /// expired; returns its client and request.
    fn answer(&mut self, token: &Token, now: Instant) -> Option<(ConnectionHandle, RequestId)> {
        self.touched += 1;
        let entry = self.by_token.remove(token)?;
        self.by_client.remove(&entry.handle);
        self.expiries.remove(&(entry.expires, *token));
        (entry.expires > now).then_some((entry.handle, entry.request))
    }

    /// Forgets the test of a client (its connection is gone, or it starts
    /// another).
    pub(super) fn forget_client(&mut self, handle: ConnectionHandle) {
        self.touched += 1;
        if let Some(token) = self.by_client.remove(&handle) {
            if let Some(entry) = self.by_token.remove(&token) {
                self.expiries.remove(&(entry.expires, token));
            }
        }
    }

    /// Forgets the tests that expired at `now`.
    pub(super) fn expire(&mut self, now: Instant) {
        while let Some(&(t, token)) = self.expiries.first() {
            if t > now {
                break;
            }
            self.touched += 1;
            self.expiries.pop_first();
            if let Some(entry) = self.by_token.remove(&token) {
                self.by_client.remove(&entry.handle);
            }
        }
    }

    /// When the next test expires.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// Tests open.
    pub(super) fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Entries touched so far.
    #[cfg(test)]
    fn touched(&self) -> u64 {
        self.touched
    }
}

impl RendezvousServer {
    /// A datagram arrived on the second socket ([`ServerConfig::alt_address`](super::ServerConfig::alt_address)).
    pub fn handle_alt_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.now = self.now.max(now);
        if !is_nat_probe(datagram) {
            return;
        }
        let Ok(probe) = NatProbe::parse(datagram) else {
            return;
        };
        let Some((handle, request)) = self.nat_tests.answer(&probe.token, now) else {
            return;
        };
        trace!(%handle, %from, "NAT probe reached the second address");
        let m = Message::NatObserved {
            request,
            observed: from,
        };
        self.send(now, handle, &m);
    }

    /// The next datagram for the **filter** socket: a third socket, on the
    /// second socket's IP address and any other port, that only sends the
    /// unsolicited filtering probes of NAT tests (spec §11.7). They must not
    /// come from the second socket: a NAT without an input firewall keeps a
    /// conntrack entry for an unsolicited probe it received, and a later
    /// mapping probe of the client toward the probe's source would then be
    /// given another port (masquerade avoids the clash) and read as an
    /// endpoint-dependent mapping. A client never sends to the filter
    /// socket, so nothing it sends can clash there.
    pub fn poll_filter_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        pop_probe(&mut self.filter_queue, buf)
    }

    /// A NatTest request (spec §11.7).
    pub(super) fn nat_test(&mut self, now: Instant, handle: ConnectionHandle, request: RequestId) {
        let Some(alt) = self.config.alt_address else {
            self.error(now, handle, request, ErrorCode::NatTestUnavailable);
            return;
        };
        let Some(observed) = self.endpoint.remote_address(handle) else {
            return;
        };
        let Some(source) = self.links.get(&handle).map(|l| l.source) else {
            return;
        };
        let limit = self.config.nat_test_rate_per_source;
        if !self
            .sources
            .try_take(source, SourceRate::NatTest, limit, now)
        {
            self.stats.source_limited += 1;
            self.error(now, handle, request, ErrorCode::RateLimited);
            return;
        }
        let mut filter_token = [0u8; NAT_PROBE_TOKEN_LEN];
        let mut mapping_token = [0u8; NAT_PROBE_TOKEN_LEN];
        self.rng.fill(&mut filter_token);
        self.rng.fill(&mut mapping_token);
        // One test per client at a time.
        self.nat_tests.start(
            handle,
            mapping_token,
            request,
            now + self.config.nat_test_lifetime,
        );
        let mut probe = [0u8; NAT_PROBE_SIZE];
        let probe_ok = NatProbe {
            token: filter_token,
        }
        .emit(&mut probe)
        .is_ok();
        if probe_ok {
            for _ in 0..FILTER_PROBE_COPIES {
                self.filter_queue.push_back((observed, probe));
            }
        }
        self.stats.nat_tests += 1;
        self.send(
            now,
            handle,
            &Message::NatTestStarted {
                request,
                alt,
                filter_token,
                mapping_token,
            },
        );
    }
}

/// Writes the first queued probe into `buf` and dequeues it.
fn pop_probe(
    queue: &mut VecDeque<(SocketAddr, [u8; NAT_PROBE_SIZE])>,
    buf: &mut [u8],
) -> Option<Transmit> {
    let (destination, probe) = queue.front()?;
    let size = probe.len();
    buf.get_mut(..size)?.copy_from_slice(probe);
    let destination = *destination;
    queue.pop_front();
    Some(Transmit {
        destination,
        size,
        hop_limit: None,
        spare_sockets: 0,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn token(i: u32) -> Token {
        let mut t = [0u8; NAT_PROBE_TOKEN_LEN];
        t[..4].copy_from_slice(&i.to_be_bytes());
        t
    }

    /// Finding 8 of issue 15: each NatTest walked every open test, O(C²) per
    /// second for C clients. The work per request is now constant.
    #[test]
    fn starting_a_test_touches_a_constant_number_of_entries_however_many_are_open() {
        let t0 = Instant::now();
        let lifetime = Duration::from_secs(10);
        let mut tests = NatTests::default();
        const CLIENTS: u32 = 10_000;
        for c in 0..CLIENTS {
            tests.start(ConnectionHandle(u64::from(c)), token(c), c, t0 + lifetime);
        }
        assert_eq!(tests.len(), CLIENTS as usize);
        // Every client asks again (its old test is replaced), and one in ten
        // probes arrives: with 10 000 tests open, each costs a few entries.
        let before = tests.touched();
        for c in 0..CLIENTS {
            tests.start(
                ConnectionHandle(u64::from(c)),
                token(CLIENTS + c),
                c,
                t0 + 2 * lifetime,
            );
            if c % 10 == 0 {
                assert_eq!(
                    tests.answer(&token(CLIENTS + c), t0),
                    Some((ConnectionHandle(u64::from(c)), c))
                );
                assert_eq!(tests.answer(&token(c), t0), None, "replaced");
            }
        }
        let work = tests.touched() - before;
        assert!(
            work <= 3 * u64::from(CLIENTS),
            "{work} entries touched for {CLIENTS} requests"
        );
        assert_eq!(tests.len(), CLIENTS as usize * 9 / 10);
        // Expiry visits only what expires.
        let before = tests.touched();
        tests.expire(t0 + lifetime);
        assert_eq!(tests.touched(), before, "nothing was due");
        tests.expire(t0 + 2 * lifetime);
        assert_eq!(tests.len(), 0);
        assert_eq!(tests.next_expiry(), None);
    }

    #[test]
    fn a_probe_after_expiry_or_after_the_client_left_is_not_answered() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut tests = NatTests::default();
        let (a, b) = (ConnectionHandle(1), ConnectionHandle(2));
        tests.start(a, token(1), 7, t0 + 10 * s);
        tests.start(b, token(2), 8, t0 + 10 * s);
        assert_eq!(tests.answer(&token(1), t0 + 10 * s), None, "expired");
        tests.forget_client(b);
        assert_eq!(tests.answer(&token(2), t0), None, "client gone");
        assert_eq!(tests.len(), 0);
        assert_eq!(tests.next_expiry(), None);
    }
}
