//! A minimal UPnP-IGD gateway for the NAT tests, the third protocol of
//! [`PortMappingServer`](super::PortMappingServer) (which keeps the leases
//! and installs the real nftables rules): it answers SSDP M-SEARCHes
//! (multicast to 239.255.255.250:1900, or sent to it) with the address of
//! its device description, serves that description over HTTP on port 5000,
//! and implements the WANIPConnection:1 actions GetExternalIPAddress,
//! AddPortMapping, GetSpecificPortMappingEntry, DeletePortMapping (UDP
//! only; as miniupnpd's secure mode, a host may map only to itself) and
//! GetStatusInfo (always connected).
//!
//! Its parsing is its own (a few string searches, enough for the requests
//! of our client and of `upnpc`, which checks it as an independent client
//! in `nat.rs`), not the client's in srudp-async.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::port_mapping_server::Server;

/// The HTTP port of the description and of the control URL.
pub const HTTP_PORT: u16 = 5000;
const SSDP_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
const IGD: &str = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
const SERVICE: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";

/// The server's sockets, bound in the router's namespace.
pub struct UpnpSockets {
    lan: Ipv4Addr,
    ssdp: UdpSocket,
    http: TcpListener,
}

impl UpnpSockets {
    pub fn bind(lan: Ipv4Addr) -> io::Result<UpnpSockets> {
        let ssdp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 1900))?;
        ssdp.join_multicast_v4(&SSDP_GROUP, &lan)?;
        ssdp.set_read_timeout(Some(Duration::from_millis(50)))?;
        let http = TcpListener::bind((lan, HTTP_PORT))?;
        http.set_nonblocking(true)?;
        Ok(UpnpSockets { lan, ssdp, http })
    }
}

/// Serves until `stop`; `permanent_only` refuses leases other than 0.
pub fn serve(server: &Server, sockets: &UpnpSockets, permanent_only: bool, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        server.expire();
        if let Ok((n, from)) = sockets.ssdp.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            let wanted = text.starts_with("M-SEARCH")
                && (text.contains(IGD)
                    || text.contains("ssdp:all")
                    || text.contains("upnp:rootdevice"));
            if wanted {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\nST: {IGD}\r\n\
                     USN: uuid:00000000-0000-0000-0000-000000000001::{IGD}\r\n\
                     SERVER: Linux UPnP/1.1 srudp-test/1\r\n\
                     LOCATION: http://{}:{HTTP_PORT}/rootDesc.xml\r\n\r\n",
                    sockets.lan
                );
                let _ = sockets.ssdp.send_to(answer.as_bytes(), from);
            }
        }
        if let Ok((stream, from)) = sockets.http.accept() {
            let _ = handle(server, stream, from, permanent_only);
        }
    }
}

fn handle(
    server: &Server,
    mut stream: TcpStream,
    from: SocketAddr,
    permanent_only: bool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let request = read_request(&mut stream)?;
    let IpAddr::V4(client) = from.ip() else {
        return Ok(());
    };
    let (status, body) = if request.starts_with("GET /rootDesc.xml ") {
        (200, description())
    } else if request.starts_with("POST /ctl/IPConn ") {
        let action = request
            .split_once(&format!("{SERVICE}#"))
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
            .unwrap_or("");
        match soap(server, client, action, &request, permanent_only) {
            Ok(out) => (
                200,
                envelope(&format!(
                    "<u:{action}Response xmlns:u=\"{SERVICE}\">{out}</u:{action}Response>"
                )),
            ),
            Err(code) => (
                500,
                envelope(&format!(
                    "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>\
                 <detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\">\
                 <errorCode>{code}</errorCode><errorDescription>error {code}</errorDescription>\
                 </UPnPError></detail></s:Fault>"
                )),
            ),
        }
    } else {
        (404, String::new())
    };
    let reason = if status == 200 { "OK" } else { "Error" };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The request's head and body (as far as its Content-Length says).
fn read_request(stream: &mut TcpStream) -> io::Result<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 || data.len() > 64 * 1024 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if text.len() >= end + 4 + length {
                break;
            }
        }
    }
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// The value of argument `name` in a SOAP request.
fn arg<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = request.find(&open)? + open.len();
    let len = request[start..].find(&format!("</{name}>"))?;
    Some(request[start..start + len].trim())
}

