//! The fuzz targets' seed corpora: every committed seed runs through its
//! target in `cargo test`, and `write_fuzz_seeds` (ignored; run it with
//! `cargo test -p srudp-proto --lib --all-features write_fuzz_seeds -- --ignored`)
//! regenerates them from datagrams the simulator carried.

use std::path::PathBuf;
use std::time::Duration;

use super::endpoint_target::{ConnectedPair, SERVER};
use super::*;
use crate::sim::{Captured, LinkConfig};
use crate::wire::{FrameIter, MAX_DATAGRAM_SIZE};

/// A fuzz target's body.
type Target = fn(&[u8]);

/// Every target with a seed corpus, and its body.
const TARGETS: [(&str, Target); 7] = [
    ("packet_parser", packet),
    ("frame_parser", frames),
    ("endpoint", endpoint),
    ("reassembler", reassembler),
    ("rendezvous", rendezvous),
    ("ticket", ticket),
    ("stream_carrier", stream_carrier),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn every_committed_seed_runs_clean_through_its_target() {
    for (target, run) in TARGETS {
        let mut seeds: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
            .unwrap_or_else(|e| panic!("{target}: no corpus: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("seed-"))
            })
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 4, "{target}: only {} seeds", seeds.len());
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            run(&data);
        }
    }
}

