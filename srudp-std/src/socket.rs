//! The endpoint's UDP socket: binding (dual-stack where the OS allows) and
//! address-family conversions.

use std::io;
use std::net::{SocketAddr, SocketAddrV6, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Requested socket buffer sizes: a few hundred datagrams absorb the bursts
/// of a congestion window at loopback speed. Best effort: the kernel caps
/// them (Linux: `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 2 << 20;

/// Which destinations the socket can send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6 { dual_stack: bool },
}

impl Family {
    /// Whether a datagram to `addr` can leave this socket.
    pub(crate) fn can_reach(self, addr: SocketAddr) -> bool {
        match (self, canonical(addr)) {
            (Family::V4, SocketAddr::V4(_)) => true,
            (Family::V4, SocketAddr::V6(_)) => false,
            (Family::V6 { dual_stack }, SocketAddr::V4(_)) => dual_stack,
            (Family::V6 { .. }, SocketAddr::V6(_)) => true,
        }
    }

    /// `addr` in the form this socket's `send_to` takes: IPv4 destinations
    /// become IPv4-mapped IPv6 addresses on an IPv6 socket.
    pub(crate) fn wire_address(self, addr: SocketAddr) -> SocketAddr {
        match (self, canonical(addr)) {
            (Family::V6 { .. }, SocketAddr::V4(v4)) => {
                SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0).into()
            }
            (_, addr) => addr,
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned into plain IPv4, as
/// srudp-proto sees every address (so a dual-stack socket's peers match the
/// IPv4 candidates the application gave).
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Binds a UDP socket to `addr`. Binding the unspecified IPv6 address `[::]`
/// turns `IPV6_V6ONLY` off where the OS allows, so the socket also carries IPv4.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, Family)> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let family = match addr {
        SocketAddr::V4(_) => Family::V4,
        SocketAddr::V6(v6) => {
            let wants_dual = v6.ip().is_unspecified();
            if wants_dual {
                // Some systems forbid dual-stack sockets; then we stay IPv6-only.
                let _ = socket.set_only_v6(false);
            }
            Family::V6 {
                dual_stack: wants_dual && matches!(socket.only_v6(), Ok(false)),
            }
        }
    };
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok((socket.into(), family))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_mapped_addresses_become_ipv4_and_back_on_dual_stack_sockets() {
        assert_eq!(canonical(addr("[::ffff:10.0.0.1]:5")), addr("10.0.0.1:5"));
        assert_eq!(canonical(addr("[::1]:5")), addr("[::1]:5"));
        let dual = Family::V6 { dual_stack: true };
        assert_eq!(
            dual.wire_address(addr("10.0.0.1:5")),
            addr("[::ffff:10.0.0.1]:5")
        );
        assert_eq!(
            Family::V4.wire_address(addr("[::ffff:10.0.0.1]:5")),
            addr("10.0.0.1:5")
        );
        assert!(dual.can_reach(addr("10.0.0.1:5")));
        assert!(!Family::V6 { dual_stack: false }.can_reach(addr("10.0.0.1:5")));
        assert!(!Family::V4.can_reach(addr("[::1]:5")));
        assert!(Family::V4.can_reach(addr("[::ffff:10.0.0.1]:5")));
    }

    #[test]
    fn unspecified_ipv6_binds_dual_stack_where_allowed() {
        let Ok((socket, family)) = bind(addr("[::]:0")) else {
            println!("skipped: IPv6 is not available here");
            return;
        };
        if family != (Family::V6 { dual_stack: true }) {
            println!("skipped: this OS refuses dual-stack sockets");
            return;
        }
        // An IPv4 sender reaches the IPv6 socket.
        let port = socket.local_addr().unwrap().port();
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        v4.send_to(b"4", (Ipv4Addr::LOCALHOST, port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"4");
        assert_eq!(canonical(from), v4.local_addr().unwrap());
    }
}
