//! BBR over the simulator (spec §7.1): random loss below the congestion
//! threshold does not collapse its rate, where CUBIC's halves at every loss.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{data, Pair, Transfer};
use srudp_proto::congestion::{BbrFactory, ControllerFactory, CubicFactory};
use srudp_proto::sim::{LinkConfig, LossModel};
use srudp_proto::{CloseReason, TransportConfig};

const RATE_BPS: u64 = 20_000_000;
const BYTES: usize = 4 << 20;

/// `BYTES` from a to b over 50 ms RTT and a 20 Mbit/s bottleneck with a
/// one-BDP queue, losing `loss` of the packets in each direction at random.
/// Returns the goodput in bytes per second of virtual time.
fn goodput(congestion: Arc<dyn ControllerFactory>, loss: f64, seed: u64) -> f64 {
    let transport = TransportConfig {
        congestion,
        ..TransportConfig::default()
    };
    let t = transfer(transport, RATE_BPS, BYTES, loss, seed);
    BYTES as f64 / t.elapsed.as_secs_f64()
}

/// `bytes` from a to b with `transport` over 50 ms RTT and a `rate_bps`
/// bottleneck with a one-BDP queue, losing `loss` of the packets in each
/// direction at random; checks that all of it arrived and the connection
/// finished.
fn transfer(
    transport: TransportConfig,
    rate_bps: u64,
    bytes: usize,
    loss: f64,
    seed: u64,
) -> Transfer {
    let one_way = Duration::from_millis(25);
    let bdp = (rate_bps / 8 / 20) as usize;
    let bottleneck = LinkConfig::default()
        .with_latency(one_way / 2)
        .with_bandwidth_bps(rate_bps)
        .with_queue_bytes(bdp)
        .with_loss(LossModel::Bernoulli(loss));
    let far = LinkConfig::default().with_latency(one_way / 2);
    let mut p = Pair::public_with(seed, bottleneck, far, transport);
    let sent = data(seed, bytes);
    let t = p.transfer(&sent, &[], Duration::from_secs(600));
    assert!(
        t.b.received == sent,
        "b received {} of {bytes} bytes",
        t.b.received.len()
    );
    assert_eq!(t.a.closed, Some(CloseReason::Finished));
    t
}

#[test]
fn one_percent_random_loss_keeps_bbr_near_the_bottleneck_rate() {
    let link = RATE_BPS as f64 / 8.0;
    let bbr = goodput(Arc::new(BbrFactory::default()), 0.01, 1);
    let cubic = goodput(Arc::new(CubicFactory::default()), 0.01, 1);
    println!(
        "1 % loss: BBR {:.0} B/s ({:.2} of the link), CUBIC {:.0} B/s",
        bbr,
        bbr / link,
        cubic
    );
    // Payload is 1024 of each 1200 bytes on the wire; the handshake, Startup
    // and the closing round trip cost a few hundred ms of 1.7 s.
    assert!(
        bbr >= 0.6 * link,
        "BBR {bbr:.0} B/s on a {link:.0} B/s link"
    );
    assert!(bbr >= 2.0 * cubic, "BBR {bbr:.0} B/s, CUBIC {cubic:.0} B/s");
}

#[test]
fn five_percent_random_loss_still_moves_most_of_the_link() {
    let link = RATE_BPS as f64 / 8.0;
    let bbr = goodput(Arc::new(BbrFactory::default()), 0.05, 2);
    println!(
        "5 % loss: BBR {:.0} B/s ({:.2} of the link)",
        bbr,
        bbr / link
    );
    assert!(
        bbr >= 0.5 * link,
        "BBR {bbr:.0} B/s on a {link:.0} B/s link"
    );
}

#[test]
fn without_loss_bbr_fills_the_link() {
    let link = RATE_BPS as f64 / 8.0;
    let bbr = goodput(Arc::new(BbrFactory::default()), 0.0, 3);
    println!(
        "no loss: BBR {:.0} B/s ({:.2} of the link)",
        bbr,
        bbr / link
    );
    assert!(
        bbr >= 0.65 * link,
        "BBR {bbr:.0} B/s on a {link:.0} B/s link"
    );
}

/// Under 5 % loss, the data beyond each hole waits in the receiver's
/// reassembly buffer for a round trip or more (two when the repair is lost
/// too) and counts against the receive window meanwhile. The window must
/// grow to cover it, or the receiver's flow control, not BBR, limits the
/// sender. The path of the goodput bench: 100 Mbit/s, where the default
/// initial window (1 MiB) is 1.7 bandwidth-delay products, so the sender
/// is blocked for a while as the window grows; after that, hardly ever
/// (without the growth for pinned bytes: half the transfer).
#[test]
fn five_percent_random_loss_does_not_leave_bbr_flow_limited() {
    let transport = TransportConfig {
        congestion: Arc::new(BbrFactory::default()),
        ..TransportConfig::default()
    };
    let t = transfer(transport, 100_000_000, 32 << 20, 0.05, 1);
    let sender =
        t.a.stats_all_acked
            .expect("the sender saw all its data acked");
    let flow = sender.flow_limited_time.as_secs_f64();
    // Virtual time of the simulation, not wall-clock time.
    let elapsed = t.elapsed.as_secs_f64();
    println!("5 % loss: flow-limited {flow:.3} s of {elapsed:.3} s");
    assert!(
        flow <= 0.15 * elapsed,
        "flow-limited {flow:.3} s of {elapsed:.3} s"
    );
}
