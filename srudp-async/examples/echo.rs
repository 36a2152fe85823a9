//! An echo server and client, on the runtime you name: `tokio`, `smol` or
//! `async-std` (one program for all three: the `Stream` implements
//! futures-io's traits everywhere, and tokio's too).
//!
//! The server prints its public key, then echoes every connection back
//! (`futures_lite::io::copy` over the stream's two halves, one task per
//! connection). The client copies its standard input to the server,
//! finishes, and prints what comes back. On one machine:
//!
//! ```text
//! cargo run -p srudp-async --features tokio,async-io --example echo -- tokio server 127.0.0.1:4433
//! echo "hello, srudp" | cargo run -p srudp-async --features tokio,async-io --example echo -- smol client <KEY> 127.0.0.1:4433
//! ```
//!
//! where `<KEY>` is the key the server printed.

use std::future::Future;
use std::net::SocketAddr;

use futures_lite::AsyncWriteExt;
use srudp_async::{Endpoint, EndpointConfig, Keypair, PublicKey};

fn usage() -> ! {
    eprintln!(
        "usage: echo <tokio|smol|async-std> server <bind address>\n       \
         echo <tokio|smol|async-std> client <server key> <server address>"
    );
    std::process::exit(2)
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| {
        eprintln!("bad address {s:?}: {e}");
        usage()
    })
}

/// The executor the program runs on.
#[derive(Debug, Clone, Copy)]
enum Executor {
    Tokio,
    Smol,
    AsyncStd,
}

impl Executor {
    fn parse(name: &str) -> Executor {
        match name {
            "tokio" => Executor::Tokio,
            "smol" => Executor::Smol,
            "async-std" => Executor::AsyncStd,
            _ => usage(),
        }
    }

    fn block_on<T>(self, f: impl Future<Output = T>) -> T {
        match self {
            Executor::Tokio => tokio::runtime::Runtime::new()
                .expect("a tokio runtime")
                .block_on(f),
            Executor::Smol => smol::block_on(f),
            Executor::AsyncStd => async_std::task::block_on(f),
        }
    }

    fn spawn(self, f: impl Future<Output = ()> + Send + 'static) {
        match self {
            Executor::Tokio => drop(tokio::spawn(f)),
            Executor::Smol => smol::spawn(f).detach(),
            Executor::AsyncStd => drop(async_std::task::spawn(f)),
        }
    }
}

async fn serve(ex: Executor, bind: SocketAddr) -> std::io::Result<()> {
    // Inside tokio's runtime the driver is a tokio task; elsewhere it runs
    // on async-io's reactor.
    let endpoint = Endpoint::bind(bind, EndpointConfig::new(Keypair::generate_from_os()))?;
    println!("{}", endpoint.public_key());
    eprintln!("echo server on {} ({ex:?})", endpoint.local_addr());
    loop {
        let (stream, from, _) = endpoint.accept().await?;
        eprintln!("{from}: connected");
        ex.spawn(async move {
            let (mut reader, mut writer) = futures_lite::io::split(stream);
            let result = async {
                let n = futures_lite::io::copy(&mut reader, &mut writer).await?;
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
    // Standard input and output on a blocking thread pool, under any executor.
    let send = async {
        futures_lite::io::copy(smol::Unblock::new(std::io::stdin()), &mut writer).await?;
        writer.close().await
    };
    let receive = async {
        let mut stdout = smol::Unblock::new(std::io::stdout());
        futures_lite::io::copy(&mut reader, &mut stdout).await?;
        stdout.flush().await
    };
    futures_lite::future::try_zip(send, receive).await?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((ex, args)) = args.split_first() else {
        usage()
    };
    let ex = Executor::parse(ex);
    ex.block_on(async {
        match args {
            [mode, bind] if mode == "server" => serve(ex, parse_addr(bind)).await,
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
