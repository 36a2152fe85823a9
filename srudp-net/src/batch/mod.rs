//! Batched UDP IO: many datagrams per system call, for every adapter's driver.
//!
//! A driver queues the datagrams srudp-proto produces in an [`Outbox`] and
//! hands it to [`UdpBatch::send`], which gives each *run* of queued datagrams
//! — same destination, same size, the last one possibly shorter — to the
//! kernel in one call as UDP GSO segments where the OS offers segmentation
//! offload (Linux ≥ 4.18), and one datagram per call where it does not.
//! [`UdpBatch::receive`] fills an [`Inbox`] with as many datagrams as one
//! call returns (`recvmmsg` on Linux); with UDP GRO (Linux) one receive
//! buffer may hold many datagrams from one source, which
//! [`Inbox::datagrams`] splits again. The platform work is `quinn-udp`'s.
//!
//! Both functions take the socket by reference and never block: they work
//! on any non-blocking UDP socket a runtime wraps (tokio, mio, async-io,
//! plain `std`), through [`quinn_udp::UdpSockRef`]. Waiting for readiness
//! stays the runtime's business: both report [`io::ErrorKind::WouldBlock`]
//! when the socket has nothing more to give or take, after any progress
//! they made (which the inbox and outbox keep).
//!
//! **Every receive on a socket with a [`UdpBatch`] must go through
//! [`UdpBatch::receive`]**: creating it turns on `UDP_GRO` on Linux, and a
//! plain `recv_from` into a datagram-sized buffer would cut coalesced
//! datagrams short.
//!
//! Side effects of [`UdpBatch::new`] on the socket (quinn-udp's): it is made
//! non-blocking, packet-info and ECN reporting are on, and IP fragmentation
//! is off (`IP_PMTUDISC_PROBE`, `DF` set). srudp's base datagrams (at most
//! 1200 bytes of payload, relayed or not) fit every IPv6 path (1280-byte
//! minimum MTU); an IPv4 path with an MTU below 1228 bytes, which would have
//! fragmented them, now drops them, as it would QUIC's. `DF` is also what
//! path MTU discovery (spec §6.9) needs: a probe larger than the path
//! carries is dropped, not fragmented, so only sizes that really pass are
//! used for Data packets (up to 1472 bytes).

mod inbox;
mod outbox;
#[cfg(test)]
mod tests;

use std::io;

use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};
use tracing::{debug, trace};

pub use inbox::Inbox;
pub use outbox::{Outbox, MAX_DATAGRAM};

/// A UDP socket the batch functions can use: any socket type that lends its
/// OS handle (`std`, tokio, mio, async-io's `Async<UdpSocket>` all do). It
/// must be non-blocking ([`UdpBatch::new`] makes it so).
#[cfg(unix)]
pub trait AsUdpSocket: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> AsUdpSocket for T {}
/// A UDP socket the batch functions can use: any socket type that lends its
/// OS handle (`std`, tokio, mio, async-io's `Async<UdpSocket>` all do). It
/// must be non-blocking ([`UdpBatch::new`] makes it so).
#[cfg(windows)]
pub trait AsUdpSocket: std::os::windows::io::AsSocket {}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> AsUdpSocket for T {}

/// The largest UDP payload one segmented send may carry: an IPv4 packet's
/// 65 535 bytes less the IPv4 and UDP headers (IPv6 allows a little more).
const MAX_SEGMENTED_PAYLOAD: usize = u16::MAX as usize - 20 - 8;

/// A UDP socket's batching state: what the OS offers (segmentation and
/// receive offload, multi-message receive) and quinn-udp's view of it.
/// One per socket, created once; then every send and receive on the
/// socket goes through it.
#[derive(Debug)]
pub struct UdpBatch {
    state: UdpSocketState,
    /// Offload allowed (off in [`UdpBatch::without_offload`]).
    offload: bool,
}

impl UdpBatch {
    /// Prepares `socket` for batched IO with every offload the OS offers.
    pub fn new<S: AsUdpSocket>(socket: &S) -> io::Result<UdpBatch> {
        Ok(UdpBatch {
            state: UdpSocketState::new(UdpSockRef::from(socket))?,
            offload: true,
        })
    }

    /// Like [`UdpBatch::new`], but one datagram per send and per receive
    /// buffer: segmentation offload is never used and receive offload is
    /// switched off again. For systems whose offload misbehaves, and to
    /// test the fallback path on systems that have it.
    pub fn without_offload<S: AsUdpSocket>(socket: &S) -> io::Result<UdpBatch> {
        let state = UdpSocketState::new(UdpSockRef::from(socket))?;
        disable_receive_offload(socket)?;
        Ok(UdpBatch {
            state,
            offload: false,
        })
    }

    /// Datagrams one send may carry: 1 without segmentation offload (or once
    /// a segmented send has failed for a reason that points at the offload).
    pub fn max_segments(&self) -> usize {
        if self.offload {
            self.state.max_gso_segments().max(1)
        } else {
            1
        }
    }

