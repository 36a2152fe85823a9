//! Hearing the gateway's unsolicited announcements: a PCP server that
//! restarts multicasts an ANNOUNCE to 224.0.0.1:5350 (RFC 6887 §14.1.3),
//! a NAT-PMP one its public address (RFC 6886 §3.2.1), so that clients map
//! again without waiting for their next renewal.
//!
//! The port-mapping thread listens on a blocking std socket bound to port
//! 5350 (shared with other listeners on the host, `SO_REUSEADDR`), in the
//! all-hosts group every IPv4 host is a member of. What arrives is hostile
//! until shown otherwise: datagrams from any address but the gateway's
//! port 5351 are dropped unread, the rest parsed by `port_mapping_wire`'s
//! parsers, which return errors. Only IPv4 gateways are asked, so only
//! 224.0.0.1 is heard (not PCP's [ff02::1]).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use crate::port_mapping_wire::{self as wire, Announcement};

/// The all-hosts group the announcements go to.
const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);

/// A socket hearing one gateway's announcements.
#[derive(Debug)]
pub(crate) struct Announcements {
    socket: UdpSocket,
    gateway: Ipv4Addr,
}

impl Announcements {
    /// Listens on port 5350 for `gateway`'s announcements, on the
    /// interface of `local` (our address toward the gateway).
    pub(crate) fn listen(gateway: Ipv4Addr, local: Ipv4Addr) -> io::Result<Announcements> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, wire::ANNOUNCE_PORT)).into())?;
        // Every host is in 224.0.0.1 already; joining on our interface
        // makes the delivery to this socket explicit. A failure is no
        // reason to hear nothing.
        if let Err(e) = socket.join_multicast_v4(&ALL_HOSTS, &local) {
            debug!("port mapping: joining {ALL_HOSTS} on {local}: {e}");
        }
        Ok(Announcements {
            socket: socket.into(),
            gateway,
        })
    }

    /// Waits until `deadline` for an announcement from the gateway; `None`
    /// when none came. Whatever else arrives is dropped.
    pub(crate) fn recv_until(&self, deadline: Instant) -> io::Result<Option<Announcement>> {
        let mut buf = [0u8; wire::MAX_ANSWER_LEN];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.socket
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            };
            if !from_gateway(from, self.gateway) {
                continue;
            }
            match wire::parse_announcement(&buf[..n]) {
                Ok(a) => return Ok(Some(a)),
                Err(e) => debug!("port mapping: skipped an announcement: {e}"),
            }
        }
    }
}

/// Whether a datagram from `from` may be `gateway`'s announcement: sent
/// from its server port, 5351 (RFC 6887 §8.1, RFC 6886 §3.2.1).
fn from_gateway(from: SocketAddr, gateway: Ipv4Addr) -> bool {
    from == SocketAddr::V4(SocketAddrV4::new(gateway, wire::SERVER_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

    #[test]
    fn only_the_gateways_server_port_is_heard() {
        assert!(from_gateway("192.168.1.1:5351".parse().unwrap(), GATEWAY));
        // Attacker test: another host of the LAN, or the gateway from
        // another port, cannot make us map again.
        assert!(!from_gateway("192.168.1.66:5351".parse().unwrap(), GATEWAY));
        assert!(!from_gateway("192.168.1.1:5350".parse().unwrap(), GATEWAY));
        assert!(!from_gateway(
            "[::ffff:192.168.1.1]:5351".parse().unwrap(),
            GATEWAY
        ));
    }
    // Hearing one end to end (multicast from the gateway's namespace) is
    // `srudp-cli/tests/nat.rs`'s
    // `a_restarted_gateway_that_announces_it_is_mapped_again_at_once`.
}
