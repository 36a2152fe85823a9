//! An echo server and client on tokio.
//!
//! The server prints its public key, then echoes every connection back
//! (`tokio::io::copy` over `tokio::io::split`). The client copies its
//! standard input to the server, finishes, and prints what comes back.
//! On one machine:
//!
//! ```text
//! cargo run -p srudp-async --features tokio --example echo_tokio -- server 127.0.0.1:4433
//! echo "hello, srudp" | cargo run -p srudp-async --features tokio --example echo_tokio -- client <KEY> 127.0.0.1:4433
//! ```
//!
//! where `<KEY>` is the key the server printed.

use std::net::SocketAddr;

use srudp_async::{Endpoint, EndpointConfig, Keypair, PublicKey};
use tokio::io::AsyncWriteExt;

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
        tokio::spawn(async move {
            let (mut reader, mut writer) = tokio::io::split(stream);
            let result = async {
                let n = tokio::io::copy(&mut reader, &mut writer).await?;
                writer.shutdown().await?;
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
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async {
        tokio::io::copy(&mut tokio::io::stdin(), &mut writer).await?;
        writer.shutdown().await
    };
    let receive = async {
        let mut stdout = tokio::io::stdout();
        tokio::io::copy(&mut reader, &mut stdout).await?;
        stdout.flush().await
    };
    tokio::try_join!(send, receive)?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
}
