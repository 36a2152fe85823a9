//! Spare sockets: the adapter's half of the hard-NAT round (spec §4.4).
//!
//! A datagram whose [`Transmit::spare_sockets`](srudp_proto::Transmit::spare_sockets)
//! is `K` leaves once from each of `K` fresh UDP sockets, bound to the
//! endpoint socket's IP address and port 0: behind a symmetric NAT each
//! makes a mapping of its own toward the peer. What a spare receives is fed
//! to the endpoint like any datagram, and the spare remembers who it heard
//! (on the IP address it was opened toward, so that a spoofed source
//! elsewhere, say the rendezvous server's, cannot pull that traffic onto a
//! spare): later datagrams to an address last heard on a spare leave
//! through that spare, so a path found through one keeps using it.
//!
//! Bounds: at most [`MAX_SPARE_SOCKETS`] spares at a time (a hint asking
//! for more opens what is left), at most [`MAX_ROUTES`] remembered
//! addresses, and a spare closes [`SPARE_IDLE`] after it last received
//! anything (a live path hears keepalives well within that). Runtimes
//! whose driver cannot wait on more than its one socket
//! ([`Runtime::SPARE_SOCKETS`] is `false`) send such a datagram once from
//! the endpoint's socket instead.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use srudp_net::batch::{Inbox, Outbox, UdpBatch};
use srudp_net::socket::Family;
use tracing::{debug, trace};

use crate::runtime::{AsyncUdpSocket, Runtime};

/// Spare sockets an endpoint holds at most at a time.
pub const MAX_SPARE_SOCKETS: usize = 256;
/// A spare closes this long after it last received a datagram (or after it
/// opened, if it never did).
pub const SPARE_IDLE: Duration = Duration::from_secs(30);
/// Remote addresses remembered, at most, as heard on a spare.
const MAX_ROUTES: usize = 1024;
/// Receive calls per spare per driver round.
const RECEIVES_PER_ROUND: usize = 4;

/// One spare socket.
struct Spare<S> {
    id: u64,
    socket: S,
    batch: UdpBatch,
    family: Family,
    /// The IP address it was opened toward: only datagrams from there
    /// make it a route (a spoofed source elsewhere moves nothing).
    toward: IpAddr,
    /// When it last received (or opened).
    heard: Instant,
}

/// The endpoint's spare sockets (see the module docs).
pub(crate) struct SpareSockets<R: Runtime> {
    /// The endpoint socket's address: spares bind to its IP address.
    local: SocketAddr,
    spares: Vec<Spare<R::UdpSocket>>,
    next_id: u64,
    /// Remote address → the spare it was last heard on.
    routes: HashMap<SocketAddr, u64>,
    /// Receive buffers shared by every spare (made with the first one).
    inbox: Option<Inbox>,
    /// One datagram at a time.
    outbox: Outbox,
}

