//! Throughput through the rendezvous server's relay, with the peers' links
//! on UDP against on the stream carrier (TCP, and TLS), on loopback.
//!
//! ```text
//! cargo run --release -p srudp-benches --bin relay_carrier -- [--mib N] [--runs N]
//! ```
//!
//! One [`RendezvousServer`] (with a stream carrier) and two srudp-tokio
//! endpoints in this process, all on loopback. The peers cannot reach each
//! other directly — one binds 127.0.0.2 (IPv4 only), the other ::1 (IPv6
//! only), and the server `[::]` (both) — so their connection goes through
//! the relay, as between two symmetric NATs. The server's relay rate
//! limits are lifted (`ServerConfig::relay_pair_rate`, the CLI's
//! `--relay-rate`), so the figure is the carrier's, not the cap's.
//!
//! Carriers: `udp` (both links over UDP), `tcp` (both links on the stream
//! carrier: the UDP address each client knows for the server is a socket
//! nobody reads, so the link falls back to TCP after the 1 s fallback
//! delay), `tls` (the same, in TLS). Each run moves `--mib` MiB (default
//! 64) from the IPv4 peer to the IPv6 peer once connected; runs alternate
//! between carriers (`--runs` each, default 5), so a slow moment of the
//! machine hits all alike. Prints one JSON line per run and one summary:
//! the median bytes per second of each carrier and the ratios to UDP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use srudp_benches::args::Args;
use srudp_tokio::rendezvous::{
    CarrierTls, ClientConfig, RateLimit, ServerConfig, StreamCarrierConfig,
};
use srudp_tokio::{Endpoint, EndpointConfig, Keypair, PathKind, RendezvousServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One run's bound.
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Udp,
    Tcp,
    Tls,
}

impl Carrier {
    fn name(self) -> &'static str {
        match self {
            Carrier::Udp => "udp",
            Carrier::Tcp => "tcp",
            Carrier::Tls => "tls",
        }
    }
}

