//! A line chat between two programs that find each other by name through a
//! rendezvous server: the recipe for peer-to-peer work with srudp on tokio.
//!
//! Start a server (it prints the `KEY@HOST:PORT` to give the peers), then
//! one peer that registers a name and waits, and one that calls that name.
//! Each types lines; the other sees them. Ctrl+D ends your side.
//!
//! ```text
//! cargo run -p srudp-cli -- rendezvous --bind 127.0.0.1:7000
//! cargo run -p srudp-async --features tokio,async-io --example chat -- <KEY@HOST:PORT> wait alice
//! cargo run -p srudp-async --features tokio,async-io --example chat -- <KEY@HOST:PORT> call alice
//! ```
//!
//! The stream carries lines through `tokio_util::codec::Framed` and
//! `LinesCodec`, like any tokio byte stream. The tests run [`meet`] and
//! [`chat`] (tests/examples.rs).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use futures_util::{SinkExt, StreamExt};
use srudp_async::rendezvous::{ClientConfig, Name, RendezvousAddr};
use srudp_async::{Endpoint, EndpointConfig, Keypair, Stream};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Framed, LinesCodec};

/// The longest line either side accepts, so a peer cannot make us buffer
/// without bound.
pub const MAX_LINE: usize = 4096;

/// Which side of the chat this is.
#[derive(Debug, Clone)]
pub enum Role {
    /// Register `name` and wait for the caller.
    Wait(Name),
    /// Call the peer registered as this name.
    Call(String),
}

/// Binds an endpoint registered with the rendezvous server, and meets the
/// peer: waits for it to call, or calls it.
pub async fn meet(
    endpoint_config: EndpointConfig,
    mut client: ClientConfig,
    role: Role,
) -> io::Result<(Endpoint, Stream)> {
    if let Role::Wait(name) = &role {
        client.name = Some(name.clone());
    }
    let endpoint = Endpoint::bind_with_rendezvous(
        unspecified_for(client.server_addr),
        endpoint_config,
        client,
    )?;
    endpoint.wait_registered().await?;
    let stream = match &role {
        Role::Wait(name) => {
            eprintln!("registered as {name}; waiting for a call");
            endpoint.accept().await?.0
        }
        Role::Call(name) => endpoint.connect_by_name(name).await?,
    };
    eprintln!("connected to {} over {}", stream.peer_addr(), stream.path());
    Ok((endpoint, stream))
}

/// Sends each line of `input` to the peer and writes each of the peer's
/// lines to `output`, until both sides have finished.
pub async fn chat(
    stream: Stream,
    input: impl AsyncBufRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> io::Result<()> {
    let mut framed = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    let mut lines = input.lines();
    let mut input_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if input_open => match line? {
                Some(line) => framed.send(line).await.map_err(io::Error::other)?,
                None => {
                    // Our side is done: finish the stream, keep reading.
                    input_open = false;
                    framed.get_mut().shutdown().await?;
                }
            },
            received = framed.next() => match received {
                Some(line) => {
                    let line = line.map_err(io::Error::other)?;
                    output.write_all(line.as_bytes()).await?;
                    output.write_all(b"\n").await?;
                    output.flush().await?;
                }
                // The peer finished.
                None => break,
            },
        }
    }
    if input_open {
        framed.get_mut().shutdown().await?;
    }
    Ok(())
}

/// The unspecified address of the server's family, port 0.
fn unspecified_for(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

fn usage() -> ! {
    eprintln!("usage: chat KEY@HOST:PORT wait NAME | chat KEY@HOST:PORT call NAME");
    std::process::exit(2)
}

#[allow(dead_code)] // The tests include this file for `meet` and `chat`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rendezvous, verb, name] = &args[..] else {
        usage()
    };
    let rendezvous: RendezvousAddr = rendezvous.parse().unwrap_or_else(|e| {
        eprintln!("chat: {e}");
        usage()
    });
    let server_addr = match (rendezvous.host(), rendezvous.port())
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(a)) => a,
        _ => {
            eprintln!("chat: cannot resolve {}", rendezvous.host());
            return std::process::ExitCode::FAILURE;
        }
    };
    let role = match verb.as_str() {
        "wait" => Role::Wait(name.parse().unwrap_or_else(|e| {
            eprintln!("chat: {e}");
            usage()
        })),
        "call" => Role::Call(name.clone()),
        _ => usage(),
    };
    let client = ClientConfig::new(rendezvous.key(), server_addr);
    let config = EndpointConfig::new(Keypair::generate_from_os());
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let result = async {
        let (endpoint, stream) = meet(config, client, role).await?;
        chat(stream, stdin, tokio::io::stdout()).await?;
        endpoint.wait_idle().await;
        Ok::<_, io::Error>(())
    };
    match result.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
