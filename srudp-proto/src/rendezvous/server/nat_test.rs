//! The server's side of NAT behaviour tests (spec §11.7): the second
//! socket, its probes, and the report of what it observed.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::trace;

use super::RendezvousServer;
use crate::rendezvous::message::{ErrorCode, Message, RequestId};
use crate::wire::relay::is_nat_probe;
use crate::wire::{NatProbe, NAT_PROBE_SIZE, NAT_PROBE_TOKEN_LEN};
use crate::{ConnectionHandle, Transmit};

/// Copies of the unsolicited NAT probe (a lost probe would read as "filtered").
const FILTER_PROBE_COPIES: usize = 2;

/// A NAT test waiting for the client's probe at the second socket.
#[derive(Debug)]
pub(super) struct NatTestEntry {
    pub(super) handle: ConnectionHandle,
    request: RequestId,
    expires: Instant,
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
        let Some(test) = self.nat_tests.remove(&probe.token) else {
            return;
        };
        if test.expires <= now {
            return;
        }
        trace!(handle = %test.handle, %from, "NAT probe reached the second address");
        let m = Message::NatObserved {
            request: test.request,
            observed: from,
        };
        self.send(now, test.handle, &m);
    }

    /// The next datagram for the second socket.
    pub fn poll_alt_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (destination, probe) = self.alt_queue.front()?;
        let size = probe.len();
        let out = buf.get_mut(..size)?;
        out.copy_from_slice(probe);
        let destination = *destination;
        self.alt_queue.pop_front();
        Some(Transmit { destination, size })
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
        let mut filter_token = [0u8; NAT_PROBE_TOKEN_LEN];
        let mut mapping_token = [0u8; NAT_PROBE_TOKEN_LEN];
        self.rng.fill(&mut filter_token);
        self.rng.fill(&mut mapping_token);
        // One test per client at a time; expired tests are forgotten.
        self.nat_tests
            .retain(|_, t| t.handle != handle && t.expires > now);
        self.nat_tests.insert(
            mapping_token,
            NatTestEntry {
                handle,
                request,
                expires: now + self.config.nat_test_lifetime,
            },
        );
        let mut probe = [0u8; NAT_PROBE_SIZE];
        let probe_ok = NatProbe {
            token: filter_token,
        }
        .emit(&mut probe)
        .is_ok();
        if probe_ok {
            for _ in 0..FILTER_PROBE_COPIES {
                self.alt_queue.push_back((observed, probe));
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
