//! Shared scaffolding for the loopback tests: configurations with fixed
//! keys and deterministic payloads (from `srudp-testkit`), an echo server.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io;
use std::time::Duration;

pub use srudp_testkit::fixtures::*;
use srudp_tokio::{Endpoint, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts connections forever and echoes each one back until the peer
/// finishes, then finishes too (`tokio::io::split` + `tokio::io::copy`).
pub fn spawn_echo_server(endpoint: Endpoint) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _, _)) = endpoint.accept().await {
            tokio::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(stream);
                if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
                    let _ = writer.shutdown().await;
                }
            });
        }
    })
}

/// Sends `data` through an echoing stream while reading the echo back;
/// returns what came back.
pub async fn echo_through(stream: Stream, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async {
        writer.write_all(data).await?;
        writer.shutdown().await
    };
    let receive = async {
        let mut back = Vec::with_capacity(data.len());
        reader.read_to_end(&mut back).await?;
        Ok(back)
    };
    let ((), back) = tokio::try_join!(send, receive)?;
    Ok(back)
}

/// Fails the test instead of hanging when `f` takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}
