//! The transmit path of a connection (spec §4.4, §6): punch probes, cached
//! handshake responses, CLOSE packets and data packets built frame by frame
//! and sealed into the caller's buffer.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::trace;

use super::pacing::PacingRate;
use super::punch::Probe;
use super::send_stream::StreamChunks;
use super::stats::SendLimit;
use super::*;
use crate::crypto::cookie::InitiatorCookies;
use crate::wire::{
    Knock, Packet, MAC_LEN, MAX_RELAYED_INNER_SIZE, MAX_UDP_PAYLOAD_SIZE, MAX_UDP_PAYLOAD_SIZE_V6,
    RELAYED_HANDSHAKE_INIT_SIZE,
};

/// A PATH_CHALLENGE frame: its type and 8 bytes of data.
const PATH_CHALLENGE_FRAME_LEN: usize = 1 + 8;

/// Where a data packet's plaintext goes in the datagram buffer: right after
/// the header, with room for the tag after it, so it is sealed in place, and
/// no more than a datagram of `max_datagram` bytes holds. `None` if `buf` is
/// too small for even a header and a tag. A buffer smaller than
/// `max_datagram` gets a smaller datagram.
fn plaintext_area(buf: &mut [u8], max_datagram: usize) -> Option<&mut [u8]> {
    let end = max_datagram.min(buf.len()).checked_sub(TAG_LEN)?;
    buf.get_mut(DATA_HEADER_LEN..end)
}

/// Writes our HandshakeInit `init` (1200 bytes) into `buf` for `dest`,
/// re-padded to 1190 bytes and its `mac1` stamped again when it goes to our
/// relay, whose envelope adds 10 bytes (spec §11.5). Returns its length.
fn write_init(
    init: &[u8],
    relayed: bool,
    cookies: &InitiatorCookies,
    buf: &mut [u8],
) -> Option<usize> {
    if !relayed {
        buf.get_mut(..init.len())?.copy_from_slice(init);
        return Some(init.len());
    }
    let Ok(Packet::HandshakeInit(parsed)) = Packet::parse(init) else {
        return None;
    };
    let len = parsed.emit_sized(buf, RELAYED_HANDSHAKE_INIT_SIZE).ok()?;
    cookies.stamp_mac1(&mut buf[..len]);
    Some(len)
}

