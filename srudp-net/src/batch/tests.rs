//! Batch send and receive over loopback, with and without offload, and the
//! outbox's grouping of datagrams into runs.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::*;

fn loopback() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// Datagram `i` of a test: `len` bytes, numbered in its first two bytes.
fn datagram(i: usize, len: usize) -> Vec<u8> {
    let mut d = vec![(i % 251) as u8; len];
    d[..2].copy_from_slice(&(i as u16).to_be_bytes());
    d
}

fn queue(outbox: &mut Outbox, to: SocketAddr, contents: &[u8]) {
    let slot = outbox.free_slot().expect("room in the outbox");
    slot[..contents.len()].copy_from_slice(contents);
    outbox.push(to, contents.len());
}

/// What a receiver got: the datagrams with their sources, and how many
/// receive buffers they came in.
struct Received {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    buffers: usize,
}

/// Receives until `count` datagrams arrived. Bounded: loopback delivers
/// within microseconds; after 10 s of nothing more the test fails.
fn receive(batch: &UdpBatch, socket: &UdpSocket, count: usize) -> Received {
    let mut inbox = Inbox::new(batch, 32);
    let mut got = Received {
        datagrams: Vec::new(),
        buffers: 0,
    };
    let mut last_progress = Instant::now();
    while got.datagrams.len() < count {
        match batch.receive(socket, &mut inbox) {
            Ok(n) => {
                got.buffers += n;
                got.datagrams
                    .extend(inbox.datagrams().map(|(from, d)| (from, d.to_vec())));
                inbox.clear();
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    last_progress.elapsed() < Duration::from_secs(10),
                    "only {} of {count} datagrams arrived",
                    got.datagrams.len()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("receive failed: {e}"),
        }
    }
    got
}

fn assert_nothing_more(batch: &UdpBatch, socket: &UdpSocket) {
    let mut inbox = Inbox::new(batch, 4);
    let e = batch.receive(socket, &mut inbox).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
}

fn offload_available(sender: &UdpBatch, receiver: &UdpBatch) -> bool {
    sender.max_segments() > 1 && receiver.max_coalesced() > 1
}

#[test]
fn a_run_of_equal_datagrams_with_a_short_last_one_arrives_whole_and_in_order() {
    let (tx, rx) = (loopback(), loopback());
    let (sender, receiver) = (UdpBatch::new(&tx).unwrap(), UdpBatch::new(&rx).unwrap());
    let to = rx.local_addr().unwrap();
    let mut outbox = Outbox::new(64);
    let sent: Vec<Vec<u8>> = (0..40)
        .map(|i| datagram(i, 1200))
        .chain([datagram(40, 517)])
        .collect();
    for d in &sent {
        queue(&mut outbox, to, d);
    }
    sender.send(&tx, &mut outbox).unwrap();
    assert!(outbox.is_empty());

    let got = receive(&receiver, &rx, sent.len());
    let from = tx.local_addr().unwrap();
    assert!(got.datagrams.iter().all(|(f, _)| *f == from));
    let contents: Vec<Vec<u8>> = got.datagrams.into_iter().map(|(_, d)| d).collect();
    assert_eq!(contents, sent);
    if offload_available(&sender, &receiver) {
        // Sent as one segmented burst, received coalesced: split on receive.
        assert!(
            got.buffers < sent.len(),
            "{} buffers for {} datagrams: nothing was coalesced",
            got.buffers,
            sent.len()
        );
    } else {
        println!("no GSO/GRO here: checked the one-per-call path only");
    }
    assert_nothing_more(&receiver, &rx);
}

#[test]
fn datagrams_to_several_peers_each_reach_their_peer_in_order() {
    let (tx, a, b) = (loopback(), loopback(), loopback());
    let sender = UdpBatch::new(&tx).unwrap();
    let (batch_a, batch_b) = (UdpBatch::new(&a).unwrap(), UdpBatch::new(&b).unwrap());
    let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    // Interleaved destinations and sizes: runs of 3, 1, 2 (short last), 1...
    let plan: Vec<(SocketAddr, usize)> = vec![
        (to_a, 1200),
        (to_a, 1200),
        (to_a, 1200),
        (to_b, 1200),
        (to_a, 900),
        (to_a, 300),
        (to_b, 64),
        (to_b, 64),
        (to_b, 1200),
        (to_a, 1),
    ];
    let mut outbox = Outbox::new(plan.len());
    let mut expected_a = Vec::new();
    let mut expected_b = Vec::new();
    for (i, &(to, len)) in plan.iter().enumerate() {
        let d = datagram(i, len.max(2));
        queue(&mut outbox, to, &d);
        if to == to_a {
            expected_a.push(d);
        } else {
            expected_b.push(d);
        }
    }
    assert!(outbox.is_full());
    sender.send(&tx, &mut outbox).unwrap();
    assert!(outbox.is_empty());
    for (batch, socket, expected) in [(&batch_a, &a, expected_a), (&batch_b, &b, expected_b)] {
        let got = receive(batch, socket, expected.len());
        let contents: Vec<Vec<u8>> = got.datagrams.into_iter().map(|(_, d)| d).collect();
        assert_eq!(contents, expected);
        assert_nothing_more(batch, socket);
    }
}

#[test]
fn without_offload_a_segmented_burst_arrives_one_datagram_per_buffer() {
    let (tx, rx) = (loopback(), loopback());
    let sender = UdpBatch::new(&tx).unwrap();
    let receiver = UdpBatch::without_offload(&rx).unwrap();
    assert_eq!(receiver.max_coalesced(), 1);
    assert_eq!(receiver.max_segments(), 1);
    let to = rx.local_addr().unwrap();
    let sent: Vec<Vec<u8>> = (0..30)
        .map(|i| datagram(i, 1200))
        .chain([datagram(30, 2)])
        .collect();
    let mut outbox = Outbox::new(sent.len());
    for d in &sent {
        queue(&mut outbox, to, d);
    }
    sender.send(&tx, &mut outbox).unwrap();
    let got = receive(&receiver, &rx, sent.len());
    // The kernel split the burst for the socket without receive offload.
    assert_eq!(got.buffers, sent.len());
    let contents: Vec<Vec<u8>> = got.datagrams.into_iter().map(|(_, d)| d).collect();
    assert_eq!(contents, sent);
}

#[test]
fn without_offload_every_datagram_is_its_own_send_and_all_arrive() {
    let (tx, rx) = (loopback(), loopback());
    let sender = UdpBatch::without_offload(&tx).unwrap();
    let receiver = UdpBatch::new(&rx).unwrap();
    assert_eq!(sender.max_segments(), 1);
    let to = rx.local_addr().unwrap();
    let sent: Vec<Vec<u8>> = (0..20).map(|i| datagram(i, 1200)).collect();
    let mut outbox = Outbox::new(sent.len());
    for d in &sent {
        queue(&mut outbox, to, d);
    }
    // One datagram per call: never more than one in a run.
    assert_eq!(
        outbox
            .next_run(sender.max_segments(), MAX_SEGMENTED_PAYLOAD)
            .unwrap()
            .datagrams,
        1
    );
    sender.send(&tx, &mut outbox).unwrap();
    let got = receive(&receiver, &rx, sent.len());
    // Nothing to coalesce: the kernel only keeps segmented sends together.
    assert_eq!(got.buffers, sent.len());
    let contents: Vec<Vec<u8>> = got.datagrams.into_iter().map(|(_, d)| d).collect();
    assert_eq!(contents, sent);
}

#[test]
fn a_destination_the_socket_cannot_send_to_loses_only_its_own_datagrams() {
    let (tx, rx) = (loopback(), loopback());
    let (sender, receiver) = (UdpBatch::new(&tx).unwrap(), UdpBatch::new(&rx).unwrap());
    let to = rx.local_addr().unwrap();
    // An IPv6 destination on an IPv4 socket: every send to it fails
    // (EAFNOSUPPORT), segmented or not; nothing leaves the host.
    let unreachable: SocketAddr = "[::1]:9".parse().unwrap();
    let mut outbox = Outbox::new(16);
    let mut expected = Vec::new();
    for i in 0..12 {
        let d = datagram(i, 1200);
        if !(4..8).contains(&i) {
            queue(&mut outbox, unreachable, &d);
        } else {
            queue(&mut outbox, to, &d);
            expected.push(d);
        }
    }
    sender.send(&tx, &mut outbox).unwrap();
    assert!(
        outbox.is_empty(),
        "failed datagrams are dropped, not retried forever"
    );
    let got = receive(&receiver, &rx, expected.len());
    let contents: Vec<Vec<u8>> = got.datagrams.into_iter().map(|(_, d)| d).collect();
    assert_eq!(contents, expected);
    assert_nothing_more(&receiver, &rx);
}

#[test]
fn a_full_inbox_takes_nothing_more_until_cleared() {
    let (tx, rx) = (loopback(), loopback());
    let receiver = UdpBatch::without_offload(&rx).unwrap();
    let to = rx.local_addr().unwrap();
    for i in 0..3 {
        tx.send_to(&datagram(i, 100), to).unwrap();
    }
    let mut inbox = Inbox::new(&receiver, 2);
    let mut filled = 0;
    let started = Instant::now();
    while !inbox.is_full() {
        match receiver.receive(&rx, &mut inbox) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(started.elapsed() < Duration::from_secs(10));
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(filled, 2);
    assert_eq!(receiver.receive(&rx, &mut inbox).unwrap(), 0);
    assert_eq!(inbox.datagrams().count(), 2);
    inbox.clear();
    assert!(inbox.is_empty());
    let got = receive(&receiver, &rx, 1);
    assert_eq!(got.datagrams[0].1, datagram(2, 100));
}

#[test]
fn a_coalesced_buffer_is_split_at_its_stride_with_a_shorter_last_datagram() {
    let (_, rx) = ((), loopback());
    let batch = UdpBatch::new(&rx).unwrap();
    let mut inbox = Inbox::new(&batch, 4);
    let from: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
    inbox
        .receive_with(|bufs, meta| {
            let contents: Vec<u8> = (0..2900u32).map(|i| (i / 1200) as u8 + 1).collect();
            bufs[0][..contents.len()].copy_from_slice(&contents);
            meta[0] = quinn_udp::RecvMeta {
                addr: from,
                len: contents.len(),
                stride: 1200,
                ecn: None,
                dst_ip: None,
            };
            bufs[1][..5].copy_from_slice(b"alone");
            meta[1] = quinn_udp::RecvMeta {
                addr: from,
                len: 5,
                stride: 5,
                ecn: None,
                dst_ip: None,
            };
            Ok(2)
        })
        .unwrap();
    let got: Vec<(SocketAddr, Vec<u8>)> = inbox.datagrams().map(|(f, d)| (f, d.to_vec())).collect();
    let got_mut: Vec<(SocketAddr, Vec<u8>)> = inbox
        .datagrams_mut()
        .map(|(f, d)| (f, d.to_vec()))
        .collect();
    assert_eq!(got_mut, got, "the writable view splits alike");
    let canonical: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    assert_eq!(
        got,
        vec![
            (canonical, vec![1; 1200]),
            (canonical, vec![2; 1200]),
            (canonical, vec![3; 500]),
            (canonical, b"alone".to_vec()),
        ]
    );
    // What is written through the writable view is what the inbox holds.
    for (i, (_, d)) in inbox.datagrams_mut().enumerate() {
        d[0] = 0xa0 + i as u8;
    }
    let firsts: Vec<u8> = inbox.datagrams().map(|(_, d)| d[0]).collect();
    assert_eq!(firsts, vec![0xa0, 0xa1, 0xa2, 0xa3]);
}

/// The runs `next_run` forms from a plan of (destination, size), as
/// (destination, datagrams, segment size), sending each run as it comes.
fn runs(
    plan: &[(SocketAddr, usize)],
    max_segments: usize,
    max_bytes: usize,
) -> Vec<(SocketAddr, usize, usize)> {
    let mut outbox = Outbox::new(plan.len());
    for &(to, len) in plan {
        outbox.free_slot().unwrap();
        outbox.push(to, len);
    }
    let mut runs = Vec::new();
    while let Some(run) = outbox.next_run(max_segments, max_bytes) {
        assert_eq!(
            run.contents.len(),
            run.segment_size * (run.datagrams - 1)
                + plan[plan.len() - outbox.len() + run.datagrams - 1].1
        );
        let r = (run.destination, run.datagrams, run.segment_size);
        outbox.mark_sent(r.1);
        runs.push(r);
    }
    assert!(outbox.is_empty());
    runs
}

#[test]
fn runs_break_at_a_new_destination_a_larger_datagram_and_after_a_shorter_one() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
    let plan = [
        (a, 1200),
        (a, 1200),
        (a, 1000), // shorter: ends the run
        (a, 1000),
        (a, 1200), // larger: a new run
        (b, 1200), // new destination
        (b, 1200),
        (a, 1200),
    ];
    assert_eq!(
        runs(&plan, 64, MAX_SEGMENTED_PAYLOAD),
        vec![
            (a, 3, 1200),
            (a, 1, 1000),
            (a, 1, 1200),
            (b, 2, 1200),
            (a, 1, 1200)
        ]
    );
    // Without segmentation every datagram is its own run.
    assert_eq!(runs(&plan, 1, MAX_SEGMENTED_PAYLOAD).len(), plan.len());
}

#[test]
fn runs_respect_the_segment_and_byte_limits() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let plan = vec![(a, 1200); 64];
    // 54 × 1200 bytes is the most one segmented send can carry.
    assert_eq!(
        runs(&plan, 64, MAX_SEGMENTED_PAYLOAD),
        vec![(a, 54, 1200), (a, 10, 1200)]
    );
    assert_eq!(
        runs(&plan, 20, MAX_SEGMENTED_PAYLOAD),
        vec![(a, 20, 1200), (a, 20, 1200), (a, 20, 1200), (a, 4, 1200)]
    );
}

