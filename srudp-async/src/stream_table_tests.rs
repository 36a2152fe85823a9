//! Scenarios for the stream table: two endpoints joined by a perfect,
//! instantaneous link in virtual time, each with its table, as an adapter
//! would hold them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::*;
use srudp_proto::{EndpointConfig, Keypair, Rng, TransportConfig};

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    (counter, waker)
}

fn wakes(c: &CountingWaker) -> usize {
    c.0.load(Ordering::SeqCst)
}

struct Side {
    ep: Endpoint,
    table: StreamTable,
    addr: SocketAddr,
}

struct Net {
    now: Instant,
    a: Side,
    b: Side,
    /// When false, B neither sends nor receives: it vanished.
    b_alive: bool,
}

fn side(seed: u64, addr: &str, transport: &TransportConfig) -> Side {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed + 1000);
    config.transport = Arc::new(transport.clone());
    Side {
        ep: Endpoint::new(config).unwrap(),
        table: StreamTable::new(),
        addr: addr.parse().unwrap(),
    }
}

impl Net {
    fn new(seed: u64, transport: TransportConfig) -> Net {
        Net {
            now: Instant::now(),
            a: side(seed * 2 + 1, "192.0.2.1:1000", &transport),
            b: side(seed * 2 + 2, "192.0.2.2:2000", &transport),
            b_alive: true,
        }
    }

    fn with_defaults() -> Net {
        Net::new(1, TransportConfig::default())
    }

    /// Carries datagrams both ways until neither side sends, draining
    /// events into the tables after every input, as a driver does.
    fn deliver(&mut self) {
        let mut buf = [0u8; 1200];
        let mut moved = true;
        while moved {
            moved = false;
            while let Some(t) = self.a.ep.poll_transmit(self.now, &mut buf) {
                if self.b_alive && t.destination == self.b.addr {
                    self.b
                        .ep
                        .handle_datagram(self.now, self.a.addr, &buf[..t.size]);
                }
                moved = true;
            }
            while let Some(t) = self.b.ep.poll_transmit(self.now, &mut buf) {
                if self.b_alive && t.destination == self.a.addr {
                    self.a
                        .ep
                        .handle_datagram(self.now, self.b.addr, &buf[..t.size]);
                }
                moved = true;
            }
            self.a.table.drain_events(&mut self.a.ep, self.now);
            self.b.table.drain_events(&mut self.b.ep, self.now);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.a.ep.poll_timeout(),
            self.a.table.poll_timeout(),
            self.b.ep.poll_timeout(),
            self.b.table.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Delivers, then jumps to deadlines until `done` holds or `limit` of
    /// virtual time passed. Returns whether `done` held.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        for _ in 0..100_000 {
            self.deliver();
            if done(self) {
                return true;
            }
            let Some(next) = self.next_deadline() else {
                return false;
            };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            for s in [&mut self.a, &mut self.b] {
                s.ep.handle_timeout(self.now);
                s.table.handle_timeout(&mut s.ep, self.now);
                s.table.drain_events(&mut s.ep, self.now);
            }
        }
        panic!("run_until did not settle");
    }

    /// A connects to B; returns A's stream and B's accepted stream.
    fn connected_pair(&mut self) -> (ConnectionHandle, ConnectionHandle) {
        let handle = self
            .a
            .ep
            .connect(self.now, self.b.ep.public_key(), &[self.b.addr])
            .unwrap();
        self.a.table.insert_connecting(handle);
        let (_, w) = counting_waker();
        let mut accepted = None;
        let mut connected = false;
        self.run_until(Duration::from_secs(5), |n| {
            if !connected {
                connected = matches!(
                    n.a.table.poll_connect(&mut n.a.ep, n.now, handle, &w),
                    Poll::Ready(Ok(_))
                );
            }
            if accepted.is_none() {
                if let Poll::Ready((h, _)) = n.b.table.poll_accept(&w) {
                    accepted = Some(h);
                }
            }
            connected && accepted.is_some()
        });
        (handle, accepted.expect("B accepted the connection"))
    }
}

fn read_all(side: &mut Side, handle: ConnectionHandle, waker: &Waker) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 700];
    loop {
        match side.table.poll_read(&mut side.ep, handle, waker, &mut buf) {
            Poll::Ready(Ok(0)) => return (out, true),
            Poll::Ready(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Poll::Ready(Err(e)) => panic!("read failed: {e}"),
            Poll::Pending => return (out, false),
        }
    }
}