/// The Data packets of the pair from capture `from` on, with the plaintext
/// their receiver reads from each; client-to-server only, or both ways.
fn data_packets(p: &mut ConnectedPair, from: usize, both_ways: bool) -> Vec<(Captured, Vec<u8>)> {
    let captured: Vec<Captured> = p.captured()[from..].to_vec();
    captured
        .into_iter()
        .filter(|c| c.payload[1] == 3 && (both_ways || c.to == SERVER))
        .filter_map(|c| {
            let plain = if c.to == SERVER {
                p.sim
                    .endpoint(p.server)
                    .open_from_peer(p.server_handle, &c.payload)?
            } else {
                p.sim
                    .endpoint(p.client)
                    .open_from_peer(p.client_handle, &c.payload)?
            };
            Some((c, plain))
        })
        .collect()
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand to regenerate the seeds"]
fn write_fuzz_seeds() {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();

    // A pair that handshakes and moves data; a lossy, reordering link for
    // the reassembler's frame order.
    let mut p = ConnectedPair::new();
    let handshake = p.captured().to_vec();
    let after_handshake = handshake.len();
    p.write(20_000);
    p.run(Duration::from_secs(2));
    let packets = data_packets(&mut p, after_handshake, false);
    assert!(packets.len() > 10);
    // Both ways, from the handshake's confirmation to a graceful close.
    let mut closing = ConnectedPair::new();
    closing.write(3000);
    let (c, s) = (closing.client, closing.server);
    let (hc, hs) = (closing.client_handle, closing.server_handle);
    closing.sim.endpoint(c).finish(hc).unwrap();
    closing.sim.endpoint(s).finish(hs).unwrap();
    closing.run(Duration::from_secs(5));
    assert!(closing.sim.endpoint(c).is_closed(hc));
    let mut all_frames = data_packets(&mut closing, 0, true);
    all_frames.extend(data_packets(&mut p, 0, true));

    // packet_parser: the handshake datagrams and data packets of every size.
    let mut seen = std::collections::BTreeSet::new();
    for c in p.captured() {
        if seen.insert((c.payload[1], c.payload.len() / 100)) {
            seeds.push((
                "packet_parser",
                format!("{}-{}", c.payload[1], c.payload.len()),
                c.payload.clone(),
            ));
        }
    }
    seeds.push(("packet_parser", "cookie-reply".into(), cookie_reply()));
    let (knock, knock_reply) = knock_and_reply();
    seeds.push(("packet_parser", "knock".into(), knock));
    seeds.push(("packet_parser", "knock-reply".into(), knock_reply));

    // frame_parser: the plaintexts of real packets.
    let mut seen = std::collections::BTreeSet::new();
    for (_, plain) in &all_frames {
        let kinds: Vec<u8> = FrameIter::new(plain)
            .flatten()
            .map(|f| match f {
                crate::wire::Frame::Padding { .. } => 0,
                crate::wire::Frame::Ping => 1,
                crate::wire::Frame::Ack(_) => 2,
                crate::wire::Frame::Stream(s) => 3 + u8::from(s.fin),
                crate::wire::Frame::MaxData(_) => 5,
                crate::wire::Frame::Close(_) => 6,
                crate::wire::Frame::PathChallenge(_) => 7,
                crate::wire::Frame::PathResponse(_) => 8,
                crate::wire::Frame::AckFrequency(_) => 9,
            })
            .collect();
        if seen.insert(kinds.clone()) {
            let name: String = kinds.iter().map(|k| k.to_string()).collect();
            seeds.push(("frame_parser", format!("frames-{name}"), plain.clone()));
        }
    }

    // reassembler: the STREAM frames of a lossy transfer, in sending order
    // (retransmissions included) and reversed, with reads between.
    let stream_frames = lossy_stream_frames();
    for (name, reverse, limits) in [
        ("sent", false, [40, 40, 20, 0]),
        ("reversed", true, [40, 40, 20, 0]),
        ("sent-tight-limits", false, [8, 2, 0, 0]),
        ("reversed-tight-limits", true, [8, 2, 0, 0]),
    ] {
        let mut frames = stream_frames.clone();
        if reverse {
            frames.reverse();
        }
        let mut input = limits.to_vec();
        for (i, (offset, len, fin)) in frames.iter().enumerate() {
            let offset = u16::try_from(*offset).expect("a small transfer");
            input.push(if *fin { 2 } else { 0 });
            input.extend_from_slice(&offset.to_be_bytes());
            input.extend_from_slice(&(*len as u16).to_be_bytes());
            if i % 3 == 2 {
                input.extend_from_slice(&[1, 0, 0, 0x0f, 0xa0]);
            }
        }
        seeds.push(("reassembler", name.into(), input));
    }

    // stream_carrier: the pair's datagrams framed as on a TCP path (first
    // byte: the chunking), whole, cut mid-frame, and with malformed lengths.
    let framed = |datagrams: &mut dyn Iterator<Item = &[u8]>| {
        let mut out = Vec::new();
        for d in datagrams {
            crate::stream_carrier::encode_stream_frame(d, &mut out).unwrap();
        }
        out
    };
    let carried = framed(&mut p.captured().iter().take(16).map(|c| &c.payload[..]));
    let mut whole = vec![3];
    whole.extend_from_slice(&carried);
    let mut bytewise = vec![0];
    bytewise.extend_from_slice(&carried[..carried.len().min(3000)]);
    let mut largest = vec![200];
    largest.extend(framed(
        &mut [[1u8; MAX_DATAGRAM_SIZE]; 3].iter().map(|d| &d[..]),
    ));
    let mut zero = vec![5];
    zero.extend(framed(&mut [&b"ok"[..]].into_iter()));
    zero.extend_from_slice(&[0, 0]);
    zero.extend(framed(&mut [&b"after"[..]].into_iter()));
    let mut oversized = vec![9];
    oversized.extend(framed(&mut [&b"ok"[..]].into_iter()));
    oversized.extend_from_slice(&[0x04, 0xb1]);
    oversized.extend_from_slice(&[0; 1201]);
    let mut cut = vec![1];
    cut.extend(framed(&mut [&[b'a'; 50][..]].into_iter()));
    cut.extend_from_slice(&framed(&mut [&[b'b'; 100][..]].into_iter())[..40]);
    for (name, data) in [
        ("real-datagrams", whole),
        ("real-datagrams-bytewise", bytewise),
        ("largest-frames", largest),
        ("zero-length", zero),
        ("oversized", oversized),
        ("cut-mid-frame", cut),
    ] {
        seeds.push(("stream_carrier", name.into(), data));
    }

    // endpoint: the same timeline as the pair above, then replays of its
    // real packets, from its address and from strangers; its plaintexts
    // sealed again; its handshake replayed; and the server's packets fed
    // back to the client.
    let prefix = [EndpointOp::Write(206), EndpointOp::Wait(200)];
    let encode = |ops: &[EndpointOp]| {
        let mut out = Vec::new();
        for op in prefix.iter().chain(ops) {
            op.encode(&mut out);
        }
        out
    };
    let replays: Vec<EndpointOp> = packets
        .iter()
        .take(12)
        .map(|(c, _)| EndpointOp::ToServer(0, c.payload.clone()))
        .collect();
    let strangers: Vec<EndpointOp> = packets
        .iter()
        .take(12)
        .enumerate()
        .map(|(i, (c, _))| EndpointOp::ToServer((1 + i * 37 % 250) as u8, c.payload.clone()))
        .collect();
    let sealed: Vec<EndpointOp> = packets
        .iter()
        .take(12)
        .enumerate()
        .map(|(i, (_, plain))| EndpointOp::Sealed(if i % 4 == 3 { 9 } else { 0 }, plain.clone()))
        .collect();
    let mut handshake_ops = Vec::new();
    for c in &handshake {
        for src in [0, 3, 200] {
            if c.to == SERVER {
                handshake_ops.push(EndpointOp::ToServer(src, c.payload.clone()));
            } else {
                handshake_ops.push(EndpointOp::ToClient(c.payload.clone()));
            }
        }
        handshake_ops.push(EndpointOp::Wait(1));
    }
    let to_client: Vec<EndpointOp> = p
        .captured()
        .iter()
        .filter(|c| c.to != SERVER)
        .take(12)
        .map(|c| EndpointOp::ToClient(c.payload.clone()))
        .collect();
    seeds.push((
        "endpoint",
        "transfer".into(),
        encode(&[EndpointOp::Write(100), EndpointOp::Wait(100)]),
    ));
    seeds.push(("endpoint", "replays".into(), encode(&replays)));
    seeds.push(("endpoint", "strangers".into(), encode(&strangers)));
    seeds.push(("endpoint", "sealed".into(), encode(&sealed)));
    seeds.push(("endpoint", "handshake".into(), encode(&handshake_ops)));
    seeds.push(("endpoint", "to-client".into(), encode(&to_client)));

    for (target, name, data) in seeds {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

/// A CookieReply a responder that always demands cookies sent.
fn cookie_reply() -> Vec<u8> {
    use crate::config::CookieMode;
    use crate::Endpoint;
    let mut rng = crate::Rng::from_seed(3);
    let mut server = crate::EndpointConfig::new(crate::Keypair::generate(&mut rng));
    server.rng_seed = Some(4);
    server.cookie_mode = CookieMode::Always;
    let mut server = Endpoint::new(server).unwrap();
    let mut client = crate::EndpointConfig::new(crate::Keypair::generate(&mut rng));
    client.rng_seed = Some(5);
    let mut client = Endpoint::new(client).unwrap();
    let now = std::time::Instant::now();
    client.connect(now, server.public_key(), &[SERVER]).unwrap();
    let mut buf = [0u8; 1200];
    let t = client.poll_transmit(now, &mut buf).unwrap();
    server.handle_datagram(now, super::endpoint_target::CLIENT, &buf[..t.size]);
    let t = server.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(buf[1], 4);
    buf[..t.size].to_vec()
}

/// A Knock toward an introduced candidate and the KnockReply its
/// responder sent back (spec §4.4).
fn knock_and_reply() -> (Vec<u8>, Vec<u8>) {
    use crate::Endpoint;
    let mut rng = crate::Rng::from_seed(6);
    let mut server = crate::EndpointConfig::new(crate::Keypair::generate(&mut rng));
    server.rng_seed = Some(7);
    let mut server = Endpoint::new(server).unwrap();
    let mut client = crate::EndpointConfig::new(crate::Keypair::generate(&mut rng));
    client.rng_seed = Some(8);
    let mut client = Endpoint::new(client).unwrap();
    let now = std::time::Instant::now();
    let options = crate::ConnectOptions::new(server.public_key(), vec![SERVER]);
    client.connect_introduced(now, options, now).unwrap();
    let mut buf = [0u8; 1200];
    let t = client.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(buf[1], 7);
    let knock = buf[..t.size].to_vec();
    server.handle_datagram(now, super::endpoint_target::CLIENT, &knock);
    let t = server.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(buf[1], 8);
    (knock, buf[..t.size].to_vec())
}

/// The STREAM frames (offset, length, fin) a client sent over a lossy,
/// reordering link while moving 30 000 bytes.
fn lossy_stream_frames() -> Vec<(u64, usize, bool)> {
    let mut p = ConnectedPair::new();
    let link = LinkConfig::ideal()
        .with_latency(Duration::from_millis(5))
        .with_loss_rate(0.1)
        .with_reorder(0.2, Duration::from_millis(3));
    for ip in [super::endpoint_target::CLIENT.ip(), SERVER.ip()] {
        let host = p.sim.network.host_by_ip(ip).unwrap();
        p.sim.network.set_link(host, link.clone()).unwrap();
    }
    let from = p.captured().len();
    p.write(30_000);
    p.run(Duration::from_secs(10));
    data_packets(&mut p, from, false)
        .iter()
        .flat_map(|(_, plain)| {
            FrameIter::new(plain)
                .flatten()
                .filter_map(|f| match f {
                    crate::wire::Frame::Stream(s) => Some((s.offset, s.data.len(), s.fin)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
