//! srudp against quinn and TCP on loopback, in one process run.
//!
//! ```text
//! cargo run --release -p srudp-benches --bin compare -- [--bytes N] [--repeat K] [--only NAME[,NAME…]] [--interleave] [--cipher chacha|aes]
//! ```
//!
//! `--only` runs just the named measurements (comma-separated), for example
//! `--only aead_ceiling,srudp_memory` for the one ratio that needs no socket.
//! `--interleave` runs the measurements in turns (A B A B …, K rounds)
//! instead of each K times in a row, so that a change in the machine's
//! load during the run weighs on every row alike (the medians and ratios
//! are computed the same way).
//!
//! Each measurement moves `N` bytes (default 256 MiB, about a minute for everything) one way, `K` times
//! (default 5), and reports the median, one JSON object per line:
//!
//! * `aead_ceiling` — seal then open of N bytes in 1024-byte chunks with the
//!   cipher srudp uses in this run (`--cipher`: snow's ChaCha20-Poly1305, the
//!   default, or AES-256-GCM; stateless transport, as in `srudp-proto`;
//!   ring's implementation, which this crate enables through srudp-proto's
//!   `ring` feature), on one core: the CPU bound srudp cannot beat;
//! * `srudp_memory` — through two srudp-proto endpoints joined in memory;
//! * `srudp_tokio` — over real UDP on 127.0.0.1 between two srudp-tokio
//!   endpoints (default configuration), from `connect` to the receiver
//!   reading the end of the stream;
//! * `srudp_async_std` — the same between two srudp-async-std endpoints
//!   (each driver on its own thread, as `Endpoint::bind` runs it; the
//!   application side on the tokio runtime through futures-io);
//! * `srudp_std` — the same between two srudp-std endpoints, with blocking
//!   calls on threads of their own;
//! * `quinn` — one quinn unidirectional stream, quinn's default
//!   configuration, self-signed certificate, same span;
//! * `tcp` — a tokio TCP connection (no encryption), same span.
//!
//! Then the ratios `srudp_tokio / quinn`, `srudp_memory / aead_ceiling`,
//! `srudp_tokio / tcp`, `srudp_async_std / srudp_tokio`, `srudp_std / srudp_tokio`
//! of those medians.
//! Everything runs on one tokio multi-thread runtime; the machine's other
//! load shows in the figures.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use srudp_benches::args::Args;
use srudp_benches::in_memory::MemoryPair;
use srudp_proto::{Cipher, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 64 * 1024;
/// `--stats`: print the srudp_tokio sender's connection statistics.
static SHOW_STATS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
const LIMIT: Duration = Duration::from_secs(300);
const LOOPBACK: &str = "127.0.0.1:0";

fn pattern() -> Vec<u8> {
    (0..CHUNK as u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Seal then open `bytes` in 1024-byte chunks with `cipher`, as Noise uses it.
fn aead_ceiling(bytes: u64, cipher: Cipher) -> Duration {
    let (i, r) = srudp_benches::cipher::transport_pair(cipher);
    let plain = [0x5a_u8; 1024];
    let (mut sealed, mut opened) = ([0u8; 1024 + 16], [0u8; 1024]);
    let start = Instant::now();
    let mut done = 0u64;
    let mut nonce = 0u64;
    while done < bytes {
        let len = (bytes - done).min(1024) as usize;
        let n = i.write_message(nonce, &plain[..len], &mut sealed).unwrap();
        let m = r.read_message(nonce, &sealed[..n], &mut opened).unwrap();
        assert_eq!(m, len);
        done += len as u64;
        nonce += 1;
    }
    start.elapsed()
}

fn srudp_memory(bytes: u64, cipher: Cipher) -> Duration {
    let mut pair = MemoryPair::connected_with(TransportConfig::default(), cipher);
    pair.transfer(bytes, &pattern())
}

/// A fresh key pair proposing `cipher`, for the real-socket srudp rows.
fn endpoint_config(cipher: Cipher) -> srudp_proto::EndpointConfig {
    let mut config = srudp_proto::EndpointConfig::new(srudp_proto::Keypair::generate_from_os());
    config.cipher = cipher;
    config
}

async fn srudp_tokio(bytes: u64, cipher: Cipher) -> std::io::Result<Duration> {
    use srudp_tokio::Endpoint;
    let server = Endpoint::bind(LOOPBACK.parse().unwrap(), endpoint_config(cipher))?;
    let client = Endpoint::bind(LOOPBACK.parse().unwrap(), endpoint_config(cipher))?;
    let data = pattern();
    let start = Instant::now();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let sender = tokio::spawn(async move {
        let mut stream = connecting.await?;
        write_pattern(&mut stream, bytes, &data).await?;
        stream.shutdown().await?;
        if SHOW_STATS.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("srudp_tokio sender: {:?}", stream.stats());
        }
        Ok::<_, std::io::Error>(client)
    });
    let (mut stream, _, _) = server.accept().await?;
    let received = read_to_end_counting(&mut stream).await?;
    let elapsed = start.elapsed();
    sender.await.expect("sender task")?;
    check(received, bytes)?;
    Ok(elapsed)
}

async fn srudp_async_std(bytes: u64, cipher: Cipher) -> std::io::Result<Duration> {
    use srudp_async_std::Endpoint;
    use tokio_util::compat::FuturesAsyncReadCompatExt as _;
    let server = Endpoint::bind(LOOPBACK.parse().unwrap(), endpoint_config(cipher))?;
    let client = Endpoint::bind(LOOPBACK.parse().unwrap(), endpoint_config(cipher))?;
    let data = pattern();
    let start = Instant::now();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let sender = tokio::spawn(async move {
        let mut stream = connecting.await?.compat();
        write_pattern(&mut stream, bytes, &data).await?;
        stream.shutdown().await?;
        Ok::<_, std::io::Error>(client)
    });
    let (stream, _, _) = server.accept().await?;
    let received = read_to_end_counting(&mut stream.compat()).await?;
    let elapsed = start.elapsed();
    sender.await.expect("sender task")?;
    check(received, bytes)?;
    Ok(elapsed)
}

fn srudp_std(bytes: u64, cipher: Cipher) -> std::io::Result<Duration> {
    use srudp_std::Endpoint;
    use std::io::{Read as _, Write as _};
    let server = Endpoint::bind(LOOPBACK, endpoint_config(cipher))?;
    let client = Endpoint::bind(LOOPBACK, endpoint_config(cipher))?;
    let (key, addr) = (server.public_key(), server.local_addr()?);
    let data = pattern();
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut stream = client.connect(key, &[addr])?;
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(CHUNK as u64) as usize;
            stream.write_all(&data[..n])?;
            sent += n as u64;
        }
        stream.shutdown()?;
        Ok::<_, std::io::Error>((client, stream))
    });
    let (mut stream, _, _) = server.accept()?;
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    let elapsed = start.elapsed();
    sender.join().expect("sender thread")?;
    check(received, bytes)?;
    Ok(elapsed)
}

