//! The Python srudp demo, ported: one side sends `hello <time>` every 3
//! seconds, the other prints what it receives as it arrives.
//!
//! Both sides in one process, each calling `connect` toward the other at the
//! same moment (as the Python demo's two machines do), for 3 hellos 1 s apart:
//!
//! ```sh
//! cargo run -p srudp-std --example demo -- both --count 3 --interval 1
//! ```
//!
//! In two terminals (the receiver prints its key and the sender's command):
//!
//! ```sh
//! cargo run -p srudp-std --example demo -- recv 127.0.0.1:7001
//! cargo run -p srudp-std --example demo -- send 127.0.0.1:7000 127.0.0.1:7001 <KEY>
//! ```
//!
//! `send` runs until the receiver goes away (Ctrl-C there; the sender notices
//! within the idle timeout) unless `--count N` is given, then closes
//! gracefully. Options: `--count N`, `--interval SECONDS` (default 3).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use srudp_std::{Endpoint, EndpointConfig, Keypair, PublicKey, Stream};

const USAGE: &str =
    "usage: demo both | recv <bind-addr> | send <bind-addr> <peer-addr> <peer-key> \
                     [--count N] [--interval SECONDS]";

struct Options {
    count: Option<u64>,
    interval: Duration,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("demo: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let (positional, options) = parse_args(std::env::args().skip(1).collect())?;
    let words: Vec<&str> = positional.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["both"] => both(&options),
        ["recv", bind] => {
            let endpoint = Endpoint::bind(*bind, new_config())?;
            println!(
                "receiver {} key {}",
                endpoint.local_addr()?,
                endpoint.public_key()
            );
            println!(
                "run the sender with:\n  cargo run -p srudp-std --example demo -- send <its-addr> {} {}",
                endpoint.local_addr()?,
                endpoint.public_key()
            );
            let (stream, from, _) = endpoint.accept()?;
            println!("connected from {from}");
            receive(&stream)
        }
        ["send", bind, peer, key] => {
            let peer: SocketAddr = peer.parse().map_err(invalid)?;
            let key: PublicKey = key.parse().map_err(invalid)?;
            let endpoint = Endpoint::bind(*bind, new_config())?;
            let stream = endpoint.connect(key, &[peer])?;
            println!("connected to {}", stream.peer_addr()?);
            send(&stream, &options)
        }
        _ => Err(invalid(USAGE)),
    }
}

/// Two endpoints in one process open toward each other at the same time.
fn both(options: &Options) -> io::Result<()> {
    let a = Endpoint::bind("127.0.0.1:0", new_config())?;
    let b = Endpoint::bind("127.0.0.1:0", new_config())?;
    println!("sender   {} key {}", a.local_addr()?, a.public_key());
    println!("receiver {} key {}", b.local_addr()?, b.public_key());
    let (a_key, a_addr) = (a.public_key(), a.local_addr()?);
    let (b_key, b_addr) = (b.public_key(), b.local_addr()?);
    let receiver = std::thread::spawn(move || -> io::Result<()> {
        let stream = b.connect(a_key, &[a_addr])?;
        receive(&stream)
    });
    let stream = a.connect(b_key, &[b_addr])?;
    send(&stream, options)?;
    receiver.join().expect("the receiver panicked")
}

/// The seed demo's first side: `while not sock.is_closed: sendall(hello); sleep(3)`.
fn send(stream: &Stream, options: &Options) -> io::Result<()> {
    let mut sent = 0;
    while !stream.is_closed() && options.count.is_none_or(|n| sent < n) {
        if let Err(e) = stream.send_all(format!("hello {}", unix_time()).as_bytes()) {
            println!("sender: connection closed: {e}");
            return Ok(());
        }
        sent += 1;
        if options.count.is_none_or(|n| sent < n) {
            std::thread::sleep(options.interval);
        }
    }
    if stream.is_closed() {
        println!("sender: the receiver went away after {sent} hellos");
        return Ok(());
    }
    // Waits until the receiver has every hello.
    stream.close()?;
    println!("sender closed after {sent} hellos");
    Ok(())
}

/// The seed demo's other side: print what arrives until the stream ends.
fn receive(stream: &Stream) -> io::Result<()> {
    while !stream.is_closed() {
        let data = match stream.recv(1024) {
            Ok(data) => data,
            Err(e) => {
                println!("receiver: connection closed: {e}");
                return Ok(());
            }
        };
        if data.is_empty() {
            break;
        }
        println!("{:.3} {}", unix_time(), String::from_utf8_lossy(&data));
    }
    stream.close()?;
    println!("receiver closed");
    Ok(())
}

fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn new_config() -> EndpointConfig {
    EndpointConfig::new(Keypair::generate_from_os())
}

fn parse_args(args: Vec<String>) -> io::Result<(Vec<String>, Options)> {
    let mut options = Options {
        count: None,
        interval: Duration::from_secs(3),
    };
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => {
                let v = args.next().ok_or_else(|| invalid(USAGE))?;
                options.count = Some(v.parse().map_err(invalid)?);
            }
            "--interval" => {
                let v: f64 = args
                    .next()
                    .ok_or_else(|| invalid(USAGE))?
                    .parse()
                    .map_err(invalid)?;
                options.interval = Duration::try_from_secs_f64(v).map_err(invalid)?;
            }
            _ => positional.push(arg),
        }
    }
    Ok((positional, options))
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}
