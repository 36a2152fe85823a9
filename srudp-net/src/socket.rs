//! Binding the endpoint's UDP socket, and translating addresses between the
//! form the protocol uses and the form the socket wants.
//!
//! A dual-stack IPv6 socket sees IPv4 peers as v4-mapped IPv6 addresses
//! (`::ffff:192.0.2.1`) and must be given them in that form. The protocol
//! compares addresses (candidates, paths), so it always sees a peer's
//! canonical form — plain IPv4 for an IPv4 peer — whatever the socket.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel buffer size asked for in each direction (best effort: the OS may
/// cap it). Bulk transfers burst a congestion window at once; a larger
/// receive buffer turns fewer of those bursts into drops.
const SOCKET_BUFFER: usize = 4 << 20;

/// Which peers a socket can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// An IPv4 socket: IPv4 peers only.
    V4,
    /// An IPv6 socket that the OS keeps IPv6-only (bound to a specific IPv6
    /// address, or dual stack refused): IPv6 peers only.
    V6Only,
    /// An IPv6 socket bound to `[::]` with dual stack on: IPv6 peers, and
    /// IPv4 peers as IPv4-mapped addresses.
    DualStack,
}

/// Binds a non-blocking UDP socket. An IPv6 socket bound to the unspecified
/// address (`[::]`) is made dual-stack where the OS allows it.
pub fn bind(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, Family)> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Best effort: where the OS refuses, the socket stays IPv6-only and
        // `only_v6` below tells.
        let _ = socket.set_only_v6(!addr.ip().is_unspecified());
    }
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let family = match addr {
        SocketAddr::V4(_) => Family::V4,
        SocketAddr::V6(_) if socket.only_v6()? => Family::V6Only,
        SocketAddr::V6(_) => Family::DualStack,
    };
    Ok((socket.into(), family))
}

/// A peer address as the protocol sees it: v4-mapped IPv6 becomes IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl Family {
    /// `to` in the form this socket sends to, or `None` when it cannot reach it.
    pub fn destination(self, to: SocketAddr) -> Option<SocketAddr> {
        match (self, canonical(to)) {
            (Family::V4, v4 @ SocketAddr::V4(_)) => Some(v4),
            (Family::V6Only | Family::DualStack, v6 @ SocketAddr::V6(_)) => Some(v6),
            (Family::DualStack, SocketAddr::V4(v4)) => Some(SocketAddr::V6(SocketAddrV6::new(
                v4.ip().to_ipv6_mapped(),
                v4.port(),
                0,
                0,
            ))),
            _ => None,
        }
    }

    /// The candidates this socket can reach, in canonical form; an error
    /// when there were candidates but none is reachable.
    pub fn reachable(
        self,
        candidates: &[SocketAddr],
        local: SocketAddr,
    ) -> io::Result<Vec<SocketAddr>> {
        let reachable: Vec<SocketAddr> = candidates
            .iter()
            .filter(|c| self.destination(**c).is_some())
            .map(|c| canonical(*c))
            .collect();
        if reachable.is_empty() && !candidates.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "no candidate address is reachable from a socket bound to {local} \
                     (address family mismatch)"
                ),
            ));
        }
        Ok(reachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_mapped_peers_are_seen_as_ipv4() {
        assert_eq!(canonical(a("[::ffff:127.0.0.1]:9")), a("127.0.0.1:9"));
        assert_eq!(canonical(a("[::1]:9")), a("[::1]:9"));
        assert_eq!(canonical(a("10.0.0.1:9")), a("10.0.0.1:9"));
    }

    #[test]
    fn each_family_reaches_only_what_it_can_send_to() {
        let (v4, v6) = (a("127.0.0.1:9"), a("[::1]:9"));
        assert_eq!(Family::V4.destination(v4), Some(v4));
        assert_eq!(Family::V4.destination(v6), None);
        assert_eq!(Family::V6Only.destination(v4), None);
        assert_eq!(Family::V6Only.destination(v6), Some(v6));
        assert_eq!(
            Family::DualStack.destination(v4),
            Some(a("[::ffff:127.0.0.1]:9"))
        );
        assert_eq!(Family::DualStack.destination(v6), Some(v6));
    }

    #[test]
    fn candidates_of_the_wrong_family_are_dropped_or_refused() {
        let local = a("127.0.0.1:1");
        let mixed = [a("[::1]:9"), a("[::ffff:127.0.0.1]:9")];
        assert_eq!(
            Family::V4.reachable(&mixed, local).unwrap(),
            vec![a("127.0.0.1:9")]
        );
        let err = Family::V4.reachable(&[a("[::1]:9")], local).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn an_unspecified_ipv6_bind_is_dual_stack_where_allowed() {
        let Ok((socket, family)) = bind(a("[::]:0")) else {
            println!("skipped: IPv6 is not available here");
            return;
        };
        assert!(socket.local_addr().unwrap().is_ipv6());
        assert_ne!(family, Family::V4);
        if let Ok((_, family)) = bind(a("[::1]:0")) {
            assert_eq!(family, Family::V6Only);
        }
    }
}
