//! Round-trip delay of small messages over a lossy, jittery path: KCP's own
//! test scenario, with srudp's low-latency profile.
//!
//! ```text
//! cargo run --release -p srudp-benches --bin latency -- [--seed N] [--seconds N] [--cc cubic|newreno|bbr] [--no-bundling]
//! ```
//!
//! KCP's `test.cpp` sends one message every 20 ms over a simulated link that
//! loses 10 % of packets in each direction and delays each packet by a
//! uniformly drawn 30–62.5 ms each way (RTT 60–125 ms); the peer echoes it,
//! and the sender records each message's round trip. Its README reports, for
//! fast mode, an average of 138 ms and a maximum of 392 ms.
//!
//! Here: the client's access link has 30 ms latency, 32.5 ms of uniform
//! jitter and 10 % Bernoulli loss (applied once per direction), the server's
//! link is ideal. After the handshake the client writes one 8-byte message
//! (sequence number and padding) every 20 ms for 60 s of virtual time; the
//! server writes back every byte it reads. `overhead_ratio` is all bytes both
//! endpoints sent on the wire (UDP payloads: packet headers, AEAD tags,
//! acknowledgments, retransmissions, the handshake) over the payload bytes
//! both applications wrote (the messages and their echoes).
//!
//! `--no-bundling` turns off the profile's redundant bundling, to show what
//! loss detection and retransmission alone achieve. `--cc` chooses the
//! congestion controller (default: the profile's).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use srudp_benches::args::Args;
use srudp_benches::controller::Controller;
use srudp_benches::harness::{addr, endpoint, read_all, Net, NetEvent, RECEIVER, SENDER};
use srudp_benches::models::percentile;
use srudp_proto::sim::{LinkConfig, LossModel, Network};
use srudp_proto::{ConnectionHandle, Event, TransportConfig};

const INTERVAL: Duration = Duration::from_millis(20);
const MESSAGE: usize = 8;