#[test]
fn a_failed_segmented_run_is_retried_one_datagram_at_a_time() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut outbox = Outbox::new(8);
    for _ in 0..5 {
        outbox.free_slot().unwrap();
        outbox.push(a, 1200);
    }
    assert_eq!(
        outbox
            .next_run(64, MAX_SEGMENTED_PAYLOAD)
            .unwrap()
            .datagrams,
        5
    );
    outbox.send_unsegmented(3);
    for _ in 0..3 {
        assert_eq!(
            outbox
                .next_run(64, MAX_SEGMENTED_PAYLOAD)
                .unwrap()
                .datagrams,
            1
        );
        outbox.mark_sent(1);
    }
    // Past the failed run, segmentation resumes.
    assert_eq!(
        outbox
            .next_run(64, MAX_SEGMENTED_PAYLOAD)
            .unwrap()
            .datagrams,
        2
    );
}

#[test]
fn a_full_outbox_offers_no_slot_and_empties_itself_once_sent() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut outbox = Outbox::new(2);
    assert_eq!(outbox.free_slot().unwrap().len(), MAX_DATAGRAM);
    outbox.push(a, 10);
    outbox.free_slot().unwrap();
    outbox.push(a, 10);
    assert!(outbox.is_full());
    assert!(outbox.free_slot().is_none());
    assert_eq!(outbox.len(), 2);
    outbox.mark_sent(2);
    assert!(outbox.is_empty() && !outbox.is_full());
    assert!(outbox.free_slot().is_some());
}