#[test]
fn a_connect_completes_its_call_and_the_peer_lands_in_the_accept_queue() {
    let mut net = Net::with_defaults();
    let (accept_counter, accept_waker) = counting_waker();
    assert!(net.b.table.poll_accept(&accept_waker).is_pending());

    let handle = net
        .a
        .ep
        .connect(net.now, net.b.ep.public_key(), &[net.b.addr])
        .unwrap();
    net.a.table.insert_connecting(handle);
    let (connect_counter, connect_waker) = counting_waker();
    assert!(net
        .a
        .table
        .poll_connect(&mut net.a.ep, net.now, handle, &connect_waker)
        .is_pending());

    net.run_until(Duration::from_secs(5), |n| n.b.table.queued() == 1);
    assert!(wakes(&connect_counter) >= 1, "the connect call was woken");
    assert!(wakes(&accept_counter) >= 1, "the acceptor was woken");
    let Poll::Ready(Ok(info)) =
        net.a
            .table
            .poll_connect(&mut net.a.ep, net.now, handle, &connect_waker)
    else {
        panic!("connect did not complete");
    };
    assert_eq!(info.remote, net.b.addr);
    assert_eq!(info.peer, Some(net.b.ep.public_key()));
    assert_eq!(
        net.a.table.queued(),
        0,
        "our own connection is not accepted"
    );

    let Poll::Ready((accepted, info)) = net.b.table.poll_accept(&accept_waker) else {
        panic!("nothing to accept");
    };
    assert_eq!(info.remote, net.a.addr);
    assert_eq!(info.peer, None, "NK does not reveal the initiator");
    assert_eq!(net.b.table.peer_info(accepted), Some(info));
    assert!(net.b.table.poll_accept(&accept_waker).is_pending());
}

/// Connects with IK, as both sides of a simultaneous open must (spec §4.5).
fn connect_ik(
    ep: &mut Endpoint,
    now: Instant,
    peer: srudp_proto::PublicKey,
    at: SocketAddr,
) -> ConnectionHandle {
    ep.connect_with(
        now,
        srudp_proto::ConnectOptions {
            peer,
            candidates: vec![at],
            pattern: Some(srudp_proto::HandshakePattern::IK),
            ticket: None,
        },
    )
    .unwrap()
}

#[test]
fn crossing_connects_complete_both_calls_and_queue_nothing() {
    let mut net = Net::with_defaults();
    let (a_key, b_key) = (net.a.ep.public_key(), net.b.ep.public_key());
    let ha = connect_ik(&mut net.a.ep, net.now, b_key, net.b.addr);
    let hb = connect_ik(&mut net.b.ep, net.now, a_key, net.a.addr);
    net.a.table.insert_connecting(ha);
    net.b.table.insert_connecting(hb);
    let (_, w) = counting_waker();
    let (mut a_done, mut b_done) = (false, false);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        a_done |=
            n.a.table
                .poll_connect(&mut n.a.ep, n.now, ha, &w)
                .is_ready();
        b_done |=
            n.b.table
                .poll_connect(&mut n.b.ep, n.now, hb, &w)
                .is_ready();
        a_done && b_done
    }));
    assert_eq!(net.a.table.queued() + net.b.table.queued(), 0);
    // One connection: what A writes on its handle arrives on B's.
    let Poll::Ready(Ok(5)) = net.a.table.poll_write(&mut net.a.ep, ha, &w, b"hello") else {
        panic!("write failed");
    };
    net.deliver();
    assert_eq!(read_all(&mut net.b, hb, &w).0, b"hello");
}

/// A connected pair; a reader parked on `b`'s stream (its wake counter
/// and waker); "hello" written on `a`'s, not yet sent.
fn reader_parked_on_b_while_a_writes_hello() -> (
    Net,
    ConnectionHandle,
    ConnectionHandle,
    Arc<CountingWaker>,
    Waker,
) {
    let mut net = Net::with_defaults();
    let (a, b) = net.connected_pair();
    let (reader_counter, reader) = counting_waker();
    let mut buf = [0u8; 16];
    assert!(net
        .b
        .table
        .poll_read(&mut net.b.ep, b, &reader, &mut buf)
        .is_pending());
    let (_, w) = counting_waker();
    assert!(matches!(
        net.a.table.poll_write(&mut net.a.ep, a, &w, b"hello"),
        Poll::Ready(Ok(5))
    ));
    (net, a, b, reader_counter, reader)
}

#[test]
fn a_parked_reader_is_woken_by_data_and_then_sees_the_end_of_the_stream() {
    let (mut net, a, b, reader_counter, reader) = reader_parked_on_b_while_a_writes_hello();
    let (_, w) = counting_waker();
    assert!(net.a.table.poll_finish(&mut net.a.ep, a, &w).is_pending());
    net.run_until(Duration::from_secs(1), |_| wakes(&reader_counter) > 0);
    assert!(wakes(&reader_counter) >= 1);
    assert_eq!(read_all(&mut net.b, b, &reader), (b"hello".to_vec(), true));
}