/// Writes `bytes` bytes of the repeating `data` pattern.
async fn write_pattern<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    bytes: u64,
    data: &[u8],
) -> std::io::Result<()> {
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        w.write_all(&data[..n]).await?;
        sent += n as u64;
    }
    Ok(())
}

async fn read_to_end_counting<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

fn check(received: u64, bytes: u64) -> std::io::Result<()> {
    if received == bytes {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "received {received} of {bytes} bytes"
        )))
    }
}

async fn quinn(bytes: u64) -> Result<Duration, Box<dyn std::error::Error + Send + Sync>> {
    use quinn::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert_der = CertificateDer::from(cert.cert);
    let key = PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let server_config = quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.into())?;
    let server = quinn::Endpoint::server(server_config, LOOPBACK.parse()?)?;
    let server_addr: SocketAddr = server.local_addr()?;
    let mut roots = quinn::rustls::RootCertStore::empty();
    roots.add(cert_der)?;
    let client_config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
    let mut client = quinn::Endpoint::client(LOOPBACK.parse()?)?;
    client.set_default_client_config(client_config);
    let data = pattern();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let connection = client.connect(server_addr, "localhost")?.await?;
        let mut stream = connection.open_uni().await?;
        write_pattern(&mut stream, bytes, &data).await?;
        stream.finish()?;
        stream.stopped().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((connection, client))
    });
    let incoming = server.accept().await.ok_or("quinn server closed")?;
    let connection = incoming.await?;
    let mut stream = connection.accept_uni().await?;
    let received = read_to_end_counting(&mut stream).await?;
    let elapsed = start.elapsed();
    let (client_connection, client) = sender.await??;
    check(received, bytes)?;
    client_connection.close(0u32.into(), b"done");
    client.wait_idle().await;
    server.close(0u32.into(), b"done");
    Ok(elapsed)
}