fn main() -> ExitCode {
    let usage = "usage: relay_carrier [--mib N] [--runs N]";
    let args = match Args::parse(std::env::args().skip(1), &["mib", "runs"], &[]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (mib, runs) = match (args.number("mib", 64u64), args.number("runs", 5usize)) {
        (Ok(m), Ok(r)) if m > 0 && r > 0 => (m, r),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let carriers = [Carrier::Udp, Carrier::Tcp, Carrier::Tls];
    let mut rates: Vec<(Carrier, Vec<f64>)> = carriers.iter().map(|&c| (c, Vec::new())).collect();
    for run in 0..runs {
        for (carrier, samples) in rates.iter_mut() {
            let rate = match runtime.block_on(one_run(*carrier, (mib << 20) as usize)) {
                Ok(rate) => rate,
                Err(e) => {
                    eprintln!("relay_carrier: {} run {run}: {e}", carrier.name());
                    return ExitCode::FAILURE;
                }
            };
            println!(
                "{}",
                json!({"carrier": carrier.name(), "run": run, "mib": mib, "bytes_per_s": rate})
            );
            samples.push(rate);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let udp = median(&rates[0].1);
    let tcp = median(&rates[1].1);
    let tls = median(&rates[2].1);
    println!(
        "{}",
        json!({
            "summary": true,
            "mib": mib,
            "runs": runs,
            "udp_median_bytes_per_s": udp,
            "tcp_median_bytes_per_s": tcp,
            "tls_median_bytes_per_s": tls,
            "tcp_to_udp": tcp / udp,
            "tls_to_udp": tls / udp,
        })
    );
    ExitCode::SUCCESS
}

/// A server, two relayed peers on `carrier`, `bytes` from one to the
/// other: bytes per second from the first byte written to the last read.
async fn one_run(carrier: Carrier, bytes: usize) -> Result<f64, String> {
    // The cap lifted: the carrier is measured, not the relay's limit.
    let config = ServerConfig {
        relay_pair_rate: RateLimit::new(1 << 40, 64 << 20),
        relay_client_rate: RateLimit::new(1 << 40, 64 << 20),
        ..ServerConfig::default()
    };
    let mut stream = StreamCarrierConfig::new(0);
    if carrier == Carrier::Tls {
        stream.tls = Some(CarrierTls::self_signed(&[]).map_err(|e| e.to_string())?);
    }
    let server = RendezvousServer::bind_with_stream_carrier(
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        EndpointConfig::new(Keypair::generate_from_os()),
        config,
        None,
        stream,
    )
    .map_err(|e| format!("server: {e}"))?;
    let udp_port = server.local_addr().port();
    let tcp_port = server.tcp_addr().expect("a stream carrier").port();
    // Sockets nobody reads: the "server" a blocked client's UDP goes to.
    let silent_v4 =
        std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    let silent_v6 =
        std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    let peer = |ip: IpAddr, silent: &std::net::UdpSocket| -> Result<Endpoint, String> {
        let server_udp = SocketAddr::new(ip, udp_port);
        let mut client = match carrier {
            Carrier::Udp => ClientConfig::new(server.public_key(), server_udp),
            Carrier::Tcp | Carrier::Tls => {
                ClientConfig::new(server.public_key(), silent.local_addr().expect("bound"))
            }
        };
        client.detect_nat = false;
        client.stream_carrier = Some(SocketAddr::new(ip, tcp_port));
        client.stream_transport.tls = carrier == Carrier::Tls;
        let bind = match ip {
            IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0),
            IpAddr::V6(_) => SocketAddr::new(ip, 0),
        };
        Endpoint::bind_with_rendezvous(
            bind,
            EndpointConfig::new(Keypair::generate_from_os()),
            client,
        )
        .map_err(|e| format!("peer: {e}"))
    };
    let sender = peer(IpAddr::V4(Ipv4Addr::LOCALHOST), &silent_v4)?;
    let receiver = peer(IpAddr::V6(Ipv6Addr::LOCALHOST), &silent_v6)?;
    let within = |what: &'static str| move |_| format!("{what}: not within {LIMIT:?}");
    for e in [&sender, &receiver] {
        tokio::time::timeout(LIMIT, e.wait_registered())
            .await
            .map_err(within("registration"))?
            .map_err(|e| format!("registration: {e}"))?;
    }
    let connecting = sender.connect_by_key(receiver.public_key());
    let (mut incoming, _, _) = tokio::time::timeout(LIMIT, receiver.accept())
        .await
        .map_err(within("accept"))?
        .map_err(|e| format!("accept: {e}"))?;
    let mut outgoing = tokio::time::timeout(LIMIT, connecting)
        .await
        .map_err(within("connect"))?
        .map_err(|e| format!("connect: {e}"))?;
    match outgoing.path() {
        PathKind::Relayed { .. } => {}
        other => return Err(format!("expected a relayed path, got {other:?}")),
    }
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5a; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            outgoing.write_all(&chunk[..n]).await?;
            left -= n;
        }
        outgoing.shutdown().await?;
        Ok::<_, std::io::Error>(outgoing)
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let read = async {
        loop {
            match incoming.read(&mut buf).await? {
                0 => return Ok::<_, std::io::Error>(()),
                n => got += n,
            }
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .map_err(within("transfer"))?
        .map_err(|e| format!("read: {e}"))?;
    let elapsed = started.elapsed();
    writer
        .await
        .map_err(|e| format!("writer: {e}"))?
        .map_err(|e| format!("write: {e}"))?;
    if got != bytes {
        return Err(format!("received {got} of {bytes} bytes"));
    }
    let stats = server.stream_carrier_stats().expect("a stream carrier");
    let expected_streams = if carrier == Carrier::Udp { 0 } else { 2 };
    if stats.open != expected_streams {
        return Err(format!(
            "{} stream paths open, expected {expected_streams}",
            stats.open
        ));
    }
    server.shutdown().await;
    Ok(bytes as f64 / elapsed.as_secs_f64())
}
