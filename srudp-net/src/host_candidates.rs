//! This machine's own addresses, offered to peers as host candidates.

use std::net::{IpAddr, SocketAddr};

use srudp_proto::rendezvous::MAX_MESSAGE_CANDIDATES;

/// The host candidates of an endpoint bound to `local`: the addresses at
/// which a peer on the same network (or host) may reach it, with its port.
///
/// Bound to a specific address, that address is the only candidate. Bound
/// to the unspecified address (`0.0.0.0`, `[::]`), it is every address of
/// the machine's interfaces that the socket can use — IPv4 for `0.0.0.0`,
/// IPv6 and IPv4 for `[::]` — except loopback and IPv6 link-local ones
/// (which need a scope to be reachable), at most 15 (the protocol's limit),
/// IPv4 first. A machine whose interfaces cannot be listed offers none.
pub fn host_candidates(local: SocketAddr) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut addrs: Vec<IpAddr> = interfaces
        .iter()
        .map(|i| i.ip())
        .filter(|ip| usable(*ip, local.ip()))
        .collect();
    addrs.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    addrs.dedup();
    addrs
        .into_iter()
        .take(MAX_MESSAGE_CANDIDATES)
        .map(|ip| SocketAddr::new(ip, local.port()))
        .collect()
}

fn usable(ip: IpAddr, bound: IpAddr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() {
        return false;
    }
    match ip {
        IpAddr::V4(_) => true,
        // Link-local IPv6 (fe80::/10) is unreachable without a scope id.
        IpAddr::V6(v6) => bound.is_ipv6() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_bind_address_is_the_only_candidate() {
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(host_candidates(local), vec![local]);
    }

    #[test]
    fn an_unspecified_bind_offers_interface_addresses_with_the_port() {
        let local: SocketAddr = "0.0.0.0:4001".parse().unwrap();
        let candidates = host_candidates(local);
        assert!(candidates.len() <= MAX_MESSAGE_CANDIDATES);
        for c in &candidates {
            assert_eq!(c.port(), 4001);
            assert!(c.is_ipv4(), "{c}: an IPv4 socket offers IPv4 only");
            assert!(!c.ip().is_loopback() && !c.ip().is_unspecified(), "{c}");
        }
    }

    #[test]
    fn link_local_and_loopback_are_never_offered() {
        let v6: IpAddr = "::".parse().unwrap();
        assert!(!usable("fe80::1".parse().unwrap(), v6));
        assert!(!usable("::1".parse().unwrap(), v6));
        assert!(!usable("127.0.0.1".parse().unwrap(), v6));
        assert!(usable("2001:db8::5".parse().unwrap(), v6));
        assert!(!usable(
            "2001:db8::5".parse().unwrap(),
            "0.0.0.0".parse().unwrap()
        ));
        assert!(usable(
            "192.0.2.9".parse().unwrap(),
            "0.0.0.0".parse().unwrap()
        ));
    }
}
