//! `srudp nat-check`: our public address and how our NAT maps and filters.

use std::net::SocketAddr;
use std::time::Duration;

use srudp_tokio::rendezvous::RendezvousAddr;
use srudp_tokio::PortMappingState;

use crate::endpoint_setup::{registered_endpoint, Admission};
use crate::failure::Failure;
use crate::resolve::resolve_rendezvous;

/// `srudp nat-check`.
pub(crate) async fn nat_check(
    via: &RendezvousAddr,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let rdv = resolve_rendezvous(via).await?;
    let endpoint = registered_endpoint(&rdv, None, None, Admission::ConnectOnly, bind).await?;
    let status = endpoint
        .rendezvous_status()
        .ok_or_else(|| Failure::msg("no rendezvous status"))?;
    if let Some(observed) = status.observed {
        println!("public address: {observed}");
    }
    let nat = tokio::time::timeout(Duration::from_secs(10), endpoint.nat_behavior())
        .await
        .map_err(|_| Failure::msg("the NAT test did not finish within 10s"))??;
    // PCP, NAT-PMP and an SSDP search for UPnP-IGD take about 5 s in all
    // when no gateway answers.
    let port_mapping = endpoint
        .settled_port_mapping_state(Duration::from_secs(6))
        .await;
    let mapped = matches!(port_mapping, Some(PortMappingState::Mapped(_)));
    let mapping = match nat.mapping {
        srudp_tokio::rendezvous::NatMapping::NotBehindNat => "none (not behind a NAT)",
        srudp_tokio::rendezvous::NatMapping::EndpointIndependent => {
            "endpoint-independent (hole punching works)"
        }
        srudp_tokio::rendezvous::NatMapping::EndpointDependent if mapped => {
            "endpoint-dependent, symmetric (peers reach us through the port mapping)"
        }
        srudp_tokio::rendezvous::NatMapping::EndpointDependent => {
            "endpoint-dependent, symmetric (connections will likely be relayed)"
        }
        srudp_tokio::rendezvous::NatMapping::Unknown => {
            "unknown (the server has no --second-port?)"
        }
    };
    let filtering = match nat.filtering {
        srudp_tokio::rendezvous::NatFiltering::Open => "open (unsolicited packets get in)",
        srudp_tokio::rendezvous::NatFiltering::Filtered => {
            "filtered (only from addresses we sent to)"
        }
        srudp_tokio::rendezvous::NatFiltering::Unknown => "unknown",
    };
    println!("mapping: {mapping}");
    println!("filtering: {filtering}");
    match port_mapping {
        Some(PortMappingState::Mapped(m)) => println!("port mapping: {m}"),
        Some(PortMappingState::Unavailable(why)) => println!("port mapping: none ({why})"),
        Some(_) => println!("port mapping: none (no answer yet)"),
        None => println!("port mapping: off (--no-port-mapping)"),
    }
    endpoint.close();
    Ok(())
}
