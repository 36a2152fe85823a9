//! The srudp seed's demo, on the runtime you name (`tokio`, `smol` or
//! `async-std`): one side sends a timestamped hello every
//! 3 s, the other prints what it receives the moment it arrives.
//!
//! As in the seed, both sides `connect` toward each other at once — what two
//! peers behind NATs do once they know each other's address — and the
//! protocol makes one connection of it. On one machine, in two terminals:
//!
//! ```text
//! cargo run -p srudp-async --features tokio,async-io --example demo -- tokio receive 127.0.0.1:12345 127.0.0.1:12346
//! cargo run -p srudp-async --features tokio,async-io --example demo -- smol send 127.0.0.1:12346 127.0.0.1:12345
//! ```
//!
//! The executor comes first; the first address is where this side binds, the second is the peer's.
//! Stop either side with Ctrl-C; the other reports the connection closed
//! (after the idle timeout if it got no word).
//!
//! The demo's two keys are fixed and public (derived from the role) so that
//! neither side needs to be told the other's key. That is for a demo only:
//! real programs generate their key (`Keypair::generate_from_os`) and give
//! the public half to the peer out of band.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::srudp_proto::Rng;
use srudp_async::{Endpoint, EndpointConfig, Keypair};

fn demo_key(role: &str) -> Keypair {
    let seed = if role == "send" { 1 } else { 2 };
    Keypair::generate(&mut Rng::from_seed(seed))
}

fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tokio") => tokio::runtime::Runtime::new()?.block_on(demo(&args[1..])),
        Some("smol") => smol::block_on(demo(&args[1..])),
        Some("async-std") => async_std::task::block_on(demo(&args[1..])),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: demo <tokio|smol|async-std> send|receive <bind address> <peer address>");
    std::process::exit(2)
}

async fn demo(args: &[String]) -> std::io::Result<()> {
    let (role, bind, peer) = match args {
        [role, bind, peer] if role == "send" || role == "receive" => {
            let parse = |s: &str| {
                s.parse::<SocketAddr>().unwrap_or_else(|e| {
                    eprintln!("bad address {s:?}: {e}");
                    std::process::exit(2)
                })
            };
            (role.as_str(), parse(bind), parse(peer))
        }
        _ => usage(),
    };
    let other = if role == "send" { "receive" } else { "send" };
    let endpoint = Endpoint::bind(bind, EndpointConfig::new(demo_key(role)))?;
    eprintln!(
        "{role}: bound {}, connecting to {peer}",
        endpoint.local_addr()
    );
    let mut stream = endpoint.connect(demo_key(other).public(), &[peer]).await?;
    eprintln!("{role}: connected to {}", stream.peer_addr());

    if role == "send" {
        loop {
            let hello = format!("hello {:.6}", unix_time());
            if let Err(e) = stream.write_all(hello.as_bytes()).await {
                println!("closed: {e}");
                break;
            }
            // async-io's timer works under every executor.
            async_io::Timer::after(Duration::from_secs(3)).await;
        }
    } else {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => {
                    println!("closed: the peer finished");
                    break;
                }
                Ok(n) => println!("{:.6} {}", unix_time(), String::from_utf8_lossy(&buf[..n])),
                Err(e) => {
                    println!("closed: {e}");
                    break;
                }
            }
        }
    }
    Ok(())
}