#[test]
fn a_reader_found_readable_by_the_driver_is_handed_over_to_be_woken_after_the_lock() {
    let (mut net, _a, b, reader_counter, reader) = reader_parked_on_b_while_a_writes_hello();

    // The driver's way: every event through `handle_event`, under the lock.
    let mut datagram = [0u8; 1200];
    while let Some(t) = net.a.ep.poll_transmit(net.now, &mut datagram) {
        net.b
            .ep
            .handle_datagram(net.now, net.a.addr, &datagram[..t.size]);
    }
    while let Some((handle, event)) = net.b.ep.poll_event() {
        net.b
            .table
            .handle_event(&mut net.b.ep, net.now, handle, event);
    }
    assert_eq!(wakes(&reader_counter), 0, "not woken under the lock");
    let mut woken = Vec::new();
    net.b.table.take_woken(&mut woken);
    assert_eq!(woken.len(), 1, "the reader is handed over");
    woken.drain(..).for_each(Waker::wake);
    assert_eq!(wakes(&reader_counter), 1);
    net.b.table.take_woken(&mut woken);
    assert!(woken.is_empty(), "handed over once");
    assert_eq!(read_all(&mut net.b, b, &reader).0, b"hello");
}

#[test]
fn a_full_send_buffer_parks_the_writer_until_the_peer_acknowledges() {
    let transport = TransportConfig {
        send_buffer: 4096,
        ..TransportConfig::default()
    };
    let mut net = Net::new(2, transport);
    let (a, b) = net.connected_pair();
    let (writer_counter, writer) = counting_waker();
    let data = vec![7u8; 10_000];
    let Poll::Ready(Ok(taken)) = net.a.table.poll_write(&mut net.a.ep, a, &writer, &data) else {
        panic!("the first write takes what fits");
    };
    assert_eq!(taken, 4096);
    assert!(net
        .a
        .table
        .poll_write(&mut net.a.ep, a, &writer, &data[taken..])
        .is_pending());
    net.run_until(Duration::from_secs(2), |_| wakes(&writer_counter) > 0);
    assert!(wakes(&writer_counter) >= 1, "the writer was woken");
    assert!(matches!(
        net.a.table.poll_write(&mut net.a.ep, a, &writer, &data[taken..]),
        Poll::Ready(Ok(n)) if n > 0
    ));
    let (r, _) = counting_waker();
    assert!(read_all(&mut net.b, b, &Waker::from(r)).0.len() >= 4096);
}

#[test]
fn finishing_completes_once_the_peer_acknowledged_everything() {
    let mut net = Net::with_defaults();
    let (a, b) = net.connected_pair();
    let (finish_counter, finisher) = counting_waker();
    assert!(matches!(
        net.a
            .table
            .poll_write(&mut net.a.ep, a, &finisher, &[1u8; 5000]),
        Poll::Ready(Ok(5000))
    ));
    assert!(net
        .a
        .table
        .poll_finish(&mut net.a.ep, a, &finisher)
        .is_pending());
    net.run_until(Duration::from_secs(2), |_| wakes(&finish_counter) > 0);
    assert_eq!(
        net.a.table.poll_finish(&mut net.a.ep, a, &finisher),
        Poll::Ready(Ok(()))
    );
    // Finishing is idempotent, and writing after it is an error.
    assert_eq!(
        net.a.table.poll_finish(&mut net.a.ep, a, &finisher),
        Poll::Ready(Ok(()))
    );
    assert_eq!(
        net.a.table.poll_write(&mut net.a.ep, a, &finisher, b"x"),
        Poll::Ready(Err(StreamError::Finished))
    );
    let (r, _) = counting_waker();
    assert_eq!(read_all(&mut net.b, b, &Waker::from(r)).0.len(), 5000);
}

#[test]
fn dropped_streams_on_both_sides_finish_gracefully_and_are_released() {
    let mut net = Net::with_defaults();
    let (a, b) = net.connected_pair();
    let (_, w) = counting_waker();
    assert!(net
        .a
        .table
        .poll_write(&mut net.a.ep, a, &w, &[9u8; 3000])
        .is_ready());
    net.a.table.drop_stream(&mut net.a.ep, net.now, a);
    let mut received = Vec::new();
    assert!(net.run_until(Duration::from_secs(1), |n| {
        let (bytes, end) = read_all(&mut n.b, b, &w);
        received.extend(bytes);
        end
    }));
    assert_eq!(received, vec![9u8; 3000]);
    net.b.table.drop_stream(&mut net.b.ep, net.now, b);
    assert!(net.run_until(Duration::from_secs(60), |n| {
        n.a.table.is_empty()
            && n.b.table.is_empty()
            && n.a.ep.connection_count() == 0
            && n.b.ep.connection_count() == 0
    }));
}

