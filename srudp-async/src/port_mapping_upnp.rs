//! UPnP-IGD port mapping (the third protocol, after PCP and NAT-PMP): find
//! the gateway's Internet gateway device by SSDP (an M-SEARCH multicast to
//! 239.255.255.250:1900 and sent to the gateway itself), fetch its device
//! description, and call the WANIPConnection (or WANPPPConnection)
//! service's GetExternalIPAddress, AddPortMapping and DeletePortMapping.
//!
//! Only the default gateway is believed: answers from other addresses are
//! ignored, and the description and control URLs must name the gateway, so
//! a host on the LAN cannot send us elsewhere. Every read is capped in
//! size and every exchange in time (see the wire module), so a gateway
//! that stalls or floods delays the mapping by seconds at most.
//!
//! Leases: AddPortMapping asks for [`MAX_LEASE`]. A gateway that takes only
//! leases without end (IGD 1's error 725) gets lease 0; that mapping then
//! lasts until deleted, so it is renewed (re-added) like the others and
//! deleted on close — if the process dies without closing, it stays on the
//! gateway until the gateway restarts.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use tracing::debug;

use crate::port_mapping::MAX_LEASE;
use crate::port_mapping_upnp_wire::{
    self as wire, HttpUrl, UpnpError, CONFLICT_IN_MAPPING, ONLY_PERMANENT_LEASES,
};

/// How long the SSDP search waits for an answer after each of its sends.
const SEARCH_TRIES: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1000)];
/// How long one HTTP exchange (connect, request, whole response) may take.
const HTTP_DEADLINE: Duration = Duration::from_secs(2);
/// The description of our mappings on the gateway.
const DESCRIPTION: &str = "srudp";

/// Why a UPnP-IGD exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpnpFailure {
    #[error("no UPnP-IGD answer")]
    NoAnswer,
    #[error("{0}")]
    Wire(#[from] UpnpError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the gateway's URL names another host ({0})")]
    ElsewhereUrl(SocketAddrV4),
    #[error("response larger than {} bytes", wire::MAX_HTTP_LEN)]
    TooLarge,
    #[error("stopped")]
    Stopped,
}

/// The gateway's port-mapping service, once found.
#[derive(Debug, Clone)]
pub(crate) struct Igd {
    service: String,
    control: HttpUrl,
}

/// A mapping the service granted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpnpLease {
    pub(crate) external: SocketAddr,
    /// The lease in seconds: [`MAX_LEASE`] or what the gateway says it
    /// holds when shorter, or zero (without end) when the gateway takes
    /// nothing else.
    pub(crate) lease_secs: u32,
}

impl Igd {
    /// Searches for the gateway's device and reads its description.
    pub(crate) fn find(gateway: Ipv4Addr, stop: &dyn Fn() -> bool) -> Result<Igd, UpnpFailure> {
        let ssdp = SocketAddrV4::new(gateway, wire::SSDP_GROUP.port());
        Igd::find_at(ssdp, Some(wire::SSDP_GROUP), stop)
    }

    /// [`find`](Igd::find) with the gateway's SSDP address, and the
    /// multicast group to search too (none in the tests, on loopback).
    fn find_at(
        ssdp: SocketAddrV4,
        group: Option<SocketAddrV4>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Igd, UpnpFailure> {
        let gateway = *ssdp.ip();
        let location = search(ssdp, group, stop)?;
        if *location.addr.ip() != gateway {
            return Err(UpnpFailure::ElsewhereUrl(location.addr));
        }
        let (status, body) = http(&location, "GET", "", "")?;
        if status != 200 {
            return Err(UpnpError::Status(status).into());
        }
        let text = String::from_utf8_lossy(&body);
        let (service, control) = wire::parse_description(&text, &location)?;
        if *control.addr.ip() != gateway {
            return Err(UpnpFailure::ElsewhereUrl(control.addr));
        }
        debug!(%service, control = %control.addr, path = %control.path, "UPnP-IGD found");
        Ok(Igd { service, control })
    }

    /// Maps UDP port `external` (or, when another host has it, one of a few
    /// others) to `internal`, and asks the public address.
    pub(crate) fn map(
        &self,
        internal: SocketAddrV4,
        external: u16,
        stop: &dyn Fn() -> bool,
    ) -> Result<UpnpLease, UpnpFailure> {
        let mut lease_secs = MAX_LEASE.as_secs() as u32;
        let mut port = external;
        let mut tries = 0;
        loop {
            if stop() {
                return Err(UpnpFailure::Stopped);
            }
            match self.add(internal, port, lease_secs) {
                Ok(()) => break,
                Err(UpnpFailure::Wire(UpnpError::Fault(ONLY_PERMANENT_LEASES)))
                    if lease_secs != 0 =>
                {
                    lease_secs = 0;
                }
                Err(UpnpFailure::Wire(UpnpError::Fault(CONFLICT_IN_MAPPING))) if tries < 3 => {
                    tries += 1;
                    port = other_port(port, tries);
                }
                Err(e) => return Err(e),
            }
        }
        let lease_secs = match self.granted_lease(port) {
            // A gateway may shorten the lease without saying so in
            // AddPortMapping's answer; renew by what it holds.
            Ok(held) if held != 0 && (lease_secs == 0 || held < lease_secs) => held,
            Ok(_) => lease_secs,
            Err(e) => {
                debug!("UPnP-IGD: the lease held is unknown: {e}");
                lease_secs
            }
        };
        let (status, body) = self.call("GetExternalIPAddress", &[])?;
        let answer = wire::parse_soap_answer(status, &body, "GetExternalIPAddress")?;
        let ip = wire::parse_external_ip(answer)?;
        if ip.is_unspecified() {
            return Err(UpnpError::BadValue("NewExternalIPAddress").into());
        }
        Ok(UpnpLease {
            external: SocketAddr::from((ip, port)),
            lease_secs,
        })
    }

    /// Deletes the mapping of UDP port `external`.
    pub(crate) fn delete(&self, external: u16) -> Result<(), UpnpFailure> {
        let (status, body) = self.call(
            "DeletePortMapping",
            &[
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external.to_string()),
                ("NewProtocol", "UDP".into()),
            ],
        )?;
        wire::parse_soap_answer(status, &body, "DeletePortMapping")?;
        Ok(())
    }

