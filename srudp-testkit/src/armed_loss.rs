//! A UDP relay on loopback that loses exactly the datagrams a test asks it
//! to: for showing that a side's closing state answers a peer whose first
//! CLOSE was lost (spec §6.6).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Between a near side (whoever sends to [`addr`](ArmedLossRelay::addr)
/// first) and `peer`. Once [`arm`](ArmedLossRelay::arm)ed with `n`, it
/// drops everything the near side sends until it has forwarded `n` more
/// datagrams from the peer after the first loss: the near side's
/// acknowledgments and its first CLOSE are lost, and the peer's
/// retransmissions reach it. What the peer sends before the near side sends
/// anything (its data, a path MTU probe) does not count toward `n`.
/// [`drop_next`](ArmedLossRelay::drop_next) loses a number of the near
/// side's datagrams instead, whatever the peer sends.
#[derive(Debug)]
pub struct ArmedLossRelay {
    addr: SocketAddr,
    armed: Arc<AtomicU32>,
    lost_since_armed: Arc<AtomicBool>,
    to_drop: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ArmedLossRelay {
    /// Starts relaying to `peer`; nothing is lost until armed.
    pub fn start(peer: SocketAddr) -> ArmedLossRelay {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let armed = Arc::new(AtomicU32::new(0));
        let lost_since_armed = Arc::new(AtomicBool::new(false));
        let to_drop = Arc::new(AtomicU32::new(0));
        let dropped = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, l, t, d, s) = (
            armed.clone(),
            lost_since_armed.clone(),
            to_drop.clone(),
            dropped.clone(),
            stop.clone(),
        );
        let thread = thread::spawn(move || {
            let mut near = None;
            let mut buf = [0u8; 2048];
            // Bounded: ends when the relay is dropped.
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if from == peer {
                    if let Some(near) = near {
                        let _ = socket.send_to(&buf[..n], near);
                        if l.load(Ordering::SeqCst) {
                            let _ = a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                                v.checked_sub(1)
                            });
                        }
                    }
                } else {
                    near = Some(from);
                    let counted = t
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                        .is_ok();
                    let armed_loss = a.load(Ordering::SeqCst) > 0;
                    if armed_loss {
                        l.store(true, Ordering::SeqCst);
                    }
                    if counted || armed_loss {
                        d.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let _ = socket.send_to(&buf[..n], peer);
                    }
                }
            }
        });
        ArmedLossRelay {
            addr,
            armed,
            lost_since_armed,
            to_drop,
            dropped,
            stop,
            thread: Some(thread),
        }
    }

    /// Where the near side sends.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Loses what the near side sends until `n` datagrams of the peer
    /// went through after the first one lost.
    pub fn arm(&self, n: u32) {
        self.lost_since_armed.store(false, Ordering::SeqCst);
        self.armed.store(n, Ordering::SeqCst);
    }

    /// Loses the next `n` datagrams the near side sends.
    pub fn drop_next(&self, n: u32) {
        self.to_drop.store(n, Ordering::SeqCst);
    }

    /// Datagrams of the near side lost so far.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for ArmedLossRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