#[test]
fn a_dual_stack_socket_batches_to_ipv4_peers_and_sees_them_as_ipv4() {
    let Ok((tx, family)) = crate::socket::bind("[::]:0".parse().unwrap()) else {
        println!("skipped: IPv6 is not available here");
        return;
    };
    if family != crate::socket::Family::DualStack {
        println!("skipped: no dual-stack sockets here");
        return;
    }
    let rx = loopback();
    let (sender, receiver) = (UdpBatch::new(&tx).unwrap(), UdpBatch::new(&rx).unwrap());
    let to = family
        .destination(rx.local_addr().unwrap())
        .expect("dual stack reaches IPv4");
    let sent: Vec<Vec<u8>> = (0..12).map(|i| datagram(i, 1200)).collect();
    let mut outbox = Outbox::new(sent.len());
    for d in &sent {
        queue(&mut outbox, to, d);
    }
    sender.send(&tx, &mut outbox).unwrap();
    let got = receive(&receiver, &rx, sent.len());
    let contents: Vec<Vec<u8>> = got.datagrams.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(contents, sent);

    // And back: the dual-stack socket sees the IPv4 peer as IPv4.
    let mut outbox = Outbox::new(1);
    queue(&mut outbox, tx_port_on_ipv4(&tx), &datagram(99, 40));
    receiver.send(&rx, &mut outbox).unwrap();
    let got = receive(&sender, &tx, 1);
    assert_eq!(got.datagrams[0].0, rx.local_addr().unwrap());
    assert_eq!(got.datagrams[0].1, datagram(99, 40));
}

