//! srudp-tokio is srudp-async with the `tokio` feature: its names reach the
//! same endpoint and stream, driven by the tokio runtime they are bound in.
//! The scenarios themselves are srudp-async's suite (srudp-async/tests),
//! which runs each one under tokio, smol and async-std.

use std::time::Duration;

use srudp_tokio::{Endpoint, EndpointConfig, Keypair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reexported_endpoint_carries_bytes_on_tokio() {
    let bind = || {
        Endpoint::bind(
            "127.0.0.1:0".parse().unwrap(),
            EndpointConfig::new(Keypair::generate_from_os()),
        )
    };
    let (server, client) = (bind().unwrap(), bind().unwrap());
    let exchange = async {
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (mut accepted, _, _) = server.accept().await.unwrap();
        let mut stream = connecting.await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut got = Vec::new();
        accepted.read_to_end(&mut got).await.unwrap();
        got
    };
    let got = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap();
    assert_eq!(got, b"hello");
}
