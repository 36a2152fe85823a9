//! NAT behaviour detection (spec §11.7).

use std::time::Duration;

use srudp_proto::rendezvous::{ClientEvent, NatBehavior, NatFiltering, NatMapping, ServerConfig};
use srudp_proto::sim::NatConfig;

use crate::world::{addr, World, SERVER_ALT_IP, SERVER_ALT_PORT};

const S: Duration = Duration::from_secs(1);

/// What a client behind `nat` (or on the open Internet for `None`) learns
/// from a server whose second socket is `alt`.
fn detect(seed: u64, nat: Option<NatConfig>, alt: Option<&str>) -> NatBehavior {
    let mut w = World::new(seed);
    w.start_server(ServerConfig {
        alt_address: alt.map(addr),
        ..ServerConfig::default()
    });
    let socket = match nat {
        Some(nat) => {
            let n = w.add_nat("198.51.100.1", nat);
            w.add_host_behind(n, "192.168.1.10");
            "192.168.1.10:5000"
        }
        None => {
            w.add_public_host("192.0.2.10");
            "192.0.2.10:5000"
        }
    };
    let mut config = w.client_config();
    config.host_candidates = vec![addr(socket)];
    let c = w.add_client(socket, seed + 1, config);
    let event = w.wait_for(c, 20 * S, |e| matches!(e, ClientEvent::NatDetected(_)));
    let Some(ClientEvent::NatDetected(result)) = event else {
        panic!("seed {seed}: no result: {:?}", w.events(c));
    };
    assert_eq!(w.client(c).nat_behavior(), Some(result));
    result
}

fn nat(mapping: NatMapping, filtering: NatFiltering) -> NatBehavior {
    NatBehavior { mapping, filtering }
}

#[test]
fn each_nat_kind_is_recognised_with_a_second_server_address() {
    use NatFiltering::{Filtered, Open};
    use NatMapping::{EndpointDependent, EndpointIndependent, NotBehindNat};
    let cases = [
        (
            "full cone",
            Some(NatConfig::full_cone()),
            nat(EndpointIndependent, Open),
        ),
        (
            "restricted cone",
            Some(NatConfig::restricted_cone()),
            nat(EndpointIndependent, Filtered),
        ),
        (
            "port-restricted cone",
            Some(NatConfig::port_restricted_cone()),
            nat(EndpointIndependent, Filtered),
        ),
        (
            "port-preserving port-restricted cone",
            Some(NatConfig::port_restricted_cone().with_port_preservation(true)),
            nat(EndpointIndependent, Filtered),
        ),
        (
            "symmetric",
            Some(NatConfig::symmetric()),
            nat(EndpointDependent, Filtered),
        ),
        ("no NAT", None, nat(NotBehindNat, Open)),
    ];
    for (name, config, expected) in cases {
        for seed in 0..3 {
            assert_eq!(
                detect(seed, config.clone(), Some(SERVER_ALT_IP)),
                expected,
                "{name}, seed {seed}"
            );
        }
    }
}

#[test]
fn a_second_port_on_the_same_address_tells_port_filtering_apart() {
    use NatFiltering::{Filtered, Open};
    use NatMapping::{EndpointDependent, EndpointIndependent};
    assert_eq!(
        detect(
            1,
            Some(NatConfig::port_restricted_cone()),
            Some(SERVER_ALT_PORT)
        ),
        nat(EndpointIndependent, Filtered)
    );
    assert_eq!(
        detect(1, Some(NatConfig::full_cone()), Some(SERVER_ALT_PORT)),
        nat(EndpointIndependent, Open)
    );
    assert_eq!(
        detect(1, Some(NatConfig::symmetric()), Some(SERVER_ALT_PORT)),
        nat(EndpointDependent, Filtered)
    );
    // Address-dependent filtering lets the same IP in from another port:
    // without a second IP it looks open (spec §11.7).
    assert_eq!(
        detect(1, Some(NatConfig::restricted_cone()), Some(SERVER_ALT_PORT)),
        nat(EndpointIndependent, Open)
    );
}

#[test]
fn without_a_second_address_the_result_is_unknown() {
    assert_eq!(
        detect(2, Some(NatConfig::full_cone()), None),
        NatBehavior::UNKNOWN
    );
}
