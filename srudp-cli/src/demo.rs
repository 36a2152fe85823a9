//! `srudp demo`: a rendezvous server and two peers on loopback, in one
//! process, doing everything a real pair does — register, get introduced,
//! punch, handshake — then moving SIZE bytes each way.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};
use srudp_tokio::rendezvous::{ClientConfig, ServerConfig};
use srudp_tokio::{Endpoint, EndpointConfig, Keypair, RendezvousServer, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoint_setup::{connect_within, REGISTER_TIMEOUT};
use crate::failure::Failure;
use crate::progress::Progress;
use crate::reports::stream_path_line;

const CHUNK: usize = 64 << 10;

/// What one side saw.
struct Side {
    sent_hash: [u8; 32],
    received_hash: [u8; 32],
    received: u64,
    seconds: f64,
    retransmitted: u64,
}

/// Deterministic pseudo-random bytes (xorshift64*), different per side.
fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

async fn exchange(
    stream: Stream,
    bytes: u64,
    seed: u64,
    progress: Arc<Mutex<Progress>>,
) -> std::io::Result<Side> {
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let send = async {
        let mut hash = Sha256::new();
        let mut state = seed | 1;
        let mut buf = vec![0u8; CHUNK];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            fill(&mut state, &mut buf[..n]);
            hash.update(&buf[..n]);
            wr.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        wr.shutdown().await?;
        Ok::<_, std::io::Error>(<[u8; 32]>::from(hash.finalize()))
    };
    let receive = async {
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            got += n as u64;
            if let Ok(mut p) = progress.lock() {
                p.add(n as u64);
            }
        }
        Ok::<_, std::io::Error>((<[u8; 32]>::from(hash.finalize()), got))
    };
    let (sent_hash, (received_hash, received)) = tokio::try_join!(send, receive)?;
    let seconds = started.elapsed().as_secs_f64();
    let stream = rd.unsplit(wr);
    let retransmitted = stream.stats().map_or(0, |s| s.packets_retransmitted);
    Ok(Side {
        sent_hash,
        received_hash,
        received,
        seconds,
        retransmitted,
    })
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `srudp demo --bytes SIZE`.
pub(crate) async fn run(bytes: u64) -> Result<(), Failure> {
    let loopback: SocketAddr = "127.0.0.1:0".parse().map_err(|_| Failure::msg("address"))?;
    let server = RendezvousServer::bind(
        loopback,
        EndpointConfig::new(Keypair::generate_from_os()),
        ServerConfig::default(),
        None,
    )?;
    eprintln!(
        "rendezvous server: {}@{}",
        server.public_key(),
        server.local_addr()
    );
    let client = |name: Option<&str>| -> Result<Endpoint, Failure> {
        let mut c = ClientConfig::new(server.public_key(), server.local_addr());
        c.name = name.and_then(|n| n.parse().ok());
        Ok(Endpoint::bind_with_rendezvous(
            loopback,
            EndpointConfig::new(Keypair::generate_from_os()),
            c,
        )?)
    };
    let listener = client(Some("demo-listener"))?;
    let caller = client(None)?;
    for (who, e) in [("listener", &listener), ("caller", &caller)] {
        let observed = tokio::time::timeout(REGISTER_TIMEOUT, e.wait_registered())
            .await
            .map_err(|_| Failure::msg("the demo's rendezvous server did not answer"))??;
        eprintln!("{who}: registered, observed at {observed}");
    }
    let started = Instant::now();
    let connecting = caller.connect_by_name("demo-listener");
    let accepting = async {
        listener
            .accept()
            .await
            .map_err(|e| Failure::msg(format!("accept: {e}")))
    };
    let (outgoing, (incoming, _, _)) = tokio::try_join!(connect_within(connecting), accepting)?;
    let handshake = started.elapsed();
    eprintln!(
        "introduced, punched and handshaken in {:.1} ms; {}",
        handshake.as_secs_f64() * 1e3,
        stream_path_line(&outgoing)
    );
    let progress = Arc::new(Mutex::new(Progress::new("demo", bytes * 2)));
    let (a, b) = tokio::try_join!(
        exchange(outgoing, bytes, 0x5eed_0001, progress.clone()),
        exchange(incoming, bytes, 0x5eed_0002, progress.clone()),
    )
    .map_err(|e| Failure::msg(format!("transfer failed: {e}")))?;
    if let Ok(p) = progress.lock() {
        p.finish();
    }
    println!("handshake: {:.1} ms", handshake.as_secs_f64() * 1e3);
    println!(
        "caller -> listener: {} bytes in {:.2} s ({:.1} MB/s), {} packets retransmitted",
        b.received,
        b.seconds,
        b.received as f64 / b.seconds.max(1e-6) / 1e6,
        a.retransmitted
    );
    println!(
        "listener -> caller: {} bytes in {:.2} s ({:.1} MB/s), {} packets retransmitted",
        a.received,
        a.seconds,
        a.received as f64 / a.seconds.max(1e-6) / 1e6,
        b.retransmitted
    );
    let ok = a.sent_hash == b.received_hash
        && b.sent_hash == a.received_hash
        && a.received == bytes
        && b.received == bytes;
    if !ok {
        return Err(Failure::msg("checksums differ: data was corrupted"));
    }
    println!("checksums match: sha256 {}… both ways", hex(&a.sent_hash));
    caller.close();
    listener.close();
    Ok(())
}