async fn tcp(bytes: u64) -> std::io::Result<Duration> {
    let listener = tokio::net::TcpListener::bind(LOOPBACK).await?;
    let addr = listener.local_addr()?;
    let data = pattern();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        write_pattern(&mut stream, bytes, &data).await?;
        stream.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });
    let (mut stream, _) = listener.accept().await?;
    let received = read_to_end_counting(&mut stream).await?;
    let elapsed = start.elapsed();
    sender.await.expect("sender task")?;
    check(received, bytes)?;
    Ok(elapsed)
}

type Outcome = Result<Duration, String>;

async fn measure_once(name: &str, bytes: u64, cipher: Cipher) -> Outcome {
    let run = async {
        match name {
            "aead_ceiling" => Ok(aead_ceiling(bytes, cipher)),
            "srudp_memory" => Ok(srudp_memory(bytes, cipher)),
            "srudp_tokio" => srudp_tokio(bytes, cipher).await.map_err(|e| e.to_string()),
            "srudp_async_std" => srudp_async_std(bytes, cipher)
                .await
                .map_err(|e| e.to_string()),
            "srudp_std" => tokio::task::spawn_blocking(move || srudp_std(bytes, cipher))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string()),
            "quinn" => quinn(bytes).await.map_err(|e| e.to_string()),
            "tcp" => tcp(bytes).await.map_err(|e| e.to_string()),
            _ => unreachable!("known names only"),
        }
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .map_err(|_| format!("{name} took longer than {LIMIT:?}"))?
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

const NAMES: [&str; 7] = [
    "aead_ceiling",
    "srudp_memory",
    "srudp_tokio",
    "srudp_async_std",
    "srudp_std",
    "quinn",
    "tcp",
];

fn main() -> ExitCode {
    let usage =
        "usage: compare [--bytes N] [--repeat K] [--only NAME[,NAME...]] [--interleave] [--cipher chacha|aes] [--stats]";
    let args = match Args::parse(
        std::env::args().skip(1),
        &["bytes", "repeat", "only", "cipher"],
        &["stats", "interleave"],
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (bytes, repeat) = match (
        args.number("bytes", 256u64 << 20),
        args.number("repeat", 5usize),
    ) {
        (Ok(b), Ok(r)) if b > 0 && r > 0 => (b, r),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    SHOW_STATS.store(args.flag("stats"), std::sync::atomic::Ordering::Relaxed);
    let Some(cipher) = srudp_benches::cipher::parse(args.text("cipher").unwrap_or("chacha")) else {
        eprintln!("--cipher: chacha or aes\n{usage}");
        return ExitCode::from(2);
    };
    let only: Option<Vec<&str>> = args.text("only").map(|o| o.split(',').collect());
    if let Some(only) = &only {
        if let Some(unknown) = only.iter().find(|n| !NAMES.contains(n)) {
            eprintln!("--only: {unknown:?} is not one of {NAMES:?}");
            return ExitCode::from(2);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let selected: Vec<&str> = NAMES
        .into_iter()
        .filter(|name| only.as_ref().is_none_or(|only| only.contains(name)))
        .collect();
    // Each name's `repeat` runs, in a row or (`--interleave`) in turns.
    let order: Vec<&str> = if args.flag("interleave") {
        (0..repeat).flat_map(|_| selected.iter().copied()).collect()
    } else {
        selected
            .iter()
            .flat_map(|&name| std::iter::repeat_n(name, repeat))
            .collect()
    };
    let mut all_runs: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    for name in order {
        match runtime.block_on(measure_once(name, bytes, cipher)) {
            Ok(d) => all_runs.entry(name).or_default().push(d),
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut medians = std::collections::BTreeMap::new();
    for name in selected {
        let runs = all_runs.remove(name).unwrap_or_default();
        let runs_s: Vec<f64> = runs.iter().map(Duration::as_secs_f64).collect();
        let m = median(runs).as_secs_f64();
        let rate = bytes as f64 / m;
        medians.insert(name, rate);
        println!(
            "{}",
            json!({ "name": name, "bytes": bytes, "cipher": (name.starts_with("srudp") || name == "aead_ceiling").then_some(srudp_benches::cipher::implementation(cipher)), "seconds": m, "bytes_per_s": rate, "runs_s": runs_s })
        );
    }
    for (num, den) in [
        ("srudp_tokio", "quinn"),
        ("srudp_memory", "aead_ceiling"),
        ("srudp_tokio", "tcp"),
        ("srudp_async_std", "srudp_tokio"),
        ("srudp_std", "srudp_tokio"),
    ] {
        if let (Some(a), Some(b)) = (medians.get(num), medians.get(den)) {
            println!(
                "{}",
                json!({ "ratio": format!("{num} / {den}"), "value": a / b })
            );
        }
    }
    ExitCode::SUCCESS
}
