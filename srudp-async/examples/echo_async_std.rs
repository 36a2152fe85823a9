//! An echo server and client on async-std (the same crate serves smol:
//! see the demo example).
//!
//! The server prints its public key, then echoes every connection back
//! (`async_std::io::copy` over `futures::io` halves). The client copies its
//! standard input to the server, finishes, and prints what comes back.
//! On one machine:
//!
//! ```text
//! cargo run -p srudp-async --features async-io --example echo_async_std -- server 127.0.0.1:4433
//! echo "hello, srudp" | cargo run -p srudp-async --features async-io --example echo_async_std -- client <KEY> 127.0.0.1:4433
//! ```
//!
//! where `<KEY>` is the key the server printed.

use std::net::SocketAddr;

use futures_lite::AsyncWriteExt;
use srudp_async::{Endpoint, EndpointConfig, Keypair, PublicKey};

fn usage() -> ! {
    eprintln!(
        "usage: echo server <bind address>\n       echo client <server key> <server address>"
    );
    std::process::exit(2)
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| {
        eprintln!("bad address {s:?}: {e}");
        usage()
    })
}

async fn serve(bind: SocketAddr) -> std::io::Result<()> {
    let endpoint = Endpoint::bind(bind, EndpointConfig::new(Keypair::generate_from_os()))?;
    println!("{}", endpoint.public_key());
    eprintln!("echo server on {}", endpoint.local_addr());
    loop {
        let (stream, from, _) = endpoint.accept().await?;
        eprintln!("{from}: connected");
        async_std::task::spawn(async move {
            let (mut reader, mut writer) = futures_lite::io::split(stream);
            let result = async {
                let n = async_std::io::copy(&mut reader, &mut writer).await?;
                writer.close().await?;
                Ok::<_, std::io::Error>(n)
            }
            .await;
            match result {
                Ok(n) => eprintln!("{from}: echoed {n} bytes"),
                Err(e) => eprintln!("{from}: {e}"),
            }
        });
    }
}

async fn client(key: PublicKey, server: SocketAddr) -> std::io::Result<()> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let endpoint = Endpoint::bind(bind, EndpointConfig::new(Keypair::generate_from_os()))?;
    let stream = endpoint.connect(key, &[server]).await?;
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let send = async {
        async_std::io::copy(&mut async_std::io::stdin(), &mut writer).await?;
        writer.close().await
    };
    let receive = async {
        let mut stdout = async_std::io::stdout();
        async_std::io::copy(&mut reader, &mut stdout).await?;
        stdout.flush().await
    };
    futures_lite::future::try_zip(send, receive).await?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    async_std::task::block_on(async {
        match args.as_slice() {
            [mode, bind] if mode == "server" => serve(parse_addr(bind)).await,
            [mode, key, server] if mode == "client" => {
                let key: PublicKey = key.parse().unwrap_or_else(|e| {
                    eprintln!("bad key: {e}");
                    usage()
                });
                client(key, parse_addr(server)).await
            }
            _ => usage(),
        }
    })
}