fn main() -> ExitCode {
    let usage = "usage: latency [--seed N] [--seconds N] [--cc cubic|newreno|bbr] [--no-bundling]";
    let args = match Args::parse(
        std::env::args().skip(1),
        &["seed", "seconds", "cc"],
        &["no-bundling"],
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (seed, seconds) = match (args.number("seed", 1u64), args.number("seconds", 60u64)) {
        (Ok(s), Ok(n)) if n > 0 => (s, n),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let loss = 0.10;
    let client_link = LinkConfig::default()
        .with_latency(Duration::from_millis(30))
        .with_jitter(Duration::from_micros(32_500))
        .with_loss(LossModel::Bernoulli(loss));
    let mut network = Network::new(seed);
    network
        .add_host(addr(SENDER).ip(), client_link)
        .expect("unique address");
    network
        .add_host(addr(RECEIVER).ip(), LinkConfig::default())
        .expect("unique address");
    let mut net = Net::new(network);
    let mut profile = TransportConfig::low_latency();
    if args.flag("no-bundling") {
        profile.bundle_unacked_bytes = 0;
    }
    // No --cc: the profile's own controller.
    let controller = match Controller::overriding(args.text("cc"), &mut profile) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let client = net.add(addr(SENDER), endpoint(seed * 2 + 1, profile.clone()));
    let server = net.add(addr(RECEIVER), endpoint(seed * 2 + 2, profile));

    let now = net.now();
    let server_key = net.endpoint(server).public_key();
    let ch = net
        .endpoint(client)
        .connect(now, server_key, &[addr(RECEIVER)])
        .expect("connect");
    let count = (seconds * 1000 / INTERVAL.as_millis() as u64) as usize;
    let mut app = EchoApp {
        client,
        server,
        ch,
        sh: None,
        connected: false,
        echoed: Vec::new(),
        received: Vec::new(),
        sent_at: Vec::with_capacity(count),
        delays_ms: Vec::with_capacity(count),
    };

    // Handshake first: KCP's test has none.
    let deadline = net.now() + Duration::from_secs(10);
    while !app.connected || app.sh.is_none() {
        let next = net.now() + Duration::from_millis(1);
        if next > deadline {
            eprintln!("handshake did not complete");
            return ExitCode::FAILURE;
        }
        net.run_to(next, &mut |net, events| app.on(net, events));
    }
    let start = net.now();
    for seq in 0..count {
        let at = start + INTERVAL * seq as u32;
        net.run_to(at, &mut |net, events| app.on(net, events));
        let mut message = [0xabu8; MESSAGE];
        message[..4].copy_from_slice(&(seq as u32).to_be_bytes());
        app.sent_at.push(net.now());
        if net.endpoint(client).write(ch, &message) != Ok(MESSAGE) {
            eprintln!("the send buffer refused a message");
            return ExitCode::FAILURE;
        }
        // Send it at once, as the application's own event loop would.
        net.run_to(at, &mut |net, events| app.on(net, events));
    }
    // Wait for the last echoes.
    let end = start + INTERVAL * count as u32 + Duration::from_secs(30);
    let mut t = net.now();
    while app.delays_ms.len() < count && t < end {
        t += Duration::from_millis(10);
        net.run_to(t, &mut |net, events| app.on(net, events));
    }
    let (sh, delays_ms) = (app.sh, app.delays_ms);
    let cs = net.endpoint(client).stats(ch).unwrap_or_default();
    let ss = sh
        .and_then(|h| net.endpoint(server).stats(h))
        .unwrap_or_default();
    let payload = 2 * count * MESSAGE;
    let wire = cs.bytes_sent + ss.bytes_sent;
    let avg = delays_ms.iter().sum::<f64>() / delays_ms.len().max(1) as f64;
    let max = delays_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "{}",
        json!({
            "scenario": if args.flag("no-bundling") { "kcp_test_no_bundling" } else { "kcp_test" },
            "seed": seed,
                "cc": controller.map_or("default", Controller::name),
            "loss": loss,
            "rtt_min_ms": 60,
            "rtt_max_ms": 125,
            "messages": count,
            "echoes_received": delays_ms.len(),
            "avg_delay_ms": avg,
            "max_delay_ms": max,
            "p50_delay_ms": percentile(&delays_ms, 50.0),
            "p99_delay_ms": percentile(&delays_ms, 99.0),
            "overhead_ratio": wire as f64 / payload as f64,
            "client_packets_sent": cs.packets_sent,
            "client_packets_lost": cs.packets_lost,
            "client_packets_spuriously_lost": cs.packets_spuriously_lost,
            "server_packets_sent": ss.packets_sent,
            "server_packets_lost": ss.packets_lost,
            "server_packets_spuriously_lost": ss.packets_spuriously_lost,
            "pto_count": cs.pto_count + ss.pto_count,
            "srtt_ms": cs.srtt.as_secs_f64() * 1e3,
        })
    );
    if delays_ms.len() == count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The client that times its messages and the server that echoes them.
struct EchoApp {
    client: usize,
    server: usize,
    ch: ConnectionHandle,
    sh: Option<ConnectionHandle>,
    connected: bool,
    /// Bytes the server read and has not written back yet.
    echoed: Vec<u8>,
    /// Echo bytes the client read, not yet a whole message.
    received: Vec<u8>,
    sent_at: Vec<Instant>,
    delays_ms: Vec<f64>,
}

impl EchoApp {
    fn on(&mut self, net: &mut Net, events: &[NetEvent]) {
        for e in events {
            match &e.event {
                Event::Connected { .. } if e.node == self.server => self.sh = Some(e.handle),
                Event::Connected { .. } if e.node == self.client => self.connected = true,
                _ => {}
            }
        }
        if let Some(h) = self.sh {
            let ep = net.endpoint(self.server);
            read_all(ep, h, &mut self.echoed);
            if !self.echoed.is_empty() {
                let n = ep.write(h, &self.echoed).unwrap_or(0);
                self.echoed.drain(..n);
            }
        }
        read_all(net.endpoint(self.client), self.ch, &mut self.received);
        let now = net.now();
        for m in self.received.chunks_exact(MESSAGE) {
            let seq = u32::from_be_bytes(m[..4].try_into().expect("4 bytes")) as usize;
            if let Some(t) = self.sent_at.get(seq) {
                self.delays_ms.push((now - *t).as_secs_f64() * 1e3);
            }
        }
        let whole = self.received.len() / MESSAGE * MESSAGE;
        self.received.drain(..whole);
    }
}