    /// The lease the gateway holds for UDP port `external`, in seconds
    /// (GetSpecificPortMappingEntry).
    fn granted_lease(&self, external: u16) -> Result<u32, UpnpFailure> {
        let (status, body) = self.call(
            "GetSpecificPortMappingEntry",
            &[
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external.to_string()),
                ("NewProtocol", "UDP".into()),
            ],
        )?;
        let answer = wire::parse_soap_answer(status, &body, "GetSpecificPortMappingEntry")?;
        Ok(wire::parse_lease_duration(answer)?)
    }

    fn add(
        &self,
        internal: SocketAddrV4,
        external: u16,
        lease_secs: u32,
    ) -> Result<(), UpnpFailure> {
        let (status, body) = self.call(
            "AddPortMapping",
            &[
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external.to_string()),
                ("NewProtocol", "UDP".into()),
                ("NewInternalPort", internal.port().to_string()),
                ("NewInternalClient", internal.ip().to_string()),
                ("NewEnabled", "1".into()),
                ("NewPortMappingDescription", DESCRIPTION.into()),
                ("NewLeaseDuration", lease_secs.to_string()),
            ],
        )?;
        wire::parse_soap_answer(status, &body, "AddPortMapping")?;
        Ok(())
    }

    fn call(&self, action: &str, args: &[(&str, String)]) -> Result<(u16, Vec<u8>), UpnpFailure> {
        let (headers, body) = wire::soap_request(&self.service, action, args);
        http(&self.control, "POST", &headers, &body)
    }
}

/// Another external port to try after a conflict: spread over the
/// unprivileged range, deterministic in the first one.
fn other_port(port: u16, tries: u16) -> u16 {
    let spread = u32::from(port) + u32::from(tries) * 7919;
    (1024 + spread % (65535 - 1024)) as u16
}

/// Sends the M-SEARCH to the multicast group and to the gateway's `ssdp`
/// address, and
/// returns the description's address from the first answer that comes
/// from the gateway.
fn search(
    ssdp: SocketAddrV4,
    group: Option<SocketAddrV4>,
    stop: &dyn Fn() -> bool,
) -> Result<HttpUrl, UpnpFailure> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_multicast_ttl_v4(2)?;
    let request = wire::ssdp_search();
    let mut buf = [0u8; wire::MAX_SSDP_LEN];
    for wait in SEARCH_TRIES {
        if stop() {
            return Err(UpnpFailure::Stopped);
        }
        // The multicast send fails where no route carries multicast; the
        // unicast one still goes.
        if let Some(group) = group {
            let _ = socket.send_to(&request, group);
        }
        socket.send_to(&request, ssdp)?;
        let deadline = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            socket.set_read_timeout(Some(deadline - now))?;
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // An ICMP error from the unicast send: keep listening.
                Err(_) => continue,
            };
            if from.ip() != *ssdp.ip() {
                continue;
            }
            match wire::parse_ssdp_answer(&buf[..n]) {
                Ok(location) => return Ok(location),
                Err(e) => debug!("UPnP-IGD: skipped an SSDP answer: {e}"),
            }
        }
    }
    Err(UpnpFailure::NoAnswer)
}