#[test]
fn a_dropped_stream_whose_peer_never_finishes_is_closed_at_the_idle_timeout() {
    let mut net = Net::with_defaults();
    let (a, b) = net.connected_pair();
    let dropped_at = net.now;
    net.a.table.drop_stream(&mut net.a.ep, net.now, a);
    // B keeps its stream open (keepalives flow), so only the deadline ends A's.
    assert!(net.run_until(Duration::from_secs(120), |n| n.a.table.is_empty()));
    let idle = TransportConfig::default().idle_timeout;
    assert!(net.now - dropped_at >= idle);
    net.run_until(Duration::from_secs(5), |n| {
        n.b.table.close_reason(b).is_some()
    });
    assert!(matches!(
        net.b.table.close_reason(b),
        Some(CloseReason::PeerClose { code: 0, .. })
    ));
}

#[test]
fn data_sent_to_a_dropped_stream_aborts_the_connection_once_ours_is_delivered() {
    let mut net = Net::with_defaults();
    let (a, b) = net.connected_pair();
    let (_, w) = counting_waker();
    assert!(net
        .a
        .table
        .poll_write(&mut net.a.ep, a, &w, b"request")
        .is_ready());
    net.a.table.drop_stream(&mut net.a.ep, net.now, a);
    let mut received = Vec::new();
    assert!(net.run_until(Duration::from_secs(1), |n| {
        let (bytes, end) = read_all(&mut n.b, b, &w);
        received.extend(bytes);
        end
    }));
    assert_eq!(received, b"request");
    // A dropped its stream without waiting for an answer: B's answer is
    // read by nobody, and, as with TCP, B learns it (well before the idle
    // timeout that would otherwise end A's lingering).
    assert!(net
        .b
        .table
        .poll_write(&mut net.b.ep, b, &w, b"unwanted answer")
        .is_ready());
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.b.table.close_reason(b).is_some()
    }));
    assert!(
        matches!(
            net.b.table.close_reason(b),
            Some(CloseReason::PeerClose { .. })
        ),
        "{:?}",
        net.b.table.close_reason(b)
    );
    assert!(net.a.table.is_empty());
}

#[test]
fn a_connect_nobody_answers_fails_with_a_handshake_timeout_and_is_forgotten() {
    let mut net = Net::with_defaults();
    net.b_alive = false;
    let handle = net
        .a
        .ep
        .connect(net.now, net.b.ep.public_key(), &[net.b.addr])
        .unwrap();
    net.a.table.insert_connecting(handle);
    let (_, w) = counting_waker();
    let mut result = None;
    net.run_until(Duration::from_secs(60), |n| {
        if let Poll::Ready(r) = n.a.table.poll_connect(&mut n.a.ep, n.now, handle, &w) {
            result = Some(r);
        }
        result.is_some()
    });
    assert_eq!(
        result,
        Some(Err(StreamError::Closed(CloseReason::HandshakeTimeout)))
    );
    assert!(net.a.table.is_empty());
    assert_eq!(net.a.ep.connection_count(), 0);
}

#[test]
fn an_abandoned_connect_is_closed_and_forgotten() {
    let mut net = Net::with_defaults();
    let handle = net
        .a
        .ep
        .connect(net.now, net.b.ep.public_key(), &[net.b.addr])
        .unwrap();
    net.a.table.insert_connecting(handle);
    net.a.table.abandon_connect(&mut net.a.ep, net.now, handle);
    assert!(net.a.table.is_empty());
    net.run_until(Duration::from_secs(30), |n| n.a.ep.connection_count() == 0);
    assert_eq!(net.a.ep.connection_count(), 0);
}

