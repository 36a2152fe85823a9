//! The rendezvous server's stream carrier on loopback (spec §12): a client
//! registers over TCP and gets its answers on its stream; a flood of idle
//! TCP connections from one address is held to its quota and closed at the
//! authentication deadline while others still get through, over TCP and
//! over UDP; a connection that breaks the framing is closed.
//!
//! The client here is the protocol's sans-IO `RendezvousClient` driven over
//! a TCP stream by a few lines of test code: what it sends to the server's
//! address travels framed on the stream, and what the stream carries is
//! handed to it as coming from the server's address.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use srudp_async::rendezvous::{CarrierTls, ServerConfig, StreamCarrierConfig, StreamCarrierStats};
use srudp_async::srudp_proto::rendezvous::{ClientConfig, ClientEvent, RendezvousClient};
use srudp_async::srudp_proto::stream_carrier::{encode_stream_frame, StreamFrameDecoder};
use srudp_async::srudp_proto::{Endpoint, MAX_DATAGRAM_SIZE};
use srudp_async::{EndpointConfig, Keypair, RendezvousServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Longest any step may take before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn start_server(carrier: StreamCarrierConfig) -> RendezvousServer {
    let mut config = EndpointConfig::new(Keypair::generate_from_os());
    config.rng_seed = Some(1);
    RendezvousServer::bind_with_stream_carrier(
        SocketAddr::new(loopback(1), 0),
        config,
        ServerConfig::default(),
        None,
        carrier,
    )
    .unwrap()
}

fn client(server: &RendezvousServer) -> (RendezvousClient, Keypair) {
    let keypair = Keypair::generate_from_os();
    let endpoint = Endpoint::new(EndpointConfig::new(keypair.clone())).unwrap();
    let mut config = ClientConfig::new(server.public_key(), server.local_addr());
    config.detect_nat = false;
    (
        RendezvousClient::new(Instant::now(), endpoint, config).unwrap(),
        keypair,
    )
}

/// A TCP connection to the server's stream carrier from `ip`.
async fn connect_from(ip: IpAddr, server: &RendezvousServer) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(server.tcp_addr().unwrap()).await
}

