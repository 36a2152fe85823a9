//! srudp-async-std is srudp-async with the `async-io` feature: its names
//! reach the same endpoint and stream, driven by async-io under async-std.
//! The scenarios themselves are srudp-async's suite (srudp-async/tests),
//! which runs each one under tokio, smol and async-std.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async_std::{Endpoint, EndpointConfig, Keypair};

#[test]
fn the_reexported_endpoint_carries_bytes_on_async_std() {
    async_std::task::block_on(async {
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
            stream.close().await.unwrap();
            let mut got = Vec::new();
            accepted.read_to_end(&mut got).await.unwrap();
            got
        };
        let got = async_std::future::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap();
        assert_eq!(got, b"hello");
    });
}
