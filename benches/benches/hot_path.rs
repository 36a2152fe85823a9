//! Micro-benchmarks of srudp's per-packet work (criterion):
//!
//! ```text
//! cargo bench -p srudp-benches
//! ```
//!
//! * `packet/encode`, `packet/decode` — a Data header and one full STREAM
//!   frame (1024 bytes) written, and parsed back with its frames;
//! * `aead/seal_1024`, `aead/open_1024` — the default cipher srudp uses
//!   (snow's ChaCha20-Poly1305, stateless transport, ring's implementation)
//!   on one 1024-byte frame; `aead_aesgcm/…` the same with AES-256-GCM;
//! * `ack/emit_64_ranges`, `ack/parse_64_ranges` — an ACK frame carrying the
//!   most ranges the wire allows (every other packet of 128 missing);
//! * `reassembly/64_reversed` — 64 full packets delivered to a receiving
//!   endpoint in reverse order, then read by the application;
//! * `handshake/in_memory` — two endpoints created and connected in memory.
//!
//! `cargo test --workspace` does not run them (bench targets default to
//! `test = false`); `cargo test -p srudp-benches --benches` runs each once
//! as a smoke test (criterion's test mode).

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use srudp_benches::in_memory::{MemoryPair, A_ADDR};
use srudp_proto::range_set::RangeSet;
use srudp_proto::wire::{
    emit_ack, ConnectionId, DataHeader, Frame, FrameIter, Packet, Reader, StreamFrame, Writer,
    MAX_ACK_RANGES, MAX_DATAGRAM_SIZE,
};
use srudp_proto::{Cipher, TransportConfig};

fn packet(c: &mut Criterion) {
    let data = [0x5a_u8; 1024];
    let header = DataHeader {
        dcid: ConnectionId(0x1234_5678_9abc_def0),
        packet_number: 1_000_000,
    };
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    c.bench_function("packet/encode", |b| {
        b.iter(|| {
            let h = black_box(header).emit(&mut buf).unwrap();
            let mut w = Writer::new(&mut buf[h..]);
            StreamFrame {
                offset: black_box(123_456_789),
                fin: false,
                data: &data,
            }
            .emit(&mut w)
            .unwrap();
            h + w.len()
        })
    });
    let h = header.emit(&mut buf).unwrap();
    let mut w = Writer::new(&mut buf[h..]);
    StreamFrame {
        offset: 123_456_789,
        fin: false,
        data: &data,
    }
    .emit(&mut w)
    .unwrap();
    let len = h + w.len() + 16;
    c.bench_function("packet/decode", |b| {
        b.iter(|| {
            let Packet::Data(hdr, payload) = Packet::parse(black_box(&buf[..len])).unwrap() else {
                unreachable!("a data packet")
            };
            let plain = &payload[..payload.len() - 16];
            let mut frames = 0;
            for frame in FrameIter::new(plain) {
                if let Ok(Frame::Stream(s)) = frame {
                    frames += s.data.len();
                }
            }
            (hdr.packet_number, frames)
        })
    });
}

fn aead(c: &mut Criterion) {
    for (cipher, group) in [
        (Cipher::ChaChaPoly, "aead"),
        (Cipher::AesGcm, "aead_aesgcm"),
    ] {
        let (i, r) = srudp_benches::cipher::transport_pair(cipher);
        let plain = [0x5a_u8; 1024];
        let (mut sealed, mut opened) = ([0u8; 1040], [0u8; 1024]);
        c.bench_function(&format!("{group}/seal_1024"), |b| {
            b.iter(|| i.write_message(black_box(7), &plain, &mut sealed).unwrap())
        });
        let n = i.write_message(7, &plain, &mut sealed).unwrap();
        c.bench_function(&format!("{group}/open_1024"), |b| {
            b.iter(|| {
                r.read_message(7, black_box(&sealed[..n]), &mut opened)
                    .unwrap()
            })
        });
    }
}

fn ack(c: &mut Criterion) {
    let mut set = RangeSet::new();
    for k in 0..2 * MAX_ACK_RANGES as u64 {
        set.insert_one(1_000_000 + 2 * k);
    }
    let mut buf = [0u8; 1024];
    c.bench_function("ack/emit_64_ranges", |b| {
        b.iter(|| {
            let mut w = Writer::new(&mut buf);
            emit_ack(&mut w, black_box(&set), 250, MAX_ACK_RANGES).unwrap();
            w.len()
        })
    });
    let mut w = Writer::new(&mut buf);
    emit_ack(&mut w, &set, 250, MAX_ACK_RANGES).unwrap();
    let len = w.len();
    c.bench_function("ack/parse_64_ranges", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&buf[..len]));
            let Ok(Frame::Ack(a)) = Frame::parse(&mut r) else {
                unreachable!("an ack frame")
            };
            let mut acked = RangeSet::new();
            for range in a.ranges() {
                acked.insert(*range.start()..*range.end() + 1);
            }
            acked.len()
        })
    });
}

fn reassembly(c: &mut Criterion) {
    let transport = TransportConfig {
        pacing: false,
        ..TransportConfig::default()
    };
    let mut pair = MemoryPair::connected(transport);
    let chunk = vec![0x5a_u8; 64 * 1024];
    // Grow the window so that 64 packets leave at once.
    pair.transfer(8 << 20, &chunk);
    let from = A_ADDR.parse().unwrap();
    let mut flight: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    c.bench_function("reassembly/64_reversed", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let now = Instant::now();
                pair.a.write(pair.ha, &chunk).unwrap();
                flight.clear();
                while flight.len() < 64 {
                    let Some(t) = pair.a.poll_transmit(now, &mut buf) else {
                        break;
                    };
                    flight.push(buf[..t.size].to_vec());
                }
                let start = Instant::now();
                for d in flight.iter().rev() {
                    pair.b.handle_datagram(now, from, d);
                }
                black_box(pair.read_b());
                spent += start.elapsed();
                pair.exchange(Instant::now());
                pair.drain_events();
                pair.read_b();
            }
            spent
        })
    });
}

fn handshake(c: &mut Criterion) {
    c.bench_function("handshake/in_memory", |b| {
        b.iter(|| MemoryPair::connected(TransportConfig::default()).hb)
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = packet, aead, ack, reassembly, handshake
}
criterion_main!(benches);