#[test]
fn after_stop_accepting_queued_and_new_connections_are_closed() {
    let mut net = Net::with_defaults();
    let first = net
        .a
        .ep
        .connect(net.now, net.b.ep.public_key(), &[net.b.addr])
        .unwrap();
    net.a.table.insert_connecting(first);
    net.run_until(Duration::from_secs(5), |n| n.b.table.queued() == 1);
    net.b.table.stop_accepting(&mut net.b.ep, net.now);
    assert_eq!(net.b.table.queued(), 0);

    let second = net
        .a
        .ep
        .connect(net.now, net.b.ep.public_key(), &[net.b.addr])
        .unwrap();
    net.a.table.insert_connecting(second);
    net.run_until(Duration::from_secs(5), |n| {
        n.a.table.close_reason(first).is_some() && n.a.table.close_reason(second).is_some()
    });
    let (_, w) = counting_waker();
    assert!(net.b.table.poll_accept(&w).is_pending());
    assert!(net.b.table.is_empty());
    for h in [first, second] {
        assert!(
            matches!(
                net.a.table.close_reason(h),
                Some(CloseReason::PeerClose { code: 0, .. })
            ),
            "{h}: {:?}",
            net.a.table.close_reason(h)
        );
    }
}

#[test]
fn closing_everything_reports_a_local_close_to_every_stream() {
    let mut net = Net::with_defaults();
    let (a, _b) = net.connected_pair();
    let pending = net
        .a
        .ep
        .connect(
            net.now,
            Keypair::generate(&mut Rng::from_seed(9)).public(),
            &[net.b.addr],
        )
        .unwrap();
    net.a.table.insert_connecting(pending);
    let (reader_counter, reader) = counting_waker();
    let mut buf = [0u8; 8];
    assert!(net
        .a
        .table
        .poll_read(&mut net.a.ep, a, &reader, &mut buf)
        .is_pending());

    net.a
        .table
        .close_all(&mut net.a.ep, net.now, 0, b"shutdown");
    assert_eq!(wakes(&reader_counter), 1, "the parked reader was woken");
    let local = StreamError::Closed(CloseReason::LocalClose { code: 0 });
    assert_eq!(
        net.a.table.poll_read(&mut net.a.ep, a, &reader, &mut buf),
        Poll::Ready(Err(local.clone()))
    );
    assert_eq!(
        net.a
            .table
            .poll_connect(&mut net.a.ep, net.now, pending, &reader),
        Poll::Ready(Err(local))
    );
}

/// A connects to B with `pattern`; returns A's handle once B's accept
/// queue holds the connection.
fn a_connects_to_b(net: &mut Net, pattern: srudp_proto::HandshakePattern) -> ConnectionHandle {
    let ha = net
        .a
        .ep
        .connect_with(
            net.now,
            srudp_proto::ConnectOptions {
                peer: net.b.ep.public_key(),
                candidates: vec![net.b.addr],
                pattern: Some(pattern),
                ticket: None,
            },
        )
        .unwrap();
    net.a.table.insert_connecting(ha);
    net.run_until(Duration::from_secs(5), |n| n.b.table.queued() == 1);
    ha
}

#[test]
fn an_anonymous_connection_is_never_claimed_for_a_key_whatever_its_address() {
    let mut net = Net::with_defaults();
    a_connects_to_b(&mut net, srudp_proto::HandshakePattern::NK);
    let a_key = net.a.ep.public_key();
    // The NK initiator comes from A's own address, and a connect toward A
    // lists that address: still not A, as far as anything proved.
    assert_eq!(net.b.table.claim_incoming(a_key), None);
    assert_eq!(
        net.b.table.queued(),
        1,
        "it stays an anonymous incoming connection"
    );
}

#[test]
fn a_late_connect_claims_the_peers_connection_from_the_accept_queue() {
    let mut net = Net::with_defaults();
    let ha = a_connects_to_b(&mut net, srudp_proto::HandshakePattern::IK);
    let a_key = net.a.ep.public_key();

    // Not A's key: no claim.
    assert_eq!(
        net.b.table.claim_incoming(srudp_proto::PublicKey([9; 32])),
        None
    );

    let hb = net
        .b
        .table
        .claim_incoming(a_key)
        .expect("A's connection is claimed");
    assert_eq!(net.b.table.queued(), 0);
    let (_, w) = counting_waker();
    let Poll::Ready(Ok(info)) = net.b.table.poll_connect(&mut net.b.ep, net.now, hb, &w) else {
        panic!("a claimed connection is connected at once");
    };
    assert_eq!(info.peer, Some(a_key), "reported as the key connected to");
    assert!(net.b.table.poll_accept(&w).is_pending());
    // One connection: B's claimed handle reaches A's.
    assert!(matches!(
        net.b.table.poll_write(&mut net.b.ep, hb, &w, b"hi"),
        Poll::Ready(Ok(2))
    ));
    net.deliver();
    net.run_until(Duration::from_secs(1), |n| {
        matches!(
            n.a.table.poll_connect(&mut n.a.ep, n.now, ha, &w),
            Poll::Ready(Ok(_))
        )
    });
    assert_eq!(read_all(&mut net.a, ha, &w).0, b"hi");
}
