//! Drives srudp [`Endpoint`]s over a simulated [`Network`] in virtual time.
//!
//! A [`Simulation`] owns the network, the virtual clock and the endpoints
//! (each bound to one socket address). [`Simulation::step`] moves every
//! pending transmit into the network, returns the events the endpoints
//! produced, and — when there are none — jumps the clock straight to the next
//! delivery or timer. A transfer of many megabytes over a 50 ms link takes a
//! few wall-clock seconds at most, and the same seeds replay exactly.
//!
//! Every datagram an endpoint emits is checked against the protocol's size
//! limit (1200 bytes), and every connection that closes because its peer
//! broke the protocol (for example a STREAM frame over 1024 bytes, which the
//! receiver's parser rejects) panics the simulation: both are bugs in the
//! sender. Tests that provoke protocol errors on purpose opt out with
//! [`Simulation::allow_protocol_errors`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Network;
use crate::wire::{MAX_DATAGRAM_SIZE, MAX_UDP_PAYLOAD_SIZE};
use crate::{CloseReason, ConnectionHandle, Endpoint, Event};

/// Index of an endpoint in a [`Simulation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// An event reported by one endpoint of the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    /// Which endpoint.
    pub node: NodeId,
    /// Which of its connections.
    pub handle: ConnectionHandle,
    /// What happened.
    pub event: Event,
}

#[derive(Debug)]
struct Node {
    addr: SocketAddr,
    endpoint: Endpoint,
}

/// A datagram as an endpoint sent it, before the network touched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Virtual time of sending.
    pub at: Instant,
    /// The sending socket.
    pub from: SocketAddr,
    /// The destination.
    pub to: SocketAddr,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// Endpoints joined by a simulated network, in virtual time.
#[derive(Debug)]
pub struct Simulation {
    /// The network; change links or flush NATs through it mid-run.
    pub network: Network,
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    buf: Vec<u8>,
    trace: Option<Vec<String>>,
    captured: Option<Vec<Captured>>,
    datagrams_sent: u64,
    largest_datagram: usize,
    protocol_errors_allowed: bool,
}

impl Simulation {
    /// A simulation over `network` whose clock starts at `start`.
    pub fn new(network: Network, start: Instant) -> Self {
        Simulation {
            network,
            start,
            now: start,
            nodes: Vec::new(),
            buf: vec![0; MAX_UDP_PAYLOAD_SIZE],
            trace: None,
            captured: None,
            datagrams_sent: 0,
            largest_datagram: 0,
            protocol_errors_allowed: false,
        }
    }

    /// Binds `endpoint` to the socket address `addr` (whose IP must be a host
    /// of the network).
    pub fn add_endpoint(&mut self, addr: SocketAddr, endpoint: Endpoint) -> NodeId {
        self.nodes.push(Node { addr, endpoint });
        NodeId(self.nodes.len() - 1)
    }

    /// The endpoint of `node`, to issue commands.
    pub fn endpoint(&mut self, node: NodeId) -> &mut Endpoint {
        &mut self.nodes[node.0].endpoint
    }

