//! Closing: graceful close delivers every byte; an abrupt close reports its
//! code and reason to the other side (spec §6.6).

mod common;

use std::time::Duration;

use common::{addr, data, pump, Pair, Side, B_ADDR};
use srudp_proto::sim::{LinkConfig, LossModel};
use srudp_proto::{CloseReason, Event, ReadError, TransportConfig, WriteError};

#[test]
fn graceful_close_delivers_every_byte_even_under_loss() {
    let link = LinkConfig::default()
        .with_latency(Duration::from_millis(20))
        .with_loss(LossModel::Bernoulli(0.05));
    let mut p = Pair::public(3, link, TransportConfig::default());
    let (a_data, b_data) = (data(1, 300_000), data(2, 123_457));
    let t = p.transfer(&a_data, &b_data, Duration::from_secs(120));
    assert!(t.b.received == a_data);
    assert!(t.a.received == b_data);
    assert!(
        t.a.peer_finished && t.b.peer_finished,
        "both saw end of stream"
    );
    assert!(
        t.a.all_acked && t.b.all_acked,
        "both writers learned their bytes were acknowledged"
    );
    assert_eq!(t.a.closed, Some(CloseReason::Finished));
    assert_eq!(t.b.closed, Some(CloseReason::Finished));
}

#[test]
fn end_of_stream_is_seen_only_after_every_byte() {
    let link = LinkConfig::default()
        .with_latency(Duration::from_millis(20))
        .with_reorder(0.3, Duration::from_millis(30));
    let mut p = Pair::public(4, link, TransportConfig::default());
    let ha = p.connect_a_to_b();
    let payload = data(9, 200_000);
    let mut sa = Side {
        handle: Some(ha),
        ..Side::default()
    };
    let mut sb = Side::default();
    let (a, b) = (p.a, p.b);
    let mut eof_at = None;
    p.sim.run_until(Duration::from_secs(30), |sim, events| {
        for e in events {
            if e.node == b {
                sb.handle.get_or_insert(e.handle);
                if e.event == Event::PeerFinished {
                    eof_at = Some(sb.received.len());
                }
            }
        }
        pump(sim, a, &mut sa, &payload);
        let before = sb.received.len();
        pump(sim, b, &mut sb, &[]);
        if eof_at.is_some() && sb.received.len() == before {
            // After PeerFinished and all buffered bytes, read reports end of stream.
            let mut buf = [0u8; 10];
            assert_eq!(sim.endpoint(b).read(sb.handle.unwrap(), &mut buf), Ok(0));
            return true;
        }
        false
    });
    assert!(eof_at.is_some(), "PeerFinished was reported");
    assert!(
        sb.received == payload,
        "got {} of {} bytes",
        sb.received.len(),
        payload.len()
    );
}

#[test]
fn abrupt_close_reports_code_and_reason_to_the_peer() {
    let mut p = Pair::public(
        5,
        LinkConfig::default().with_latency(Duration::from_millis(15)),
        TransportConfig::default(),
    );
    let ha = p.connect_a_to_b();
    p.sim.endpoint(p.a).write(ha, b"some data").unwrap();
    let hb = common::wait_for(&mut p.sim, Duration::from_secs(5), |e| {
        e.node == p.b && matches!(e.event, Event::Connected { .. })
    })
    .expect("b accepts")
    .handle;
    let now = p.sim.now();
    p.sim
        .endpoint(p.b)
        .close(now, hb, 42, "shutting down for maintenance".as_bytes());
    let closed_a = common::wait_for(&mut p.sim, Duration::from_secs(5), |e| {
        e.node == p.a && matches!(e.event, Event::Closed { .. })
    })
    .expect("a learns of the close");
    assert_eq!(
        closed_a.event,
        Event::Closed {
            reason: CloseReason::PeerClose {
                code: 42,
                reason: "shutting down for maintenance".into()
            }
        }
    );
    // API misuse after the close gives errors, not panics.
    assert_eq!(
        p.sim.endpoint(p.a).write(ha, b"more"),
        Err(WriteError::Closed)
    );
    let mut buf = [0u8; 4];
    assert_eq!(
        p.sim.endpoint(p.a).read(ha, &mut buf),
        Err(ReadError::Closed)
    );
    let now = p.sim.now();
    p.sim.endpoint(p.a).release(now, ha);
    assert_eq!(
        p.sim.endpoint(p.a).write(ha, b"more"),
        Err(WriteError::UnknownConnection)
    );
    assert_eq!(
        p.sim.endpoint(p.a).read(ha, &mut buf),
        Err(ReadError::UnknownConnection)
    );
    assert_eq!(
        p.sim.endpoint(p.a).finish(ha),
        Err(WriteError::UnknownConnection)
    );
}

#[test]
fn writing_after_finish_is_an_error() {
    let mut p = Pair::public(6, LinkConfig::default(), TransportConfig::default());
    let ha = p.connect_a_to_b();
    p.sim.endpoint(p.a).write(ha, b"x").unwrap();
    p.sim.endpoint(p.a).finish(ha).unwrap();
    assert_eq!(
        p.sim.endpoint(p.a).write(ha, b"y"),
        Err(WriteError::Finished)
    );
    assert_eq!(p.sim.endpoint(p.a).finish(ha), Err(WriteError::Finished));
}

/// `a` connects to `b` on a clean 15 ms path; returns both handles once `b`
/// accepted.
fn connected(p: &mut Pair) -> (srudp_proto::ConnectionHandle, srudp_proto::ConnectionHandle) {
    let ha = p.connect_a_to_b();
    let hb = common::wait_for(&mut p.sim, Duration::from_secs(5), |e| {
        e.node == p.b && matches!(e.event, Event::Connected { .. })
    })
    .expect("b accepts")
    .handle;
    (ha, hb)
}