/// `socket`'s port on 127.0.0.1.
fn tx_port_on_ipv4(socket: &UdpSocket) -> SocketAddr {
    SocketAddr::new([127, 0, 0, 1].into(), socket.local_addr().unwrap().port())
}

/// Receives one datagram on `socket` (which reports hop limits: IP_RECVTTL
/// or IPV6_RECVHOPLIMIT) and returns the hop limit it arrived with.
/// Bounded: 10 s, then the test fails.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn received_hop_limit(socket: &socket2::Socket) -> u8 {
    use std::mem::MaybeUninit;
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut data = [MaybeUninit::<u8>::uninit(); 64];
    let mut control = [MaybeUninit::<u8>::uninit(); 128];
    let mut bufs = [socket2::MaybeUninitSlice::new(&mut data)];
    let mut msg = socket2::MsgHdrMut::new()
        .with_buffers(&mut bufs)
        .with_control(&mut control);
    socket.recvmsg(&mut msg, 0).expect("a datagram arrived");
    let len = msg.control_len();
    // SAFETY: the kernel initialised the first `control_len()` bytes of
    // the control buffer it filled.
    let control: Vec<u8> = control[..len]
        .iter()
        .map(|b| unsafe { b.assume_init() })
        .collect();
    // One cmsghdr: cmsg_len (usize), cmsg_level (i32), cmsg_type (i32),
    // then an int holding the hop limit.
    let header = std::mem::size_of::<usize>() + 8;
    let value = &control[header..header + 4];
    let hops = i32::from_ne_bytes(value.try_into().unwrap());
    u8::try_from(hops).unwrap()
}

