//! Steady-state bulk transfer allocates nothing per packet.
//!
//! This test binary installs a counting global allocator (its own binary, so
//! no other test is affected), joins two endpoints in memory with a virtual
//! clock, warms a bulk transfer up until the windows have stopped growing,
//! and then counts allocation calls over a window of many packets. Buffers
//! reserved during warm-up (send and receive buffers, sent-packet records,
//! range sets) are reused afterwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::MAX_DATAGRAM_SIZE;
use srudp_proto::{
    ConnectionHandle, Endpoint, EndpointConfig, Event, Keypair, Rng, TransportConfig,
};

struct CountingAlloc;

static CALLS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to `System`; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: our caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: our caller's contract is `System.alloc_zeroed`'s.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: our caller's contract is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn endpoint(seed: u64, transport: &Arc<TransportConfig>) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed);
    config.transport = transport.clone();
    Endpoint::new(config).unwrap()
}

struct Pair {
    a: Endpoint,
    b: Endpoint,
    ha: ConnectionHandle,
    hb: Option<ConnectionHandle>,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    now: Instant,
    datagram: Vec<u8>,
    read_buf: Vec<u8>,
    chunk: Vec<u8>,
    /// Data packets that crossed from `a` to `b`.
    packets: u64,
    delivered: u64,
}

impl Pair {
    fn new() -> Pair {
        let transport = Arc::new(TransportConfig::default());
        let mut a = endpoint(1, &transport);
        let b = endpoint(2, &transport);
        let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
            "192.0.2.1:1".parse().unwrap(),
            "192.0.2.2:2".parse().unwrap(),
        );
        let now = Instant::now();
        let ha = a.connect(now, b.public_key(), &[b_addr]).unwrap();
        Pair {
            a,
            b,
            ha,
            hb: None,
            a_addr,
            b_addr,
            now,
            datagram: vec![0; MAX_DATAGRAM_SIZE],
            read_buf: vec![0; 256 * 1024],
            chunk: vec![0x5a; 64 * 1024],
            packets: 0,
            delivered: 0,
        }
    }

    /// One round: write, carry datagrams both ways (a 1 ms path: the
    /// clock advances 1 ms per round), read, drain events.
    fn round(&mut self) {
        while matches!(self.a.write(self.ha, &self.chunk), Ok(n) if n > 0) {}
        let now = self.now;
        for ep in [&mut self.a, &mut self.b] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        while let Some(t) = self.a.poll_transmit(now, &mut self.datagram) {
            self.b
                .handle_datagram(now, self.a_addr, &self.datagram[..t.size]);
            self.packets += 1;
        }
        while let Some(t) = self.b.poll_transmit(now, &mut self.datagram) {
            self.a
                .handle_datagram(now, self.b_addr, &self.datagram[..t.size]);
        }
        while let Some((h, e)) = self.b.poll_event() {
            if matches!(e, Event::Connected { .. }) {
                self.hb = Some(h);
            }
        }
        while self.a.poll_event().is_some() {}
        if let Some(hb) = self.hb {
            while let Ok(n) = self.b.read(hb, &mut self.read_buf) {
                if n == 0 {
                    break;
                }
                self.delivered += n as u64;
            }
        }
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_millis(1));
        self.now = next.clamp(now, now + Duration::from_millis(1));
        if self.now == now {
            self.now += Duration::from_micros(100);
        }
    }
}

/// Packets (about 1 KiB of stream data each) before counting starts.
const WARM_UP_PACKETS: u64 = 20_000;
/// Packets over which allocations are counted.
const MEASURED_PACKETS: u64 = 20_000;
/// Bound on every loop.
const MAX_ROUNDS: u64 = 1_000_000;

#[test]
fn steady_state_bulk_transfer_allocates_nothing_per_packet() {
    let mut pair = Pair::new();
    // Warm up: handshake, slow start, windows and buffers at full size.
    for _ in 0..MAX_ROUNDS {
        if pair.packets >= WARM_UP_PACKETS {
            break;
        }
        pair.round();
    }
    assert!(pair.hb.is_some(), "the handshake completed");
    assert!(
        pair.delivered > 8 << 20,
        "bulk data flows during warm-up: {} bytes, {} packets",
        pair.delivered,
        pair.packets
    );
    let (packets0, calls0) = (pair.packets, CALLS.load(Relaxed));
    for _ in 0..MAX_ROUNDS {
        if pair.packets - packets0 >= MEASURED_PACKETS {
            break;
        }
        pair.round();
    }
    let packets = pair.packets - packets0;
    let calls = CALLS.load(Relaxed) - calls0;
    println!("{calls} allocation calls over {packets} data packets");
    assert!(
        packets >= MEASURED_PACKETS,
        "a window of many packets: {packets}"
    );
    // The run is deterministic (fixed seeds, virtual clock): not one
    // allocation once the buffers have reached their working size.
    assert_eq!(calls, 0, "{calls} allocation calls over {packets} packets");
}