impl<R: Runtime> std::fmt::Debug for SpareSockets<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpareSockets")
            .field("open", &self.spares.len())
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> SpareSockets<R> {
    pub(crate) fn new(local: SocketAddr) -> Self {
        SpareSockets {
            local,
            spares: Vec::new(),
            next_id: 0,
            routes: HashMap::new(),
            inbox: None,
            outbox: Outbox::new(1),
        }
    }

    /// Spares open now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spares.len()
    }

    /// Sends `datagram` to `to` through spares, if it goes that way: from
    /// `count` fresh spares when `count` is not 0 (and the runtime has
    /// them), else through the spare `to` was last heard on. `false`: it
    /// is the endpoint socket's to send.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        to: SocketAddr,
        datagram: &[u8],
        hop_limit: Option<u8>,
        count: u16,
    ) -> bool {
        if count > 0 && R::SPARE_SOCKETS {
            let room = MAX_SPARE_SOCKETS - self.spares.len();
            let mut opened = 0;
            for _ in 0..usize::from(count).min(room) {
                match self.open(now, to, datagram, hop_limit) {
                    Ok(()) => opened += 1,
                    Err(e) => {
                        debug!("cannot open a spare socket: {e}");
                        break;
                    }
                }
            }
            debug!(%to, opened, open = self.spares.len(), "spare sockets opened");
            // None opened (all in use, or the OS refused): the endpoint's
            // own socket sends it, like an adapter without spares.
            return opened > 0;
        }
        // The common case, every datagram of an endpoint that never ran a
        // hard-NAT round: no hashing on the send path.
        if self.routes.is_empty() {
            return false;
        }
        let Some(&id) = self.routes.get(&to) else {
            return false;
        };
        let Some(spare) = self.spares.iter().find(|s| s.id == id) else {
            self.routes.remove(&to);
            return false;
        };
        send_one(&mut self.outbox, spare, to, datagram, hop_limit);
        true
    }

    /// Opens a spare and sends `datagram` to `to` from it. The first send
    /// goes straight through the OS socket: a runtime only reports a socket
    /// writable once its reactor has looked at it.
    fn open(
        &mut self,
        now: Instant,
        to: SocketAddr,
        datagram: &[u8],
        hop_limit: Option<u8>,
    ) -> io::Result<()> {
        let (socket, family) = srudp_net::socket::bind(SocketAddr::new(self.local.ip(), 0))?;
        let batch = UdpBatch::without_offload(&socket)?;
        if self.inbox.is_none() {
            self.inbox = Some(Inbox::new(&batch, 4));
        }
        if queue(&mut self.outbox, family, to, datagram, hop_limit) {
            if let Err(e) = batch.send(&socket, &mut self.outbox) {
                trace!(%to, "spare socket send failed: {e}");
            }
            self.outbox.clear();
        }
        let socket = R::wrap_udp_socket(socket)?;
        self.next_id += 1;
        self.spares.push(Spare {
            id: self.next_id,
            socket,
            batch,
            family,
            toward: to.ip(),
            heard: now,
        });
        Ok(())
    }

    /// Receives what the spares hold and hands each datagram to `deliver`,
    /// remembering on which spare its source was heard. Registers the task
    /// for the spares' readiness.
    pub(crate) fn receive(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        mut deliver: impl FnMut(SocketAddr, &mut [u8]),
    ) {
        let Some(inbox) = &mut self.inbox else {
            return;
        };
        for spare in &mut self.spares {
            for _ in 0..RECEIVES_PER_ROUND {
                match spare.socket.try_receive(&spare.batch, inbox) {
                    Ok(_) => {
                        for (from, datagram) in inbox.datagrams_mut() {
                            spare.heard = now;
                            let room =
                                self.routes.len() < MAX_ROUTES || self.routes.contains_key(&from);
                            if from.ip() == spare.toward && room {
                                self.routes.insert(from, spare.id);
                            }
                            trace!(%from, spare = spare.id, "datagram on a spare socket");
                            deliver(from, datagram);
                        }
                        inbox.clear();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Registers the waker; a readiness that is already
                        // there is looked at next round.
                        if let Poll::Ready(Ok(())) = spare.socket.poll_recv_ready(cx) {
                            cx.waker().wake_by_ref();
                        }
                        break;
                    }
                    // An ICMP error for an earlier send, or a broken spare:
                    // it closes when idle.
                    Err(e) => {
                        trace!(spare = spare.id, "spare socket receive error: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// Closes the spares idle for [`SPARE_IDLE`] and forgets their routes.
    pub(crate) fn expire(&mut self, now: Instant) {
        let before = self.spares.len();
        self.spares.retain(|s| now < s.heard + SPARE_IDLE);
        if self.spares.len() != before {
            let alive: Vec<u64> = self.spares.iter().map(|s| s.id).collect();
            self.routes.retain(|_, id| alive.contains(id));
            debug!(
                closed = before - self.spares.len(),
                open = self.spares.len(),
                "spare sockets closed"
            );
        }
    }

    /// When the next spare closes, if any is open.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.spares.iter().map(|s| s.heard + SPARE_IDLE).min()
    }
}

/// Sends one datagram from `spare`, best effort: a full socket buffer or
/// an unreachable family loses it, like any loss.
fn send_one<S: AsyncUdpSocket>(
    outbox: &mut Outbox,
    spare: &Spare<S>,
    to: SocketAddr,
    datagram: &[u8],
    hop_limit: Option<u8>,
) {
    if !queue(outbox, spare.family, to, datagram, hop_limit) {
        return;
    }
    if let Err(e) = spare.socket.try_send(&spare.batch, outbox) {
        trace!(%to, "spare socket send failed: {e}");
    }
    outbox.clear();
}

/// Puts `datagram` for `to` in the empty one-datagram `outbox`; `false`
/// when `to` is unreachable from the socket's family.
fn queue(
    outbox: &mut Outbox,
    family: Family,
    to: SocketAddr,
    datagram: &[u8],
    hop_limit: Option<u8>,
) -> bool {
    let Some(to) = family.destination(to) else {
        return false;
    };
    let Some(slot) = outbox.free_slot().and_then(|s| s.get_mut(..datagram.len())) else {
        return false;
    };
    slot.copy_from_slice(datagram);
    outbox.push_with_hop_limit(to, datagram.len(), hop_limit);
    true
}

#[cfg(all(test, feature = "async-io"))]
mod tests {
    use std::net::UdpSocket;
    use std::task::{Context, Waker};

    use super::*;
    use crate::runtime::AsyncIo;

    fn receive_all(spares: &mut SpareSockets<AsyncIo>, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        for _ in 0..50 {
            spares.receive(&mut cx, now, |from, d| got.push((from, d.to_vec())));
            if !got.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        got
    }

    #[test]
    fn a_hint_opens_at_most_the_bound_and_a_spare_that_heard_a_peer_carries_its_datagrams() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = peer.local_addr().unwrap();
        let mut spares = SpareSockets::<AsyncIo>::new("127.0.0.1:4433".parse().unwrap());
        let now = Instant::now();
        // Asked for more than the bound: the bound, each sending once from
        // a port of its own.
        assert!(spares.send(now, to, b"knock", Some(2), 300));
        assert_eq!(spares.len(), MAX_SPARE_SOCKETS);
        let mut buf = [0u8; 64];
        let mut ports = std::collections::HashSet::new();
        for _ in 0..MAX_SPARE_SOCKETS {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"knock");
            assert_eq!(from.ip(), to.ip(), "bound to the endpoint's IP address");
            ports.insert(from.port());
        }
        assert_eq!(ports.len(), MAX_SPARE_SOCKETS);
        // All in use: a second hint is the endpoint socket's to send.
        assert!(!spares.send(now, to, b"knock", None, 1));
        // Not heard yet: ordinary datagrams to the peer are not ours.
        assert!(!spares.send(now, to, b"data", None, 0));
        // The peer answers one spare: its datagram is delivered, and from
        // then on datagrams to the peer leave through that spare.
        let spare = *ports.iter().next().unwrap();
        peer.send_to(b"reply", ("127.0.0.1", spare)).unwrap();
        let got = receive_all(&mut spares, now);
        assert_eq!(got, vec![(to, b"reply".to_vec())]);
        assert!(spares.send(now, to, b"data", None, 0));
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        // A datagram from another IP address reaches the endpoint, but
        // routes nothing onto the spare.
        let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
        stranger.send_to(b"spoof", ("127.0.0.1", spare)).unwrap();
        assert_eq!(receive_all(&mut spares, now).len(), 1);
        let elsewhere = stranger.local_addr().unwrap();
        assert!(!spares.send(now, elsewhere, b"data", None, 0));
        assert_eq!((&buf[..n], from.port()), (&b"data"[..], spare));
        // Idle spares close after SPARE_IDLE; the one that heard the peer
        // lives as long as it keeps hearing it.
        let later = now + SPARE_IDLE - Duration::from_secs(1);
        peer.send_to(b"keepalive", ("127.0.0.1", spare)).unwrap();
        assert_eq!(receive_all(&mut spares, later).len(), 1);
        spares.expire(now + SPARE_IDLE);
        assert_eq!(spares.len(), 1);
        assert!(spares.send(now, to, b"data", None, 0));
        spares.expire(later + SPARE_IDLE);
        assert_eq!(spares.len(), 0);
        assert_eq!(spares.next_expiry(), None);
        assert!(!spares.send(now, to, b"data", None, 0), "route forgotten");
    }
}
