//! An srudp echo server and client.
//!
//! Server and client in one process, echoing a message and then 16 MiB:
//!
//! ```sh
//! cargo run -p srudp-std --example echo -- both
//! ```
//!
//! In two terminals (the server prints its key):
//!
//! ```sh
//! cargo run -p srudp-std --example echo -- server 127.0.0.1:7100
//! cargo run -p srudp-std --example echo -- client 127.0.0.1:7100 <KEY> hello there
//! ```
//!
//! The client sends its message (or, without one, each line typed on
//! standard input) and prints the echo. With `--bytes N` it sends N
//! pseudo-random bytes while reading the echo back, checks them, and prints
//! the rate, e.g. `--release ... client 127.0.0.1:7100 <KEY> --bytes 67108864`.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use srudp_std::srudp_proto::Rng;
use srudp_std::{Endpoint, EndpointConfig, Keypair, PublicKey, Stream};

const USAGE: &str = "usage: echo both | server <bind-addr> | \
                     client <server-addr> <server-key> [--bytes N | message...]";

fn main() {
    if let Err(e) = run() {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["both"] => both(),
        ["server", bind] => {
            let server = Endpoint::bind(*bind, new_config())?;
            println!(
                "echo server {} key {}",
                server.local_addr()?,
                server.public_key()
            );
            println!(
                "try: cargo run -p srudp-std --example echo -- client {} {} hello",
                server.local_addr()?,
                server.public_key()
            );
            serve(&server, None)
        }
        ["client", addr, key, rest @ ..] => {
            let addr: SocketAddr = addr.parse().map_err(invalid)?;
            let key: PublicKey = key.parse().map_err(invalid)?;
            let client = Endpoint::bind(any_port(addr), new_config())?;
            let stream = client.connect(key, &[addr])?;
            match rest {
                ["--bytes", n] => throughput(&stream, n.parse().map_err(invalid)?),
                [] => lines(&stream),
                message => one_message(&stream, &message.join(" ")),
            }
        }
        _ => Err(invalid(USAGE)),
    }
}

/// Both ends in one process.
fn both() -> io::Result<()> {
    let server = Endpoint::bind("127.0.0.1:0", new_config())?;
    let (key, addr) = (server.public_key(), server.local_addr()?);
    let serving = std::thread::spawn(move || serve(&server, Some(2)));
    let client = Endpoint::bind("127.0.0.1:0", new_config())?;
    one_message(&client.connect(key, &[addr])?, "hello over srudp")?;
    throughput(&client.connect(key, &[addr])?, 16 << 20)?;
    serving.join().expect("the server panicked")
}

/// Accepts connections (at most `limit`) and echoes each on its own thread.
fn serve(server: &Endpoint, limit: Option<usize>) -> io::Result<()> {
    let mut workers = Vec::new();
    let mut served = 0;
    while limit.is_none_or(|l| served < l) {
        let (stream, from, _) = server.accept()?;
        served += 1;
        println!("server: connection from {from}");
        workers.push(std::thread::spawn(move || {
            match echo(&stream).and_then(|n| stream.close().map(|()| n)) {
                Ok(n) => println!("server: {from} done, echoed {n} bytes"),
                Err(e) => println!("server: {from} failed: {e}"),
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// Copies everything the peer sends back to it, until it finishes.
fn echo(stream: &Stream) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = (&*stream).read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.send_all(&buf[..n])?;
        total += n as u64;
    }
}

fn one_message(stream: &Stream, message: &str) -> io::Result<()> {
    stream.send_all(message.as_bytes())?;
    stream.shutdown()?;
    let mut reply = Vec::new();
    (&*stream).read_to_end(&mut reply)?;
    println!("echo: {}", String::from_utf8_lossy(&reply));
    stream.close()
}

fn lines(stream: &Stream) -> io::Result<()> {
    println!("type lines; end with Ctrl-D");
    for line in io::stdin().lock().lines() {
        let line = line? + "\n";
        stream.send_all(line.as_bytes())?;
        let mut reply = vec![0u8; line.len()];
        (&*stream).read_exact(&mut reply)?;
        print!("echo: {}", String::from_utf8_lossy(&reply));
        io::stdout().flush()?;
    }
    stream.shutdown()?;
    stream.close()
}

/// Sends `n` bytes while reading the echo back; checks and times it.
fn throughput(stream: &Stream, n: usize) -> io::Result<()> {
    let mut payload = vec![0u8; n];
    Rng::from_seed(n as u64).fill(&mut payload);
    let start = Instant::now();
    let back = std::thread::scope(|s| {
        let writer = s.spawn(|| -> io::Result<()> {
            stream.send_all(&payload)?;
            stream.shutdown()
        });
        let mut back = Vec::with_capacity(n);
        let read = (&*stream).read_to_end(&mut back);
        writer.join().expect("the writer panicked")?;
        read.map(|_| back)
    })?;
    let elapsed = start.elapsed();
    if back != payload {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the echo differs",
        ));
    }
    let mib = n as f64 / f64::from(1 << 20);
    println!(
        "echoed {mib:.1} MiB intact in {elapsed:.2?}: {:.1} MiB/s each way",
        mib / elapsed.as_secs_f64()
    );
    if let Some(stats) = stream.stats() {
        println!(
            "  rtt {:?}, packets sent {}, lost {}",
            stats.srtt, stats.packets_sent, stats.packets_lost
        );
    }
    stream.close()
}

/// A wildcard address of the same family as `peer`, any port.
fn any_port(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn new_config() -> EndpointConfig {
    EndpointConfig::new(Keypair::generate_from_os())
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}