#[test]
fn an_abrupt_close_is_answered_so_the_closer_stops_lingering_at_once() {
    // Spec §6.6: the side that receives CLOSE answers it once, whatever its
    // code, which ends the closer's `Closing` instead of the full 12 s.
    let link = LinkConfig::default().with_latency(Duration::from_millis(15));
    let mut p = Pair::public(31, link, TransportConfig::default());
    let (ha, hb) = connected(&mut p);
    let now = p.sim.now();
    p.sim.endpoint(p.b).close(now, hb, 9, b"going away");
    // The application is done with it; the endpoint keeps it while Closing.
    p.sim.endpoint(p.b).release(now, hb);
    let (a, b) = (p.a, p.b);
    let mut a_reason = None;
    let mut gone_after = None;
    p.sim.run_until(Duration::from_secs(30), |sim, events| {
        for e in events {
            if e.node == a {
                if let Event::Closed { reason } = &e.event {
                    a_reason = Some(reason.clone());
                    let now = sim.now();
                    sim.endpoint(a).release(now, ha);
                }
            }
        }
        let gone = sim.endpoint(b).connection_count() == 0;
        if gone {
            gone_after = Some(sim.now() - now);
        }
        gone
    });
    assert_eq!(
        a_reason,
        Some(CloseReason::PeerClose {
            code: 9,
            reason: "going away".into()
        })
    );
    let gone_after = gone_after.expect("the closer forgets the connection");
    // Unanswered, `Closing` lasts max(3 × PTO, 12 s); answered, the closer
    // only drains for 3 × PTO (about 1 s each this early in a connection).
    assert!(
        gone_after < Duration::from_secs(12),
        "the closer lingered {gone_after:?}: the answer did not end its Closing"
    );
}

#[test]
fn an_idle_peer_whose_close_was_lost_learns_the_reason_from_the_answer_to_its_keepalive() {
    // `b` aborts while its link drops everything, so its CLOSE is lost.
    // `a` is idle: its next keepalive (at most a third of the idle timeout,
    // §6.8) reaches `b` within `b`'s closing period (§6.6), and `b`'s answer
    // tells `a` the code and reason instead of `a` timing out.
    let link = LinkConfig::default().with_latency(Duration::from_millis(15));
    let mut p = Pair::public(32, link.clone(), TransportConfig::default());
    let (_ha, hb) = connected(&mut p);
    common::run_for(&mut p.sim, Duration::from_millis(200));
    let b_host = p.sim.network.host_by_ip(addr(B_ADDR).ip()).unwrap();
    p.sim
        .network
        .set_link(b_host, link.clone().with_loss_rate(1.0))
        .unwrap();
    p.sim.record_datagrams();
    let now = p.sim.now();
    p.sim.endpoint(p.b).close(now, hb, 3, b"disk full");
    common::run_for(&mut p.sim, Duration::from_millis(100));
    let b_addr = addr(B_ADDR);
    assert!(
        p.sim.captured().iter().any(|d| d.from == b_addr),
        "b sent its CLOSE into the dead link"
    );
    p.sim.network.set_link(b_host, link).unwrap();
    let closed_a = common::wait_for(&mut p.sim, Duration::from_secs(20), |e| {
        e.node == p.a && matches!(e.event, Event::Closed { .. })
    })
    .expect("a learns of the close");
    assert_eq!(
        closed_a.event,
        Event::Closed {
            reason: CloseReason::PeerClose {
                code: 3,
                reason: "disk full".into()
            }
        }
    );
}

#[test]
fn in_the_low_latency_profile_a_lost_close_is_repeated_to_the_peers_next_packet() {
    // Spec §6.6: the closing side answers for max(3 × PTO, 12 s) in every
    // profile. The low-latency profile caps probe backoff at 1 s; the
    // closing period must not follow it down, or an idle peer whose single
    // CLOSE was lost sends its next keepalive (10 s later) to a side that
    // forgot the connection, and reports an idle timeout instead of the
    // close.
    let link = LinkConfig::default().with_latency(Duration::from_millis(15));
    let mut p = Pair::public(33, link.clone(), TransportConfig::low_latency());
    let (_ha, hb) = connected(&mut p);
    common::run_for(&mut p.sim, Duration::from_millis(200));
    let b_host = p.sim.network.host_by_ip(addr(B_ADDR).ip()).unwrap();
    p.sim
        .network
        .set_link(b_host, link.clone().with_loss_rate(1.0))
        .unwrap();
    p.sim.record_datagrams();
    let closed_at = p.sim.now();
    p.sim
        .endpoint(p.b)
        .close(closed_at, hb, 7, b"shutting down");
    common::run_for(&mut p.sim, Duration::from_millis(100));
    let b_addr = addr(B_ADDR);
    let closes_sent = p.sim.captured().iter().filter(|d| d.from == b_addr).count();
    assert_eq!(closes_sent, 1, "b sent its one CLOSE into the dead link");
    p.sim.network.set_link(b_host, link).unwrap();
    let closed_a = common::wait_for(&mut p.sim, Duration::from_secs(40), |e| {
        e.node == p.a && matches!(e.event, Event::Closed { .. })
    })
    .expect("a learns of the close");
    let learned_after = p.sim.now() - closed_at;
    assert!(
        learned_after > Duration::from_secs(3) && learned_after < srudp_proto::CLOSING_PERIOD,
        "a learned after {learned_after:?}: its next packet came after the old 3 s window \
         and within the closing period"
    );
    assert_eq!(
        closed_a.event,
        Event::Closed {
            reason: CloseReason::PeerClose {
                code: 7,
                reason: "shutting down".into()
            }
        }
    );
}