    /// Datagrams the kernel may coalesce into one receive buffer: 1 without
    /// receive offload.
    pub fn max_coalesced(&self) -> usize {
        if self.offload {
            self.state.gro_segments().max(1)
        } else {
            1
        }
    }

    /// Receives into `inbox`'s free buffers with one call. Returns the
    /// number of buffers filled (each holds one or more datagrams, see
    /// [`Inbox::datagrams`]); 0 when the inbox was already full.
    ///
    /// Errors are the socket's: [`io::ErrorKind::WouldBlock`] when nothing
    /// is waiting; on some systems an ICMP error for an earlier send
    /// (`ConnectionReset`, `ConnectionRefused`), which is no failure of the
    /// socket. What to do about others is the caller's decision.
    pub fn receive<S: AsUdpSocket>(&self, socket: &S, inbox: &mut Inbox) -> io::Result<usize> {
        inbox.receive_with(|bufs, meta| self.state.recv(UdpSockRef::from(socket), bufs, meta))
    }

    /// Sends what is left in `outbox`, in order, run by run (see the module
    /// docs); the outbox is empty afterwards unless this returns an error.
    ///
    /// The only error is [`io::ErrorKind::WouldBlock`]: the socket's buffer
    /// is full, and the datagrams not sent yet stay queued for the next
    /// call. Any other failure loses the datagrams concerned, which the
    /// protocol recovers from like any loss: an unreachable destination
    /// (ICMP errors, no route) never affects datagrams to other
    /// destinations. A segmented send that fails is retried one datagram
    /// per call (quinn-udp also turns segmentation offload off for good
    /// when the failure points at the offload, `EIO`/`EINVAL`).
    pub fn send<S: AsUdpSocket>(&self, socket: &S, outbox: &mut Outbox) -> io::Result<()> {
        while let Some(run) = outbox.next_run(self.max_segments(), MAX_SEGMENTED_PAYLOAD) {
            let (to, datagrams) = (run.destination, run.datagrams);
            let transmit = Transmit {
                destination: to,
                ecn: None,
                contents: run.contents,
                segment_size: (datagrams > 1).then_some(run.segment_size),
                src_ip: None,
            };
            let sent = match run.hop_limit {
                None => self.state.try_send(UdpSockRef::from(socket), &transmit),
                Some(hops) => with_hop_limit(socket, to, hops, || {
                    self.state.try_send(UdpSockRef::from(socket), &transmit)
                }),
            };
            match sent {
                Ok(()) => outbox.mark_sent(datagrams),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) if datagrams > 1 => {
                    debug!(%to, datagrams, "segmented send failed ({e}); sending these one by one");
                    outbox.send_unsegmented(datagrams);
                }
                Err(e) => {
                    trace!(%to, "datagram lost, send failed: {e}");
                    outbox.mark_sent(1);
                }
            }
        }
        Ok(())
    }
}

/// Runs `send` with the socket's hop limit toward `to` set to `hops`, then
/// restores it: IPv4 TTL (`IP_TTL`) for an IPv4 socket; unicast hop limit
/// (`IPV6_UNICAST_HOPS`) for an IPv6 one, and also `IP_TTL` when `to` is an
/// IPv4-mapped address (Linux sends those as IPv4). A socket that refuses the
/// option sends with its own hop limit: the datagram is not lost for it.
fn with_hop_limit<S: AsUdpSocket>(
    socket: &S,
    to: std::net::SocketAddr,
    hops: u8,
    send: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let sock = socket2::SockRef::from(socket);
    let hops = u32::from(hops);
    let v6 = matches!(sock.local_addr().map(|a| a.is_ipv6()), Ok(true));
    let mapped_v4 = match to {
        std::net::SocketAddr::V4(_) => true,
        std::net::SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    let old_v6 = if v6 {
        sock.unicast_hops_v6()
            .ok()
            .filter(|_| sock.set_unicast_hops_v6(hops).is_ok())
    } else {
        None
    };
    let old_v4 = if !v6 || mapped_v4 {
        sock.ttl_v4().ok().filter(|_| sock.set_ttl_v4(hops).is_ok())
    } else {
        None
    };
    let sent = send();
    if let Some(old) = old_v6 {
        let _ = sock.set_unicast_hops_v6(old);
    }
    if let Some(old) = old_v4 {
        let _ = sock.set_ttl_v4(old);
    }
    sent
}

/// Switches receive offload off on `socket`: `UDP_GRO` on Linux. Windows
/// leaves its equivalent (URO) off unless asked; other systems have none.
fn disable_receive_offload<S: AsUdpSocket>(socket: &S) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let off: libc::c_int = 0;
        // SAFETY: `setsockopt` reads `size_of::<c_int>()` bytes from a
        // pointer to a live `c_int` on this stack frame, and the descriptor
        // is borrowed from a live socket for the duration of the call.
        // Tested by `tests::without_offload_a_segmented_burst_arrives_one_datagram_per_buffer`.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_fd().as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_GRO,
                (&off as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = socket;
    Ok(())
}
