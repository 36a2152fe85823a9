//! Which of a client's addresses the server hands to the peers it is
//! introduced to (spec §11.4, §11.9): only those the server can justify.
//!
//! A client declares its host candidates itself, and the peer it is
//! introduced to punches toward them. Forwarded unchecked, they would let
//! anyone aim a peer's probes at any address on the Internet. The server
//! therefore forwards the address it observed (where the client's datagrams
//! come from) and, of the declared ones, only addresses that cannot name a
//! host elsewhere on the Internet: private IPv4 (RFC 1918), link-local (IPv4
//! 169.254/16, IPv6 fe80::/10) and unique local IPv6 (fc00::/7). Such
//! addresses are how two peers behind the same NAT reach each other. It
//! also forwards declared addresses on the observed IP address itself
//! (another port of the client's own public address: a port mapping its
//! NAT granted, PCP / NAT-PMP), which aim a peer's probes at nobody else.

use std::net::{IpAddr, SocketAddr};

use super::MAX_MESSAGE_CANDIDATES;

/// The candidates of a client whose address the server observed at
/// `observed` and which declared `hosts`: `observed` first, then the host
/// candidates a peer may be sent to, deduplicated, at most
/// [`MAX_MESSAGE_CANDIDATES`].
pub(crate) fn forwarded_candidates(observed: SocketAddr, hosts: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out = vec![observed];
    for h in hosts
        .iter()
        .filter(|h| is_local_scope(h.ip()) || h.ip() == observed.ip())
    {
        if out.len() >= MAX_MESSAGE_CANDIDATES {
            break;
        }
        if !out.contains(h) {
            out.push(*h);
        }
    }
    out
}

/// Whether `ip` is private, link-local or unique local: an address that is
/// meaningful only on the client's own network.
pub(crate) fn is_local_scope(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local_scope(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            // fc00::/7 (unique local) and fe80::/10 (link-local).
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_observed_address_and_local_host_candidates_are_forwarded() {
        let observed = addr("203.0.113.7:4000");
        let hosts = [
            addr("192.168.1.10:5000"),
            addr("10.1.2.3:5000"),
            addr("172.16.0.1:5000"),
            addr("169.254.9.9:5000"),
            addr("[fd12:3456::1]:5000"),
            addr("[fe80::1]:5000"),
            addr("[::ffff:192.168.7.7]:5000"),
        ];
        let mut expected = vec![observed];
        expected.extend_from_slice(&hosts);
        assert_eq!(forwarded_candidates(observed, &hosts), expected);
    }

    #[test]
    fn public_and_other_host_candidates_are_dropped() {
        let observed = addr("203.0.113.7:4000");
        let hosts = [
            addr("198.51.100.9:53"),     // a third party on the Internet
            addr("8.8.8.8:53"),          // likewise
            addr("[2001:db8::1]:443"),   // global IPv6
            addr("127.0.0.1:5000"),      // the callee's own loopback
            addr("[::1]:5000"),          // likewise
            addr("0.0.0.0:5000"),        // unspecified
            addr("224.0.0.1:5000"),      // multicast
            addr("255.255.255.255:9"),   // broadcast
            addr("172.32.0.1:5000"),     // just outside 172.16/12
            addr("[fec0::1]:5000"),      // deprecated site-local
            addr("[::ffff:8.8.8.8]:53"), // a public address, IPv4-mapped
        ];
        assert_eq!(forwarded_candidates(observed, &hosts), vec![observed]);
    }

    #[test]
    fn other_ports_of_the_observed_address_are_forwarded() {
        // A port mapping the client's NAT granted (PCP / NAT-PMP).
        let observed = addr("203.0.113.7:4000");
        let mapped = addr("203.0.113.7:40001");
        assert_eq!(
            forwarded_candidates(observed, &[mapped, addr("203.0.113.8:40001")]),
            vec![observed, mapped]
        );
    }

    #[test]
    fn duplicates_are_dropped_and_the_list_is_bounded() {
        let observed = addr("192.168.1.10:5000");
        let mut hosts = vec![observed, observed];
        hosts.extend((1..=40).map(|i| addr(&format!("10.0.0.{i}:5000"))));
        let out = forwarded_candidates(observed, &hosts);
        assert_eq!(out.len(), MAX_MESSAGE_CANDIDATES);
        assert_eq!(out[0], observed);
        assert_eq!(out[1], addr("10.0.0.1:5000"));
    }
}