/// Drives `client` over `tcp` until it is registered; its observed address.
async fn register_over_tcp(
    client: &mut RendezvousClient,
    server_addr: SocketAddr,
    tcp: &mut TcpStream,
) -> SocketAddr {
    let mut decoder = StreamFrameDecoder::new();
    let mut out = [0u8; MAX_DATAGRAM_SIZE];
    let mut read = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + WAIT;
    loop {
        let now = Instant::now();
        assert!(now < deadline, "not registered over TCP within {WAIT:?}");
        let mut frames = Vec::new();
        while let Some(t) = client.poll_transmit(now, &mut out) {
            assert_eq!(t.destination, server_addr, "only the server is talked to");
            encode_stream_frame(&out[..t.size], &mut frames).unwrap();
        }
        tcp.write_all(&frames).await.unwrap();
        while let Some(event) = client.poll_event() {
            if let ClientEvent::Registered { observed } = event {
                return observed;
            }
        }
        let wake = client
            .poll_timeout()
            .unwrap_or(now + WAIT)
            .min(now + Duration::from_millis(200));
        tokio::select! {
            n = tcp.read(&mut read) => {
                let n = n.unwrap();
                assert!(n > 0, "the server closed the stream");
                let mut rest = &read[..n];
                while let Some(datagram) = decoder.decode(&mut rest).unwrap() {
                    client.handle_datagram(Instant::now(), server_addr, datagram);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => client.handle_timeout(Instant::now()),
        }
    }
}

/// Drives `client` over a UDP socket until it is registered.
async fn register_over_udp(client: &mut RendezvousClient, server_addr: SocketAddr) {
    let udp = UdpSocket::bind(SocketAddr::new(loopback(4), 0))
        .await
        .unwrap();
    let mut out = [0u8; MAX_DATAGRAM_SIZE];
    let mut read = [0u8; 2048];
    let deadline = Instant::now() + WAIT;
    loop {
        let now = Instant::now();
        assert!(now < deadline, "not registered over UDP within {WAIT:?}");
        while let Some(t) = client.poll_transmit(now, &mut out) {
            assert_eq!(t.destination, server_addr, "only the server is talked to");
            udp.send_to(&out[..t.size], t.destination).await.unwrap();
        }
        while let Some(event) = client.poll_event() {
            if let ClientEvent::Registered { .. } = event {
                return;
            }
        }
        let wake = client
            .poll_timeout()
            .unwrap_or(now + WAIT)
            .min(now + Duration::from_millis(200));
        tokio::select! {
            r = udp.recv_from(&mut read) => {
                let (n, from) = r.unwrap();
                client.handle_datagram(Instant::now(), from, &read[..n]);
            }
            _ = tokio::time::sleep_until(wake.into()) => client.handle_timeout(Instant::now()),
        }
    }
}

fn stats(server: &RendezvousServer) -> StreamCarrierStats {
    server.stream_carrier_stats().expect("a stream carrier")
}

/// Waits until `cond` holds, polling; fails the test after [`WAIT`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the server closed `tcp`: it reads end of stream (or a reset)
/// within [`WAIT`].
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registers_over_tcp_and_the_server_answers_on_its_stream() {
    let server = start_server(StreamCarrierConfig::new(0));
    let (mut client, keypair) = client(&server);
    let mut tcp = connect_from(loopback(2), &server).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let observed = register_over_tcp(&mut client, server.local_addr(), &mut tcp).await;
    assert_eq!(
        observed, local,
        "the server observes the TCP connection's address"
    );
    assert_eq!(server.registered_address(&keypair.public()), Some(local));
    assert_eq!(stats(&server).open, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_tcp_connections_from_one_address_is_held_to_its_quota_and_others_get_through(
) {
    let mut carrier = StreamCarrierConfig::new(0);
    carrier.max_connections_per_source = 8;
    carrier.auth_timeout = Duration::from_millis(500);
    let server = start_server(carrier);

    // 200 connections from 127.0.0.3 that never send a byte.
    let mut flood = Vec::new();
    for _ in 0..200 {
        match connect_from(loopback(3), &server).await {
            Ok(tcp) => flood.push(tcp),
            Err(e) => panic!("connecting: {e}"),
        }
    }
    eventually("the server takes in the whole flood", || {
        let s = stats(&server);
        s.open as u64 + s.refused + s.unauthenticated == 200
    })
    .await;
    let s = stats(&server);
    assert!(
        s.open as u64 + s.unauthenticated <= 8,
        "at most 8 admitted from one source: {s:?}"
    );
    assert!(s.refused >= 192, "{s:?}");

    // Another address registers over TCP, and a UDP client registers too.
    let (mut tcp_client, tcp_key) = client(&server);
    let mut tcp = connect_from(loopback(2), &server).await.unwrap();
    register_over_tcp(&mut tcp_client, server.local_addr(), &mut tcp).await;
    let (mut udp_client, udp_key) = client(&server);
    register_over_udp(&mut udp_client, server.local_addr()).await;
    assert!(server.registered_address(&tcp_key.public()).is_some());
    assert!(server.registered_address(&udp_key.public()).is_some());

    // Every flood connection is closed: at once over the quota, at the
    // authentication deadline within it. The authenticated one stays.
    for (i, tcp) in flood.iter_mut().enumerate() {
        assert!(
            closed_by_server(tcp).await,
            "flood connection {i} still open"
        );
    }
    eventually("only the authenticated connection is left", || {
        stats(&server).open == 1
    })
    .await;
    assert!(stats(&server).unauthenticated >= 8);
    assert_eq!(
        server.registered_address(&tcp_key.public()),
        Some(tcp.local_addr().unwrap())
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_a_partial_frame_and_stalls_is_closed_at_the_deadline() {
    let mut carrier = StreamCarrierConfig::new(0);
    carrier.auth_timeout = Duration::from_millis(300);
    let server = start_server(carrier);
    let mut tcp = connect_from(loopback(2), &server).await.unwrap();
    // A length announcing 1200 bytes, then 10 of them, then nothing.
    tcp.write_all(&[0x04, 0xb0]).await.unwrap();
    tcp.write_all(&[1; 10]).await.unwrap();
    assert!(closed_by_server(&mut tcp).await);
    eventually("the path is gone", || stats(&server).open == 0).await;
    assert_eq!(stats(&server).unauthenticated, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_or_oversized_frame_length_closes_the_connection_at_once() {
    // A deadline far away: only the framing error closes these.
    let mut carrier = StreamCarrierConfig::new(0);
    carrier.auth_timeout = Duration::from_secs(3600);
    let server = start_server(carrier);
    for bad in [[0x00, 0x00], [0x05, 0xc1], [0xff, 0xff]] {
        let mut tcp = connect_from(loopback(2), &server).await.unwrap();
        tcp.write_all(&bad).await.unwrap();
        assert!(closed_by_server(&mut tcp).await, "{bad:02x?}");
    }
    eventually("the paths are gone", || stats(&server).open == 0).await;
    assert_eq!(stats(&server).unauthenticated, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_stream_carrier_has_no_tcp_address() {
    let server = RendezvousServer::bind(
        SocketAddr::new(loopback(1), 0),
        EndpointConfig::new(Keypair::generate_from_os()),
        ServerConfig::default(),
        None,
    )
    .unwrap();
    assert_eq!(server.tcp_addr(), None);
    assert_eq!(server.stream_carrier_stats(), None);
    let mut no_connections = StreamCarrierConfig::new(0);
    no_connections.max_connections = 0;
    let invalid = RendezvousServer::bind_with_stream_carrier(
        SocketAddr::new(loopback(1), 0),
        EndpointConfig::new(Keypair::generate_from_os()),
        ServerConfig::default(),
        None,
        no_connections,
    );
    assert_eq!(invalid.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

/// How a test peer reaches the world: a UDP socket, or only a TCP stream to
/// the server (its network blocks UDP: datagrams to anyone but the server
/// are lost).
enum Transport {
    Udp(UdpSocket),
    Tcp {
        tcp: TcpStream,
        decoder: StreamFrameDecoder,
    },
}

/// A sans-IO rendezvous client on a transport, stepped by the test.
struct Peer {
    client: RendezvousClient,
    server_addr: SocketAddr,
    transport: Transport,
    events: Vec<ClientEvent>,
}

impl Peer {
    /// Sends what the client owes, then waits (at most 20 ms) for input or
    /// its next timeout and handles it. Events pile up in `events`.
    async fn step(&mut self) {
        let now = Instant::now();
        let mut out = [0u8; MAX_DATAGRAM_SIZE];
        let mut frames = Vec::new();
        while let Some(t) = self.client.poll_transmit(now, &mut out) {
            match &self.transport {
                Transport::Udp(udp) => {
                    let _ = udp.send_to(&out[..t.size], t.destination).await;
                }
                Transport::Tcp { .. } if t.destination == self.server_addr => {
                    encode_stream_frame(&out[..t.size], &mut frames).unwrap();
                }
                Transport::Tcp { .. } => {} // UDP is blocked
            }
        }
        if let Transport::Tcp { tcp, .. } = &mut self.transport {
            tcp.write_all(&frames).await.unwrap();
        }
        while let Some(event) = self.client.poll_event() {
            self.events.push(event);
        }
        let wake = self
            .client
            .poll_timeout()
            .unwrap_or(now + WAIT)
            .min(now + Duration::from_millis(20));
        let mut read = vec![0u8; 64 * 1024];
        let server_addr = self.server_addr;
        match &mut self.transport {
            Transport::Udp(udp) => tokio::select! {
                r = udp.recv_from(&mut read) => {
                    let (n, from) = r.unwrap();
                    self.client.handle_datagram(Instant::now(), from, &read[..n]);
                }
                _ = tokio::time::sleep_until(wake.into()) => self.client.handle_timeout(Instant::now()),
            },
            Transport::Tcp { tcp, decoder } => tokio::select! {
                n = tcp.read(&mut read) => {
                    let n = n.unwrap();
                    assert!(n > 0, "the server closed the stream");
                    let mut rest = &read[..n];
                    while let Some(datagram) = decoder.decode(&mut rest).unwrap() {
                        self.client.handle_datagram(Instant::now(), server_addr, datagram);
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => self.client.handle_timeout(Instant::now()),
            },
        }
    }

    /// Steps until an event matches `pick`; fails after [`WAIT`].
    async fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&ClientEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = self.events.iter().find_map(&mut pick) {
                return found;
            }
            assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
            self.step().await;
        }
    }
}

fn registered(e: &ClientEvent) -> Option<()> {
    matches!(e, ClientEvent::Registered { .. }).then_some(())
}

fn peer_connected(
    e: &ClientEvent,
) -> Option<(
    srudp_async::srudp_proto::ConnectionHandle,
    srudp_async::PathKind,
)> {
    match e {
        ClientEvent::PeerConnected { handle, path, .. } => Some((*handle, *path)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_udp_is_blocked_reaches_a_udp_peer_through_the_relay_on_its_stream() {
    let server = std::sync::Arc::new(start_server(StreamCarrierConfig::new(0)));
    let server_addr = server.local_addr();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();

    // Bob: TCP only.
    let (bob_client, bob_keys) = client(&server);
    let bob_tcp = connect_from(loopback(2), &server).await.unwrap();
    let mut bob = Peer {
        client: bob_client,
        server_addr,
        transport: Transport::Tcp {
            tcp: bob_tcp,
            decoder: StreamFrameDecoder::new(),
        },
        events: Vec::new(),
    };
    let expected = payload.len();
    let bob_task = tokio::spawn(async move {
        bob.until("bob registers over TCP", registered).await;
        let (handle, path) = bob.until("alice reaches bob", peer_connected).await;
        let mut got = Vec::new();
        let deadline = Instant::now() + 3 * WAIT;
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < expected {
            assert!(Instant::now() < deadline, "bob got {} bytes", got.len());
            while let Ok(n) = bob.client.endpoint_mut().read(handle, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            bob.step().await;
        }
        (got, path)
    });
    eventually("bob is registered", || {
        server.registered_address(&bob_keys.public()).is_some()
    })
    .await;

    // Alice: UDP.
    let (alice_client, _) = client(&server);
    let udp = UdpSocket::bind(SocketAddr::new(loopback(4), 0))
        .await
        .unwrap();
    let mut alice = Peer {
        client: alice_client,
        server_addr,
        transport: Transport::Udp(udp),
        events: Vec::new(),
    };
    alice.until("alice registers over UDP", registered).await;
    alice
        .client
        .connect_by_key(Instant::now(), bob_keys.public())
        .unwrap();
    let (handle, path) = alice.until("alice reaches bob", peer_connected).await;
    assert!(path.is_relayed(), "{path:?}: bob has no UDP");
    let mut sent = 0;
    let deadline = Instant::now() + 3 * WAIT;
    while !bob_task.is_finished() {
        assert!(Instant::now() < deadline, "alice sent {sent} bytes");
        if sent < payload.len() {
            sent += alice
                .client
                .endpoint_mut()
                .write(handle, &payload[sent..])
                .unwrap_or(0);
        }
        alice.step().await;
    }
    let (got, bob_path) = bob_task.await.unwrap();
    assert!(bob_path.is_relayed(), "{bob_path:?}");
    assert!(got == payload, "bob got the bytes alice sent, intact");
    assert!(server.relay_count() >= 1);
}

/// A client of `server` whose UDP toward the server goes nowhere: its
/// configuration names a UDP address nobody answers at (`silent`, kept
/// bound so nothing else takes it), and the server's real stream carrier.
fn udp_blocked_config(server: &RendezvousServer, silent: &std::net::UdpSocket) -> ClientConfig {
    let mut config = ClientConfig::new(server.public_key(), silent.local_addr().unwrap());
    config.detect_nat = false;
    config.stream_carrier = server.tcp_addr();
    config
}

/// An endpoint on loopback with the rendezvous `config`, once registered,
/// and the address the server saw it at.
async fn bind_and_register(config: ClientConfig) -> (srudp_async::Endpoint, SocketAddr) {
    let endpoint = srudp_async::Endpoint::bind_with_rendezvous(
        SocketAddr::new(loopback(2), 0),
        EndpointConfig::new(Keypair::generate_from_os()),
        config,
    )
    .unwrap();
    let observed = tokio::time::timeout(WAIT, endpoint.wait_registered())
        .await
        .expect("registered within the limit")
        .unwrap();
    (endpoint, observed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_whose_udp_goes_unanswered_registers_over_the_stream_carrier_after_the_delay() {
    let server = start_server(StreamCarrierConfig::new(0));
    let silent = std::net::UdpSocket::bind((loopback(9), 0)).unwrap();
    let config = udp_blocked_config(&server, &silent);
    let (endpoint, observed) = bind_and_register(config).await;
    assert_ne!(
        observed,
        endpoint.local_addr(),
        "seen at its TCP connection's address, not its UDP socket's"
    );
    assert_eq!(stats(&server).open, 1);
    assert_eq!(
        server.registered_address(&endpoint.public_key()),
        Some(observed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_whose_udp_is_answered_never_opens_the_stream_carrier() {
    let server = start_server(StreamCarrierConfig::new(0));
    let mut config = ClientConfig::new(server.public_key(), server.local_addr());
    config.detect_nat = false;
    config.stream_carrier = server.tcp_addr();
    let (endpoint, observed) = bind_and_register(config).await;
    assert_eq!(observed, endpoint.local_addr(), "over UDP");
    // Well past the fallback delay, the link is still on UDP alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = stats(&server);
    assert_eq!(s.open as u64 + s.refused + s.unauthenticated, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_reaches_its_server_only_on_the_stream_carrier_meets_a_udp_peer_and_moves_a_megabyte(
) {
    // On loopback only the way to the server is blocked: the peers may
    // punch through to each other directly, or meet on the relay (which
    // `a_peer_whose_udp_is_blocked_reaches_a_udp_peer_through_the_relay_on_its_stream`
    // forces); the bytes arrive either way.
    let server = start_server(StreamCarrierConfig::new(0));
    let silent = std::net::UdpSocket::bind((loopback(9), 0)).unwrap();
    let blocked = srudp_async::Endpoint::bind_with_rendezvous(
        SocketAddr::new(loopback(2), 0),
        EndpointConfig::new(Keypair::generate_from_os()),
        udp_blocked_config(&server, &silent),
    )
    .unwrap();
    let mut open = ClientConfig::new(server.public_key(), server.local_addr());
    open.detect_nat = false;
    let open = srudp_async::Endpoint::bind_with_rendezvous(
        SocketAddr::new(loopback(4), 0),
        EndpointConfig::new(Keypair::generate_from_os()),
        open,
    )
    .unwrap();
    for e in [&blocked, &open] {
        tokio::time::timeout(WAIT, e.wait_registered())
            .await
            .expect("registered within the limit")
            .unwrap();
    }
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i * 13 % 253) as u8).collect();
    let connecting = open.connect_by_key(blocked.public_key());
    let (mut incoming, _, _) = tokio::time::timeout(WAIT, blocked.accept())
        .await
        .expect("accepted within the limit")
        .unwrap();
    let mut outgoing = tokio::time::timeout(WAIT, connecting)
        .await
        .expect("connected within the limit")
        .unwrap();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        outgoing.write_all(&sent).await.unwrap();
        outgoing.shutdown().await.unwrap();
        outgoing
    });
    let mut got = Vec::new();
    tokio::time::timeout(3 * WAIT, incoming.read_to_end(&mut got))
        .await
        .expect("read within the limit")
        .unwrap();
    assert!(got == payload, "1 MB over the relay, intact");
    writer.await.unwrap();
}

/// A stream carrier that speaks TLS (spec §12.6), with a certificate made
/// now; `auth_timeout` long, so only TLS itself can close a connection
/// within a test's [`WAIT`].
fn tls_carrier() -> StreamCarrierConfig {
    let mut carrier = StreamCarrierConfig::new(0);
    carrier.tls = Some(CarrierTls::self_signed(&["rdv.example.org".into()]).unwrap());
    carrier.auth_timeout = Duration::from_secs(120);
    carrier
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_whose_udp_goes_unanswered_registers_over_a_tls_stream_carrier() {
    let server = start_server(tls_carrier());
    let silent = std::net::UdpSocket::bind((loopback(9), 0)).unwrap();
    let mut config = udp_blocked_config(&server, &silent);
    config.stream_transport.tls = true;
    config.stream_transport.host_name = Some("rdv.example.org".into());
    let (endpoint, observed) = bind_and_register(config).await;
    assert_ne!(observed, endpoint.local_addr(), "over the stream");
    assert_eq!(stats(&server).open, 1);
    assert_eq!(
        server.registered_address(&endpoint.public_key()),
        Some(observed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tcp_client_at_a_tls_port_is_closed_at_once() {
    let server = start_server(tls_carrier());
    let (mut client, _) = client(&server);
    let mut tcp = connect_from(loopback(2), &server).await.unwrap();
    // The client's first frame, as a plain-TCP client sends it.
    let mut out = [0u8; MAX_DATAGRAM_SIZE];
    let t = client.poll_transmit(Instant::now(), &mut out).unwrap();
    let mut frame = Vec::new();
    encode_stream_frame(&out[..t.size], &mut frame).unwrap();
    tcp.write_all(&frame).await.unwrap();
    assert!(
        closed_by_server(&mut tcp).await,
        "closed well before the 120 s authentication deadline"
    );
    eventually("the path is gone", || stats(&server).open == 0).await;
    assert_eq!(
        stats(&server).unauthenticated,
        0,
        "closed by TLS, not the sweep"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_at_a_plain_port_is_closed_at_once() {
    let mut carrier = StreamCarrierConfig::new(0);
    carrier.auth_timeout = Duration::from_secs(120);
    let server = start_server(carrier);
    let mut tcp = connect_from(loopback(2), &server).await.unwrap();
    // A TLS record header: handshake (0x16), TLS 1.0 (03 01), 245 bytes.
    // Read as a frame, 0x1603 is a length over 1200.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0xf5])
        .await
        .unwrap();
    assert!(closed_by_server(&mut tcp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_stalls_is_closed_at_the_authentication_deadline() {
    let mut carrier = tls_carrier();
    carrier.auth_timeout = Duration::from_millis(300);
    let server = start_server(carrier);
    let mut tcp = connect_from(loopback(2), &server).await.unwrap();
    // The start of a TLS record announcing a 512-byte ClientHello, then
    // nothing more: the handshake never ends on its own.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    assert!(closed_by_server(&mut tcp).await);
    eventually("the path is gone", || stats(&server).open == 0).await;
    assert_eq!(stats(&server).unauthenticated, 1, "closed by the deadline");
    server.shutdown().await;
}