/// Sets an int socket option for a test.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_int_option(socket: &socket2::Socket, level: libc::c_int, name: libc::c_int) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: `setsockopt` reads `size_of::<c_int>()` bytes from a pointer
    // to a live `c_int` on this stack frame; the descriptor belongs to a
    // live socket for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
}

/// Spec §4.4: an opening knock leaves with the hop limit its transmit asks
/// for, and the socket's own hop limit is back for the next datagram.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_datagram_with_a_hop_limit_leaves_with_it_and_the_next_one_without() {
    for (bind, family) in [
        ("127.0.0.1:0", socket2::Domain::IPV4),
        ("[::1]:0", socket2::Domain::IPV6),
    ] {
        let bind: SocketAddr = bind.parse().unwrap();
        let receiver =
            socket2::Socket::new(family, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
                .unwrap();
        if family == socket2::Domain::IPV4 {
            set_int_option(&receiver, libc::IPPROTO_IP, libc::IP_RECVTTL);
        } else {
            set_int_option(&receiver, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT);
        }
        receiver.bind(&bind.into()).unwrap();
        let to = receiver.local_addr().unwrap().as_socket().unwrap();
        let sender = UdpSocket::bind(bind).unwrap();
        let batch = UdpBatch::new(&sender).unwrap();
        let own = if family == socket2::Domain::IPV4 {
            socket2::SockRef::from(&sender).ttl_v4().unwrap()
        } else {
            socket2::SockRef::from(&sender).unicast_hops_v6().unwrap()
        };
        let mut outbox = Outbox::new(4);
        let slot = outbox.free_slot().unwrap();
        slot[..34].copy_from_slice(&datagram(0, 34));
        outbox.push_with_hop_limit(to, 34, Some(2));
        queue(&mut outbox, to, &datagram(1, 34));
        batch.send(&sender, &mut outbox).unwrap();
        assert!(outbox.is_empty());
        assert_eq!(
            received_hop_limit(&receiver),
            2,
            "{family:?}: the opening knock"
        );
        assert_eq!(
            u32::from(received_hop_limit(&receiver)),
            own,
            "{family:?}: the socket's own hop limit again"
        );
    }
}

#[test]
fn datagrams_with_different_hop_limits_never_share_a_run() {
    let to: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let mut outbox = Outbox::new(8);
    for hop_limit in [Some(2), Some(2), None, None] {
        let slot = outbox.free_slot().unwrap();
        slot[..100].fill(7);
        outbox.push_with_hop_limit(to, 100, hop_limit);
    }
    let run = outbox.next_run(64, 65_000).unwrap();
    assert_eq!((run.datagrams, run.hop_limit), (2, Some(2)));
    outbox.mark_sent(2);
    let run = outbox.next_run(64, 65_000).unwrap();
    assert_eq!((run.datagrams, run.hop_limit), (2, None));
}
