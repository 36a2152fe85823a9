//! A graceful close over impaired links (loss, bursts, reordering,
//! duplication) ends `Finished` on both sides whenever the path still works
//! (spec §6.6): a bounded sweep of seeds in virtual time.

mod common;

use std::time::Duration;

use common::{data, Pair};
use srudp_proto::sim::{LinkConfig, LossModel};
use srudp_proto::{CloseReason, Rng, TransportConfig};

/// The impaired access link of one sweep scenario, derived from its seed.
fn impaired_link(r: &mut Rng) -> LinkConfig {
    let loss = r.below(16) as f64 / 100.0; // 0..=15 % per link
    let loss = if r.below(2) == 0 {
        LossModel::Bernoulli(loss)
    } else {
        // Bursts of 2 packets on average. The chain moves per packet, so
        // where traffic is sparse (handshake, close) a burst of many
        // packets would be an outage of many seconds: keep them short.
        let p_bad_to_good = 0.5;
        LossModel::GilbertElliott {
            p_good_to_bad: loss * p_bad_to_good / (1.0 - loss),
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    };
    LinkConfig::default()
        .with_latency(Duration::from_millis(1 + r.below(40)))
        .with_jitter(Duration::from_millis(r.below(10)))
        .with_loss(loss)
        .with_duplicate(r.below(6) as f64 / 100.0)
        .with_reorder(
            r.below(11) as f64 / 100.0,
            Duration::from_millis(5 + r.below(30)),
        )
}

/// One small transfer each way followed by a graceful close on both sides;
/// returns how each side's connection ended.
fn close_scenario(seed: u64) -> (String, Option<CloseReason>, Option<CloseReason>) {
    let mut r = Rng::from_seed(seed);
    let link_a = impaired_link(&mut r);
    let link_b = impaired_link(&mut r);
    let desc = format!("seed {seed}: a {link_a:?}, b {link_b:?}");
    let mut p = Pair::public_with(5000 + seed, link_a, link_b, TransportConfig::default());
    let a_data = data(seed, 1 + r.below(20_000) as usize);
    let b_data = data(seed + 1, r.below(20_000) as usize);
    let t = p.transfer(&a_data, &b_data, Duration::from_secs(200));
    if t.a.closed == Some(CloseReason::Finished) {
        assert!(t.b.received == a_data, "{desc}: b's bytes");
    }
    if t.b.closed == Some(CloseReason::Finished) {
        assert!(t.a.received == b_data, "{desc}: a's bytes");
    }
    (desc, t.a.closed, t.b.closed)
}

/// Seeds of `close_scenario` in which, before the fix, the side that
/// closed first (its data acknowledged, the peer's stream received) had
/// stopped answering after 12 s while the peer, whose last ACKs were lost,
/// was still probing: the peer ended `IdleTimeout` after the other side
/// reported `Finished` (477: a; 1236 and 2883: b).
const LOST_FINAL_ACK_SEEDS: [u64; 3] = [477, 1236, 2883];

#[test]
fn a_peer_whose_final_acks_were_lost_still_hears_the_close_and_ends_finished() {
    for seed in LOST_FINAL_ACK_SEEDS {
        let (desc, a, b) = close_scenario(seed);
        assert_eq!(a, Some(CloseReason::Finished), "{desc}");
        assert_eq!(b, Some(CloseReason::Finished), "{desc}");
    }
}

#[test]
fn graceful_close_over_500_impaired_links_ends_finished_on_both_sides() {
    let mut unclean = Vec::new();
    for seed in 0..500 {
        let (desc, a, b) = close_scenario(seed);
        if a != Some(CloseReason::Finished) || b != Some(CloseReason::Finished) {
            unclean.push(format!("{desc}: a {a:?}, b {b:?}"));
        }
    }
    assert!(
        unclean.is_empty(),
        "{} unclean closes: {unclean:#?}",
        unclean.len()
    );
}

#[test]
fn the_peers_answer_ends_the_closing_linger_at_once() {
    // On a clean path the first closer's CLOSE is answered, so neither side
    // lingers for the closing period (12 s) or the idle timeout: both
    // connections are forgotten within a second of the close.
    let link = LinkConfig::default().with_latency(Duration::from_millis(20));
    let mut p = Pair::public(7, link, TransportConfig::default());
    let (a_data, b_data) = (data(1, 50_000), data(2, 30_000));
    let t = p.transfer(&a_data, &b_data, Duration::from_secs(60));
    assert_eq!(t.a.closed, Some(CloseReason::Finished));
    assert_eq!(t.b.closed, Some(CloseReason::Finished));
    let now = p.sim.now();
    let (a, b) = (p.a, p.b);
    p.sim.endpoint(a).release(now, t.a.handle.unwrap());
    p.sim.endpoint(b).release(now, t.b.handle.unwrap());
    let mut gone_after = None;
    p.sim.run_until(Duration::from_secs(60), |sim, _| {
        let gone =
            sim.endpoint(a).connection_count() == 0 && sim.endpoint(b).connection_count() == 0;
        if gone {
            gone_after = Some(sim.now() - now);
        }
        gone
    });
    let gone_after = gone_after.expect("both connections are forgotten");
    assert!(
        gone_after < Duration::from_secs(2),
        "forgotten only after {gone_after:?}"
    );
}
