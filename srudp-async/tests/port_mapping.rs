//! `Endpoint::map_port` where there is nothing to map: it settles at once
//! with the reason, and closing it returns (no lease to delete).

use std::time::Duration;

use srudp_async::{Endpoint, EndpointConfig, Keypair, PortMappingState};

#[test]
fn an_endpoint_bound_to_loopback_asks_no_gateway() {
    let endpoint = Endpoint::bind_on_thread(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::new(Keypair::generate_from_os()),
        None,
    )
    .unwrap();
    let mapping = endpoint.map_port();
    match mapping.wait_settled(Duration::from_secs(5)) {
        PortMappingState::Unavailable(why) => assert!(why.contains("loopback"), "{why}"),
        other => panic!("{other:?}"),
    }
    mapping.close();
}
