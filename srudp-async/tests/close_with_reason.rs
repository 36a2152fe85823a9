//! `Endpoint::close_with`: every peer of a closing endpoint learns the
//! application's code and reason, as with `Stream::abort` for one.

use std::time::Duration;

use srudp_async::{close_reason, CloseReason, Endpoint, EndpointConfig, Keypair};
use tokio::io::AsyncReadExt;

const WAIT: Duration = Duration::from_secs(10);

fn endpoint() -> Endpoint {
    Endpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::new(Keypair::generate_from_os()),
    )
    .unwrap()
}

#[tokio::test]
async fn every_peer_of_an_endpoint_closed_with_a_reason_reads_that_reason() {
    let server = endpoint();
    let clients = [endpoint(), endpoint()];
    let mut accepted = Vec::new();
    for client in &clients {
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (stream, _, _) = tokio::time::timeout(WAIT, server.accept())
            .await
            .unwrap()
            .unwrap();
        accepted.push(stream);
        let stream = tokio::time::timeout(WAIT, connecting)
            .await
            .unwrap()
            .unwrap();
        accepted.push(stream);
    }
    // The server ends both connections with one call.
    server.close_with(130, b"interrupted");
    for mut client_side in accepted.into_iter().skip(1).step_by(2) {
        let mut buf = [0u8; 16];
        let err = tokio::time::timeout(WAIT, client_side.read(&mut buf))
            .await
            .expect("the close arrives well before the idle timeout")
            .expect_err("a closed connection fails the read");
        assert_eq!(
            close_reason(&err),
            Some(&CloseReason::PeerClose {
                code: 130,
                reason: "interrupted".into()
            })
        );
    }
    let _ = tokio::time::timeout(WAIT, server.wait_idle()).await;
}