    /// The socket address of `node`.
    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.nodes[node.0].addr
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Lets connections close with protocol errors without panicking (for
    /// tests that inject protocol violations on purpose).
    pub fn allow_protocol_errors(&mut self) {
        self.protocol_errors_allowed = true;
    }

    /// Starts recording a textual trace of every datagram and event.
    pub fn record_trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// The trace recorded so far (empty unless [`record_trace`](Self::record_trace) was called).
    pub fn trace(&self) -> &[String] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Starts keeping a copy of every datagram the endpoints send (for replay
    /// and tampering tests).
    pub fn record_datagrams(&mut self) {
        self.captured = Some(Vec::new());
    }

    /// The datagrams captured so far.
    pub fn captured(&self) -> &[Captured] {
        self.captured.as_deref().unwrap_or(&[])
    }

    /// Datagrams the endpoints sent so far, and the largest one's size.
    pub fn datagram_counts(&self) -> (u64, usize) {
        (self.datagrams_sent, self.largest_datagram)
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let t = (self.now - self.start).as_micros();
            trace.push(format!("{t:>12} {}", line()));
        }
    }

    /// Sends every pending transmit into the network and collects events.
    fn flush(&mut self, events: &mut Vec<SimEvent>) {
        for i in 0..self.nodes.len() {
            loop {
                let now = self.now;
                let node = &mut self.nodes[i];
                let Some(t) = node.endpoint.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                // Only a Data packet sent directly may exceed the base size,
                // once path MTU discovery found room (spec §6.9).
                let data = self.buf[..2] == [crate::wire::VERSION, 3];
                let limit = if data {
                    MAX_UDP_PAYLOAD_SIZE
                } else {
                    MAX_DATAGRAM_SIZE
                };
                assert!(
                    t.size <= limit,
                    "endpoint {i} emitted a {}-byte datagram (limit {limit})",
                    t.size
                );
                let from = node.addr;
                self.network
                    .send(now, from, t.destination, &self.buf[..t.size]);
                self.datagrams_sent += 1;
                if let Some(c) = &mut self.captured {
                    c.push(Captured {
                        at: now,
                        from,
                        to: t.destination,
                        payload: self.buf[..t.size].to_vec(),
                    });
                }
                self.largest_datagram = self.largest_datagram.max(t.size);
                let size = t.size;
                let kind = self.buf[1];
                self.log(|| format!("send {from} -> {} type {kind} len {size}", t.destination));
            }
            while let Some((handle, event)) = self.nodes[i].endpoint.poll_event() {
                if let Event::Closed {
                    reason:
                        reason @ (CloseReason::ProtocolViolation { .. } | CloseReason::PeerError { .. }),
                } = &event
                {
                    assert!(
                        self.protocol_errors_allowed,
                        "node {i} {handle}: connection closed by a protocol error: {reason}"
                    );
                }
                self.log(|| format!("event node {i} {handle} {event:?}"));
                events.push(SimEvent {
                    node: NodeId(i),
                    handle,
                    event,
                });
            }
        }
    }

    /// Runs one step and returns the events it produced.
    ///
    /// Pending transmits are sent first; if that produced events they are
    /// returned at once (so the caller can react at the same instant).
    /// Otherwise the clock jumps to the next delivery or timer, which is
    /// processed. Returns `None` when nothing can happen any more: no datagram
    /// in flight and no timer armed.
    pub fn step(&mut self) -> Option<Vec<SimEvent>> {
        self.step_bounded(None)
    }

    /// Like [`step`](Self::step), but the clock never passes `limit`: when
    /// nothing is due by then, it stops at `limit` (later than now) and the
    /// step returns no events. Lets a test act at fixed instants — inject
    /// traffic from outside the network, say — even while the endpoints are
    /// idle.
    pub fn step_until(&mut self, limit: Instant) -> Vec<SimEvent> {
        self.step_bounded(Some(limit)).unwrap_or_default()
    }

    fn step_bounded(&mut self, limit: Option<Instant>) -> Option<Vec<SimEvent>> {
        let mut events = Vec::new();
        self.flush(&mut events);
        if !events.is_empty() {
            return Some(events);
        }
        let next_timer = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint.poll_timeout())
            .min();
        let next = [self.network.next_delivery_time(), next_timer]
            .into_iter()
            .flatten()
            .min();
        let next = match (next, limit) {
            (Some(n), Some(l)) if n > l => {
                self.now = self.now.max(l);
                return Some(events);
            }
            (None, Some(l)) => {
                self.now = self.now.max(l);
                return None;
            }
            (n, _) => n?,
        };
        self.now = self.now.max(next);
        let now = self.now;
        while let Some(d) = self.network.poll_delivery(now) {
            let Some(i) = self.nodes.iter().position(|n| n.addr == d.to) else {
                continue;
            };
            let len = d.payload.len();
            self.log(|| format!("recv {} -> {} len {len}", d.from, d.to));
            self.nodes[i]
                .endpoint
                .handle_datagram(now, d.from, &d.payload);
        }
        for node in &mut self.nodes {
            if node.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                node.endpoint.handle_timeout(now);
            }
        }
        self.flush(&mut events);
        Some(events)
    }

    /// Steps until `f` returns `true` for the events of a step (returns
    /// `true`), or `limit` more virtual time passed or nothing can happen any
    /// more (returns `false`).
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut Simulation, &[SimEvent]) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        while self.now <= deadline {
            let Some(events) = self.step() else {
                return false;
            };
            if f(self, &events) {
                return true;
            }
        }
        false
    }
}