impl Connection {
    /// Writes the next datagram into `buf`, if there is one to send.
    /// Knocks toward candidates that have not answered are charged to
    /// `unanswered` (the endpoint's budget, spec §4.4), and those of a
    /// hard-NAT round to `hard_nat` (the endpoint's other budget).
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        unanswered: &mut UnansweredBudget,
        hard_nat: &mut UnansweredBudget,
    ) -> Option<Transmit> {
        self.last_now = self.last_now.max(now);
        match &mut self.state {
            State::Handshaking {
                init,
                punch,
                cookies,
                knock_keys,
                ..
            } => {
                let probe = punch.poll(now, &self.config, unanswered);
                self.timers.set(Timer::Punch, punch.next_at());
                let dest = match probe? {
                    Probe::Init(dest) => dest,
                    Probe::Knock {
                        to: dest,
                        token,
                        opening,
                    } => {
                        let knock = Knock {
                            sender_cid: self.local_cid,
                            token,
                            mac: [0; MAC_LEN],
                        };
                        let len = knock.emit(buf).ok()?;
                        knock_keys.stamp_knock(&mut buf[..len]);
                        self.stats.knocks_sent += 1;
                        self.stats.packets_sent += 1;
                        self.stats.bytes_sent += len as u64;
                        trace!(cid = %self.local_cid, %dest, opening, "knock");
                        return Some(Transmit {
                            destination: dest,
                            size: len,
                            hop_limit: if opening {
                                self.config.punch_opening_hop_limit
                            } else {
                                None
                            },
                            spare_sockets: 0,
                        });
                    }
                };
                let len = write_init(init, self.relay == Some(dest), cookies, buf)?;
                // mac2 from the cookie `dest` gave us, if any (spec §4.8).
                cookies.stamp(now, dest, &mut buf[..len]);
                self.stats.handshake_probes_sent += 1;
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len as u64;
                trace!(cid = %self.local_cid, %dest, "punch probe");
                Some(Transmit {
                    destination: dest,
                    size: len,
                    hop_limit: None,
                    spare_sockets: 0,
                })
            }
            State::Confirming {
                response,
                resend_to,
                nudges,
            } => {
                let Some(dest) = resend_to.take() else {
                    let dest = nudges.poll()?;
                    return self.build_nudge(now, buf, dest);
                };
                let len = response.len();
                buf.get_mut(..len)?.copy_from_slice(response);
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len as u64;
                Some(Transmit {
                    destination: dest,
                    size: len,
                    hop_limit: None,
                    spare_sockets: 0,
                })
            }
            State::Closing { send_close_to } => {
                let dest = send_close_to.take()?;
                self.build_close_packet(now, buf, dest)
            }
            State::Draining { answer_close } => {
                if !*answer_close {
                    return None;
                }
                *answer_close = false;
                let dest = self.path.remote;
                self.build_close_packet(now, buf, dest)
            }
            State::Closed => None,
            State::Established if self.sent.is_full() => {
                // Whatever the peer does, the record never holds more
                // (spec §10.3); ack-eliciting packets beyond it could not be
                // recorded, and the peer is not acknowledging them anyway.
                self.peer_stopped_acknowledging(now);
                self.poll_transmit(now, buf, unanswered, hard_nat)
            }
            State::Established => {
                if let Some(t) = self.poll_hard_nat(now, buf, hard_nat) {
                    return Some(t);
                }
                self.build_data_packet(now, buf, unanswered)
            }
        }
    }

    /// A Data packet holding one PING, from an unconfirmed responder (see
    /// `confirm_nudges.rs`); not recorded (nothing to retransmit). Within
    /// three times what the initiator's address sent us while it is not
    /// validated (spec §4.2).
    fn build_nudge(&mut self, now: Instant, buf: &mut [u8], dest: SocketAddr) -> Option<Transmit> {
        let size = (DATA_HEADER_LEN + 1 + TAG_LEN) as u64;
        if dest == self.path.remote
            && !self.path.validated
            && self.path.bytes_sent + size > 3 * self.path.bytes_received
        {
            return None;
        }
        trace!(cid = %self.local_cid, %dest, "nudging the initiator");
        self.single_frame_packet(now, buf, dest, Frame::Ping, false)
    }

    /// A Data packet to `dest` holding `frame` alone; `record`: kept in the
    /// sent-packet record and in flight (an ack-eliciting packet we would
    /// retransmit or time out), else sent and forgotten.
    fn single_frame_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        dest: SocketAddr,
        frame: Frame<'_>,
        record: bool,
    ) -> Option<Transmit> {
        let mut w = Writer::new(plaintext_area(buf, self.max_datagram_to(dest))?);
        frame.emit(&mut w).ok()?;
        let len = w.len();
        self.seal_and_record(
            now,
            dest,
            buf,
            len,
            record,
            StreamChunks::default(),
            false,
            false,
        )
    }

    fn build_close_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        dest: SocketAddr,
    ) -> Option<Transmit> {
        let (code, reason) = self.close_frame.clone()?;
        let mut w = Writer::new(plaintext_area(buf, self.max_datagram_to(dest))?);
        if self.received.ack_pending() {
            let delay = self.received.on_ack_sent(now);
            crate::wire::emit_ack(&mut w, self.received.ranges(), delay.as_micros() as u64, 32)
                .ok()?;
        }
        CloseFrame {
            code,
            reason: &reason,
        }
        .emit(&mut w)
        .ok()?;
        let len = w.len();
        self.seal_and_record(
            now,
            dest,
            buf,
            len,
            false,
            StreamChunks::default(),
            false,
            false,
        )
    }

    fn build_data_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        unanswered: &mut UnansweredBudget,
    ) -> Option<Transmit> {
        // A path challenge goes to the new address, on its own.
        if let Some(ch) = &mut self.challenge {
            if ch.send {
                ch.send = false;
                let (dest, data) = (ch.remote, ch.data);
                self.timers.set(Timer::PathValidation, now + self.pto() * 3);
                return self.single_frame_packet(now, buf, dest, Frame::PathChallenge(data), true);
            }
        }
        while let Some((dest, data)) = self.probes.poll_send() {
            // A probe of another candidate path (spec §11.6). Not counted in
            // flight: probes to addresses that do not work are expected to vanish.
            // Those candidates came from an introduction and have not
            // answered: the probe is charged to the endpoint's budget, or not
            // sent (spec §4.4). Our relay is our own server, not charged.
            let size = (DATA_HEADER_LEN + PATH_CHALLENGE_FRAME_LEN + TAG_LEN) as u64;
            if self.relay != Some(dest) && !unanswered.try_spend(now, size) {
                continue;
            }
            return self.single_frame_packet(now, buf, dest, Frame::PathChallenge(data), false);
        }
        if let Some((dest, data)) = self.path_responses.pop_front() {
            return self.single_frame_packet(now, buf, dest, Frame::PathResponse(data), true);
        }

        if let Some(t) = self.poll_mtu_probe(now, buf) {
            return Some(t);
        }

        if std::mem::take(&mut self.flow_update_due)
            && self.recv.next_max_data(now, self.rtt.smoothed()).is_some()
        {
            self.max_data_pending = true;
        }

        let ack_due = self.received.ack_due(now);
        let probe = self.probes_pending > 0;
        // The sent-packet record counts as part of the window: short of its
        // limit, only probes and path responses may still be recorded.
        let full_size = self.max_datagram_to(self.path.remote) as u64;
        if full_size != self.cc_datagram_size {
            // Path MTU discovery or a path change moved it (spec §6.9).
            self.cc_datagram_size = full_size;
            self.cc.on_max_datagram_size(full_size);
        }
        let cwnd_room = self.sent.bytes_in_flight() + full_size <= self.cc.window()
            && !self.sent.blocks_sending();
        let has_stream = self.send.has_data(self.peer_max_data);
        let want_eliciting = self.ping_pending || self.max_data_pending || has_stream || probe;
        // Why no ack-eliciting packet may leave now, if it may not (spec §7).
        let limit = if probe {
            None // probes bypass the window and the pacer
        } else if !want_eliciting {
            Some(if self.send.flow_blocked(self.peer_max_data) {
                SendLimit::Flow
            } else {
                SendLimit::App
            })
        } else if !cwnd_room {
            Some(SendLimit::Cwnd)
        } else {
            match self
                .pacing_rate()
                .and_then(|rate| self.pacer.delay(now, full_size, &rate))
            {
                Some(at) => {
                    self.timers.set(Timer::Pacing, at);
                    Some(SendLimit::Pacing)
                }
                None => None,
            }
        };
        if limit != Some(SendLimit::Pacing) {
            self.timers.stop(Timer::Pacing);
        }
        if let Some(limit) = limit {
            self.limits.set(now, limit, &mut self.stats);
        }
        let can_send_eliciting = limit.is_none();
        if !(ack_due || can_send_eliciting) {
            return None;
        }
        // Anti-amplification on an unvalidated path.
        if !self.path.validated && self.path.bytes_sent + full_size > 3 * self.path.bytes_received {
            return None;
        }

        // Packets are built for the path they take now: a retransmission
        // is re-packetised from stream data, so a move between a direct and
        // a relayed path needs nothing more (spec §11.5).
        let dest = self.path.remote;
        let datagram_size = self.max_datagram_to(dest).min(buf.len());
        let max_payload = StreamFrame::max_payload_in(datagram_size);
        let mut w = Writer::new(plaintext_area(buf, datagram_size)?);
        if ack_due || self.received.should_piggyback() {
            let delay = self.received.on_ack_sent(now);
            self.timers.stop(Timer::Ack);
            crate::wire::emit_ack(&mut w, self.received.ranges(), delay.as_micros() as u64, 32)
                .ok()?;
        }
        let mut ack_eliciting = false;
        let mut max_data = false;
        let mut ack_frequency = false;
        let mut chunks = StreamChunks::default();
        let mut retransmission = false;
        if can_send_eliciting {
            if self.max_data_pending {
                self.max_data_pending = false;
                max_data = true;
                Frame::MaxData(self.recv.max_data()).emit(&mut w).ok()?;
                ack_eliciting = true;
            }
            if self.peer_accepts_ack_frequency {
                if let Some(f) = self.ack_frequency.poll_frame() {
                    Frame::AckFrequency(f).emit(&mut w).ok()?;
                    ack_frequency = true;
                    ack_eliciting = true;
                }
            }
            // As many STREAM frames as fit: in a packet of the base size a
            // full 1024-byte frame leaves room for a second, shorter one; a
            // larger packet takes one frame (spec §6.3). No frame starts past
            // the written end, which bounds the offset's encoded size.
            let frame_overhead = 1 + crate::wire::varint_len(self.send.written()) + 2;
            debug_assert!(frame_overhead <= STREAM_FRAME_MAX_OVERHEAD);
            // The second of a pair of probes is a bare PING (RFC 9002 §6.2.4
            // allows either). Data the peer refused to buffer (beyond its
            // reassembly limits, spec §6.3) is never acknowledged, and only an
            // acknowledgment of a later packet lets loss detection declare it
            // lost; a probe carrying more new data could be refused as well.
            let ping_probe = probe && self.probes_pending == 1;
            while !chunks.is_full() && !ping_probe {
                let room = w.remaining().saturating_sub(frame_overhead);
                if room == 0 {
                    break;
                }
                let max_len = room.min(max_payload);
                let Some((c, retransmit)) = self.send.next_chunk(max_len, self.peer_max_data)
                else {
                    break;
                };
                if !self.send.holds(c) {
                    continue;
                }
                let new_offset = c.offset;
                let c = if retransmit {
                    c
                } else {
                    self.send
                        .bundle(c, max_len, self.config.bundle_unacked_bytes)
                };
                self.stats.stream_bytes_bundled += new_offset - c.offset;
                // The data goes from the send buffer straight into the packet.
                let send = &self.send;
                StreamFrame::emit_filled(c.offset, usize::from(c.len), c.fin, &mut w, |out| {
                    send.copy(c, out)
                })
                .ok()?;
                if retransmit {
                    self.stats.stream_bytes_retransmitted += u64::from(c.len);
                    retransmission = true;
                } else {
                    self.stats.stream_bytes_sent += c.end() - new_offset;
                }
                chunks.push(c);
                ack_eliciting = true;
            }
            if (self.ping_pending || probe) && !ack_eliciting {
                Frame::Ping.emit(&mut w).ok()?;
                ack_eliciting = true;
            }
            if ack_eliciting {
                self.ping_pending = false;
                self.probes_pending = self.probes_pending.saturating_sub(1);
            }
        }
        let len = w.len();
        if len == 0 {
            return None;
        }
        let t = self.seal_and_record(
            now,
            dest,
            buf,
            len,
            ack_eliciting,
            chunks,
            max_data,
            ack_frequency,
        )?;
        if ack_eliciting {
            if retransmission {
                self.stats.packets_retransmitted += 1;
            }
            if let Some(rate) = self.pacing_rate() {
                self.pacer.on_sent(now, t.size as u64, &rate);
            }
            self.time_of_last_ack_eliciting = Some(now);
            self.arm_keepalive(now);
            self.set_loss_timer();
        }
        Some(t)
    }

    /// The largest datagram toward `dest`: 1200 bytes, or 1190 toward our
    /// relay, so that its envelope stays within 1200 (spec §11.5).
    pub(super) fn max_datagram_to(&self, dest: SocketAddr) -> usize {
        if self.relay == Some(dest) {
            MAX_RELAYED_INNER_SIZE
        } else if self.mtu_path == Some(dest) {
            self.mtu.current()
        } else {
            MAX_DATAGRAM_SIZE
        }
    }

    /// Restarts path MTU discovery when the path changed (spec §6.9): a
    /// relayed path keeps the base size; a direct one, once validated, is
    /// searched up to the smaller of both sides' `max_udp_payload` and the
    /// address family's largest.
    fn mtu_follow_path(&mut self) {
        let remote = self.path.remote;
        if self.mtu_path == Some(remote) || !self.path.validated {
            return;
        }
        self.mtu_path = Some(remote);
        if self.relay == Some(remote) {
            self.mtu.stop();
            return;
        }
        let family_max = match remote.ip().to_canonical() {
            std::net::IpAddr::V4(_) => MAX_UDP_PAYLOAD_SIZE,
            std::net::IpAddr::V6(_) => MAX_UDP_PAYLOAD_SIZE_V6,
        };
        let limit = self
            .config
            .max_udp_payload
            .min(self.peer_max_udp_payload)
            .min(family_max);
        self.mtu.start(limit);
    }

    /// A path MTU probe (spec §6.9), if one is due and may leave now: a PING
    /// padded to the candidate size, within the congestion window and the
    /// pacer like any data packet, and only if `buf` holds it.
    fn poll_mtu_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.mtu_follow_path();
        let dest = self.path.remote;
        if self.mtu_path != Some(dest) || self.sent.blocks_sending() {
            return None;
        }
        let size = self.mtu.probe_due(now)?;
        if buf.len() < size || self.sent.bytes_in_flight() + size as u64 > self.cc.window() {
            return None;
        }
        if let Some(rate) = self.pacing_rate() {
            if self.pacer.delay(now, size as u64, &rate).is_some() {
                return None; // the data path arms the pacing timer
            }
        }
        let area = plaintext_area(buf, size)?;
        let len = area.len();
        // PING is type 0x01, and every PADDING byte 0x00 (spec §9.4.2).
        area[0] = 0x01;
        area[1..].fill(0x00);
        let pn = self.next_pn;
        let t = self.seal_and_record(
            now,
            dest,
            buf,
            len,
            true,
            StreamChunks::default(),
            false,
            false,
        )?;
        debug_assert_eq!(t.size, size);
        self.mtu.on_probe_sent(pn, size);
        self.stats.mtu_probes_sent += 1;
        trace!(cid = %self.local_cid, size, "path MTU probe");
        if let Some(rate) = self.pacing_rate() {
            self.pacer.on_sent(now, t.size as u64, &rate);
        }
        self.time_of_last_ack_eliciting = Some(now);
        self.set_loss_timer();
        Some(t)
    }

    /// The pacing rate, once an RTT sample tells how long a round trip is
    /// (the initial window leaves at once, as its burst).
    pub(super) fn pacing_rate(&mut self) -> Option<PacingRate> {
        if !self.config.pacing || !self.rtt.has_sample() {
            return None;
        }
        // The burst is counted in the datagrams we send now (up to 1472
        // bytes once path MTU discovery raised them, spec §6.9).
        let full_size = self.max_datagram_to(self.path.remote) as u64;
        if let Some(bytes_per_second) = self.cc.pacing_rate() {
            return Some(self.pacer.rate_at(bytes_per_second, full_size));
        }
        Some(self.pacer.rate(
            self.cc.window(),
            self.rtt.smoothed(),
            self.cc.pacing_gain(),
            full_size,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn seal_and_record(
        &mut self,
        now: Instant,
        dest: SocketAddr,
        buf: &mut [u8],
        plaintext_len: usize,
        ack_eliciting: bool,
        stream: StreamChunks,
        max_data: bool,
        ack_frequency: bool,
    ) -> Option<Transmit> {
        let session = self.session.as_ref()?;
        let pn = self.next_pn;
        let header = DataHeader {
            dcid: self.remote_cid,
            packet_number: pn,
        };
        let h = header.emit(buf).ok()?;
        debug_assert_eq!(
            h, DATA_HEADER_LEN,
            "the plaintext was written after the header"
        );
        // The frames were written in place, after the header: seal them there.
        let sealed = session
            .seal_in_place(pn, buf.get_mut(h..)?, plaintext_len)
            .ok()?;
        let size = h + sealed;
        debug_assert!(size <= MAX_UDP_PAYLOAD_SIZE);
        self.next_pn += 1;
        if ack_eliciting {
            // Only ack-eliciting packets are in flight and recorded (spec §6.5).
            let in_flight = self.sent.bytes_in_flight() + size as u64;
            // Application limited: nothing more to send while the window
            // still had room; acknowledgments of such packets do not grow it.
            let app_limited =
                !self.send.has_data(self.peer_max_data) && in_flight < self.cc.window();
            let delivery = self
                .delivery
                .on_sent(now, in_flight, size as u64, app_limited);
            self.sent.push(
                pn,
                SentPacket {
                    time_sent: now,
                    size: size as u16,
                    app_limited,
                    stream,
                    max_data,
                    ack_frequency,
                    delivery,
                },
            );
            self.cc.on_sent(now, size as u64, in_flight);
        }
        if dest == self.path.remote && !self.path.validated {
            self.path.bytes_sent += size as u64;
        }
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += size as u64;
        Some(Transmit {
            destination: dest,
            size,
            hop_limit: None,
            spare_sockets: 0,
        })
    }
}