/// One HTTP exchange with `url`'s server, within [`HTTP_DEADLINE`], the
/// response at most [`wire::MAX_HTTP_LEN`] bytes: its status and body.
fn http(
    url: &HttpUrl,
    method: &str,
    headers: &str,
    body: &str,
) -> Result<(u16, Vec<u8>), UpnpFailure> {
    let deadline = Instant::now() + HTTP_DEADLINE;
    let left = |deadline: Instant| {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut))
    };
    let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(url.addr), left(deadline)?)?;
    stream.set_write_timeout(Some(left(deadline)?))?;
    stream.write_all(&wire::http_request(method, url, headers, body))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(left(deadline)?))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if response.len() + n > wire::MAX_HTTP_LEN {
            return Err(UpnpFailure::TooLarge);
        }
        response.extend_from_slice(&buf[..n]);
    }
    let (status, body) = wire::parse_http_response(&response)?;
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A fake gateway on 127.0.0.1: answers each M-SEARCH with `location`,
    /// and, first, has a host on 127.0.0.2 answer it with `forged`; serves
    /// `description` on HTTP. Returns its SSDP address.
    fn fake_gateway(
        location: impl Fn(SocketAddr) -> String + Send + 'static,
        forged: String,
        description: String,
    ) -> SocketAddrV4 {
        let ssdp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let attacker = UdpSocket::bind("127.0.0.2:0").unwrap();
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        let http_addr = http.local_addr().unwrap();
        let addr = match ssdp.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((_, from)) = ssdp.recv_from(&mut buf) {
                let answer = |l: &str| format!("HTTP/1.1 200 OK\r\nLOCATION: {l}\r\n\r\n");
                let _ = attacker.send_to(answer(&forged).as_bytes(), from);
                std::thread::sleep(Duration::from_millis(20));
                let _ = ssdp.send_to(answer(&location(http_addr)).as_bytes(), from);
            }
        });
        std::thread::spawn(move || {
            while let Ok((mut s, _)) = http.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{description}",
                    description.len()
                );
            }
        });
        addr
    }

    fn description(control: &str) -> String {
        format!(
            "<root><device><serviceList><service>\
             <serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>\
             <controlURL>{control}</controlURL></service></serviceList></device></root>"
        )
    }

    /// Another host on the LAN answers the search first, naming itself:
    /// ignored, the gateway's own answer is taken.
    #[test]
    fn ssdp_answers_from_other_hosts_are_ignored() {
        let ssdp = fake_gateway(
            |http| format!("http://{http}/rootDesc.xml"),
            "http://127.0.0.2:80/evil.xml".into(),
            description("/ctl"),
        );
        let igd = Igd::find_at(ssdp, None, &|| false).unwrap();
        assert_eq!(igd.control.addr.ip(), ssdp.ip());
        assert_eq!(igd.control.path, "/ctl");
    }

    /// The gateway itself cannot send us to another host: neither its
    /// description's address nor its control URL may name one.
    #[test]
    fn urls_naming_another_host_are_refused() {
        let ssdp = fake_gateway(
            |_| "http://127.0.0.3:80/rootDesc.xml".into(),
            "garbage".into(),
            description("/ctl"),
        );
        assert!(matches!(
            Igd::find_at(ssdp, None, &|| false),
            Err(UpnpFailure::ElsewhereUrl(a)) if a.ip() == &Ipv4Addr::new(127, 0, 0, 3)
        ));
        let ssdp = fake_gateway(
            |http| format!("http://{http}/rootDesc.xml"),
            "garbage".into(),
            description("http://127.0.0.3:80/ctl"),
        );
        assert!(matches!(
            Igd::find_at(ssdp, None, &|| false),
            Err(UpnpFailure::ElsewhereUrl(a)) if a.ip() == &Ipv4Addr::new(127, 0, 0, 3)
        ));
    }

    /// A gateway that sends more than the cap is cut off with an error,
    /// and one that never finishes its response is given up on at the
    /// deadline (the read does not wait for ever).
    #[test]
    fn flooding_and_stalling_servers_end_the_exchange() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = match listener.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let server = std::thread::spawn(move || {
            // The flood.
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
            let chunk = [b'x'; 4096];
            while s.write_all(&chunk).is_ok() {}
            // The stall: a head, then nothing until the client leaves.
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n");
            let mut sink = [0u8; 64];
            while s.read(&mut sink).is_ok_and(|n| n > 0) {}
        });
        let url = HttpUrl {
            addr,
            path: "/".into(),
        };
        assert!(matches!(
            http(&url, "GET", "", ""),
            Err(UpnpFailure::TooLarge)
        ));
        let started = Instant::now();
        assert!(http(&url, "GET", "", "").is_err());
        assert!(started.elapsed() < HTTP_DEADLINE + Duration::from_secs(1));
        server.join().unwrap();
    }
}