/// Runs `action`: its out arguments, or a UPnP error code.
fn soap(
    server: &Server,
    client: Ipv4Addr,
    action: &str,
    request: &str,
    permanent_only: bool,
) -> Result<String, u16> {
    let external_port = || -> Result<u16, u16> {
        arg(request, "NewExternalPort")
            .and_then(|p| p.parse().ok())
            .ok_or(402)
    };
    let udp = || -> Result<(), u16> {
        match arg(request, "NewProtocol") {
            Some(p) if p.eq_ignore_ascii_case("udp") => Ok(()),
            _ => Err(402),
        }
    };
    match action {
        // upnpc asks whether the IGD is connected before using it.
        "GetStatusInfo" => Ok("<NewConnectionStatus>Connected</NewConnectionStatus>\
             <NewLastConnectionError>ERROR_NONE</NewLastConnectionError><NewUptime>1</NewUptime>"
            .into()),
        "GetExternalIPAddress" => Ok(format!(
            "<NewExternalIPAddress>{}</NewExternalIPAddress>",
            server.wan
        )),
        "AddPortMapping" => {
            udp()?;
            let external = external_port()?;
            let internal: u16 = arg(request, "NewInternalPort")
                .and_then(|p| p.parse().ok())
                .ok_or(402u16)?;
            let host: Ipv4Addr = arg(request, "NewInternalClient")
                .and_then(|p| p.parse().ok())
                .ok_or(402u16)?;
            let lease: u32 = arg(request, "NewLeaseDuration")
                .and_then(|p| p.parse().ok())
                .ok_or(402u16)?;
            if host != client {
                return Err(718); // secure mode: only to oneself
            }
            if permanent_only && lease != 0 {
                return Err(725);
            }
            let lifetime = if lease == 0 {
                0
            } else {
                lease.min(server.max_lifetime)
            };
            let to = SocketAddr::from((host, internal));
            let owner = server
                .leases
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.external_port == external)
                .map(|l| l.client);
            if owner.is_some_and(|o| o != to) || external == 0 {
                return Err(718);
            }
            // A host's other mapping (another external port) is replaced.
            server.remove(|l| l.client == to && l.external_port != external);
            match server.grant(to, external, lifetime, "upnp", [0; 12]) {
                Some(p) if p == external => Ok(String::new()),
                _ => Err(501),
            }
        }
        "GetSpecificPortMappingEntry" => {
            udp()?;
            let external = external_port()?;
            let leases = server.leases.lock().unwrap();
            let l = leases
                .iter()
                .find(|l| l.external_port == external)
                .ok_or(714u16)?;
            Ok(format!(
                "<NewInternalPort>{}</NewInternalPort><NewInternalClient>{}</NewInternalClient>\
                 <NewEnabled>1</NewEnabled><NewPortMappingDescription>srudp-test</NewPortMappingDescription>\
                 <NewLeaseDuration>{}</NewLeaseDuration>",
                l.client.port(),
                l.client.ip(),
                l.lifetime
            ))
        }
        "DeletePortMapping" => {
            udp()?;
            let external = external_port()?;
            let mine = server
                .leases
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.external_port == external && l.client.ip() == IpAddr::V4(client));
            if !mine {
                return Err(714); // NoSuchEntryInArray
            }
            server.remove(|l| l.external_port == external);
            Ok(String::new())
        }
        _ => Err(401), // Invalid Action
    }
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>{body}</s:Body></s:Envelope>\r\n"
    )
}

/// The device description: an InternetGatewayDevice:1 whose
/// WANConnectionDevice has one WANIPConnection:1 service.
fn description() -> String {
    let device = |kind: &str, inner: &str| {
        format!(
            "<device><deviceType>urn:schemas-upnp-org:device:{kind}:1</deviceType>\
             <friendlyName>{kind}</friendlyName><manufacturer>srudp tests</manufacturer>\
             <modelName>{kind}</modelName><UDN>uuid:00000000-0000-0000-0000-00000000000{}</UDN>\
             {inner}</device>",
            kind.len() % 10
        )
    };
    let service = format!(
        "<serviceList><service><serviceType>{SERVICE}</serviceType>\
         <serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>\
         <controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL>\
         <SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>"
    );
    let connection = device("WANConnectionDevice", &service);
    // upnpc takes a device for an IGD only with this service.
    let common = "<serviceList><service>\
         <serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>\
         <serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>\
         <controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL>\
         <SCPDURL>/WANCfg.xml</SCPDURL></service></serviceList>";
    let wan = device(
        "WANDevice",
        &format!("{common}<deviceList>{connection}</deviceList>"),
    );
    let igd = device(
        "InternetGatewayDevice",
        &format!("<deviceList>{wan}</deviceList>"),
    );
    format!(
        "<?xml version=\"1.0\"?>\r\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\">\
         <specVersion><major>1</major><minor>0</minor></specVersion>{igd}</root>\r\n"
    )
}
