//! The receive path of a connection (spec §4, §6): handshake responses,
//! data packets (replay check, decryption, frames) and path changes.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{debug, trace, warn};

use crate::ticket::ProofRole;

use super::*;

/// Frames of a received packet kept from the validation pass for the pass
/// that acts on them; a packet with more is parsed a second time.
const FRAMES_KEPT: usize = 6;

impl Connection {
    /// The peer's handshake response arrived from `from`.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        response: &HandshakeResponse<'_>,
        scratch: &mut [u8],
    ) {
        let State::Handshaking { handshake, .. } = &mut self.state else {
            // Another path's response after we settled, or a replay: ignore.
            return;
        };
        let n = match handshake.read(response.noise, scratch) {
            Ok(n) => n,
            Err(e) => {
                self.stats.dropped_unauthenticated += 1;
                trace!(cid = %self.local_cid, "dropping handshake response: {e}");
                return;
            }
        };
        let params = match TransportParams::decode(&scratch[..n]) {
            Ok(p) if p.cid == response.responder_cid => p,
            Ok(_) => {
                // Noise authenticated the message but not the cleartext
                // `responder_cid`, which disagrees with the encrypted one:
                // the datagram was altered in flight. Drop it like one that
                // fails to authenticate (spec §4.3), undoing the read so
                // that the genuine response still completes the handshake.
                if let Err(e) = handshake.rewind_to_message2() {
                    self.protocol_violation_silent(&format!("handshake rewind failed: {e}"));
                    return;
                }
                self.stats.dropped_unauthenticated += 1;
                trace!(cid = %self.local_cid, "dropping handshake response: responder_cid altered");
                return;
            }
            Err(_) => {
                // Authenticated, so sent like this by the responder itself.
                self.protocol_violation_silent("malformed transport parameters");
                return;
            }
        };
        let State::Handshaking { handshake, .. } =
            std::mem::replace(&mut self.state, State::Established)
        else {
            unreachable!("checked above");
        };
        self.peer = handshake.remote_static();
        if params.refused {
            self.enter_closed(if params.ticket_required {
                CloseReason::TicketRefused
            } else {
                CloseReason::Refused
            });
            return;
        }
        // A ticket connection (spec §4.9): the responder must prove it holds
        // the ticket too. The handshake authenticated it, so the refusal is
        // an authenticated CLOSE once the keys are in place (below).
        let peer_lacks_ticket = self.ticket.as_ref().is_some_and(|t| {
            !t.verify(
                ProofRole::Responder,
                self.local_cid,
                params.ticket_proof.as_ref(),
            )
        });
        let session = match handshake.into_session() {
            Ok(s) => s,
            Err(_) => {
                self.protocol_violation_silent("handshake did not finish");
                return;
            }
        };
        self.session = Some(session);
        self.remote_cid = response.responder_cid;
        self.path = Path {
            remote: from,
            bytes_received: 0,
            bytes_sent: 0,
            validated: true,
        };
        self.apply_peer_params(&params);
        self.timers.stop(Timer::Punch);
        self.timers.stop(Timer::Handshake);
        // Confirm at once so the responder can report the connection.
        if peer_lacks_ticket {
            // The same line the responder logs (endpoint/accept.rs): which
            // side initiated depends on timing, the operator's grep does not.
            warn!(cid = %self.local_cid, %from, "refused a connection without a valid ticket: the peer answered without proving it");
            self.enter_closing(
                now,
                close_code::TICKET_REQUIRED,
                b"ticket required",
                CloseReason::PeerWithoutTicket,
            );
            return;
        }
        self.ping_pending = true;
        self.on_established(now);
        debug!(cid = %self.local_cid, %from, elapsed = ?now - self.created, "connected (initiator)");
    }

    /// A CookieReply for our initiation arrived from `from` (spec §4.8): if
    /// it comes from a candidate and opens with the responder's cookie key,
    /// keep the cookie for that address and probe it again at once.
    pub(crate) fn handle_cookie_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        reply: &crate::wire::CookieReply<'_>,
    ) {
        let State::Handshaking {
            init,
            punch,
            cookies,
            ..
        } = &mut self.state
        else {
            return;
        };
        if !punch.candidates().contains(&from) {
            return;
        }
        if cookies.on_cookie_reply(now, from, &reply.nonce, reply.sealed_cookie, init) {
            trace!(cid = %self.local_cid, %from, "cookie received: probing again");
            punch.probe_now(from, now);
            self.timers.set(Timer::Punch, now);
        }
    }

    /// A KnockReply for our connection arrived from `from` (spec §4.4): if
    /// it echoes the token we knocked that address with, the address has
    /// answered and gets the HandshakeInit at once.
    pub(crate) fn handle_knock_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        reply: &crate::wire::KnockReply,
    ) {
        let State::Handshaking { punch, .. } = &mut self.state else {
            if matches!(self.state, State::Established) {
                self.hard_nat_knock_reply(now, from, reply);
            }
            return;
        };
        if punch.on_knock_reply(from, &reply.token, now) {
            trace!(cid = %self.local_cid, %from, "knock answered: sending the init");
            self.timers.set(Timer::Punch, now);
        }
    }

    /// A handshake error before any keys exist: give up quietly.
    fn protocol_violation_silent(&mut self, detail: &str) {
        self.enter_closed(CloseReason::ProtocolViolation {
            detail: detail.to_string(),
        });
    }

    fn on_established(&mut self, now: Instant) {
        self.connected_reported = true;
        self.app_visible = true;
        self.events.push_back(Event::Connected {
            incoming: self.side == Side::Responder,
            remote: self.path.remote,
            peer: self.peer,
        });
        self.reset_idle(now);
        self.arm_keepalive(now);
    }

    /// A copy of the initiation we already answered arrived: resend our
    /// cached response, byte for byte.
    pub(crate) fn handle_duplicate_init(&mut self, from: SocketAddr, len: usize) {
        if let State::Confirming { resend_to, .. } = &mut self.state {
            *resend_to = Some(from);
            if from == self.path.remote {
                self.path.bytes_received += len as u64;
            }
        }
    }

    /// A data packet for this connection arrived: its sealed part is copied
    /// into `scratch` and opened there.
    pub(crate) fn handle_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: DataHeader,
        sealed: &[u8],
        datagram_len: usize,
        scratch: &mut [u8],
    ) {
        let Some(buf) = scratch.get_mut(..sealed.len()) else {
            // Larger than any datagram we accept: it cannot open.
            self.stats.dropped_unauthenticated += 1;
            return;
        };
        buf.copy_from_slice(sealed);
        self.handle_data_in_place(now, from, header, buf, datagram_len);
    }

    /// A data packet for this connection arrived: `sealed` (its ciphertext
    /// and tag, in the caller's buffer) is opened in place, so on return it
    /// holds nothing the caller may use.
    pub(crate) fn handle_data_in_place(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: DataHeader,
        sealed: &mut [u8],
        datagram_len: usize,
    ) {
        let Some(session) = &self.session else {
            // No keys yet (still punching): nothing can authenticate.
            self.stats.dropped_unauthenticated += 1;
            return;
        };
        if matches!(
            self.state,
            State::Draining { .. } | State::Closed | State::Handshaking { .. }
        ) {
            return;
        }
        self.last_now = self.last_now.max(now);
        let pn = header.packet_number;
        if !self.replay.check(pn) {
            self.stats.dropped_replayed += 1;
            return;
        }
        let n = match session.open_in_place(pn, sealed) {
            Ok(n) => n,
            Err(_) => {
                self.stats.dropped_unauthenticated += 1;
                return;
            }
        };
        self.replay.mark(pn);
        self.stats.packets_received += 1;
        self.stats.bytes_received += datagram_len as u64;
        let newest = self.largest_received.is_none_or(|l| pn > l);
        if newest {
            self.largest_received = Some(pn);
        }
        self.reset_idle(now);
        if self.pto_count >= 2 {
            // Our probe timeouts backed off twice or more as if the peer
            // were gone, but it is heard again (an outage ended): what it
            // has not acknowledged goes again one probe timeout after we
            // last sent, not after the backed-off one (spec §6.5).
            self.pto_count = 0;
            self.set_loss_timer();
        }

        if let State::Confirming { .. } = self.state {
            // A ticket connection whose initiator found we do not hold its
            // ticket: its first packet is its CLOSE (spec §4.9). The
            // connection never opened, so it is never reported connected.
            let refused = FrameIter::new(&sealed[..n])
                .flatten()
                .any(|f| matches!(f, Frame::Close(c) if c.code == close_code::TICKET_REQUIRED));
            if refused {
                self.timers.stop(Timer::Handshake);
                self.enter_closed(CloseReason::TicketRefused);
                return;
            }
            // The initiator's first packet: it holds the keys, so the path it
            // used is the one it chose.
            self.state = State::Established;
            self.path = Path {
                remote: from,
                bytes_received: 0,
                bytes_sent: 0,
                validated: true,
            };
            self.timers.stop(Timer::Handshake);
            self.on_established(now);
            debug!(cid = %self.local_cid, %from, "connected (responder)");
        } else if from != self.path.remote {
            self.on_new_address(now, from, newest);
        } else if !self.path.validated {
            self.path.bytes_received += datagram_len as u64;
        }
        if from == self.path.remote {
            self.path_heard = now;
        }

        if let State::Closing { .. } = self.state {
            if FrameIter::new(&sealed[..n])
                .flatten()
                .any(|f| matches!(f, Frame::Close(_)))
            {
                // The peer closed too: it answered our CLOSE, or sent its
                // own across ours. Answer it once (its CLOSE may be the one
                // that crossed ours, so it may still be lingering) and stop
                // answering anything else (spec §6.6).
                let reason = self.close_reason.clone().unwrap_or(CloseReason::Finished);
                self.enter_draining(now, reason, true);
            } else if let State::Closing { send_close_to } = &mut self.state {
                // Answered where the packet came from: a peer whose NAT
                // rebound still learns that we closed (spec §6.6).
                *send_close_to = Some(from);
            }
            return;
        }

        let payload = &sealed[..n];
        // Validate every frame before acting on any (spec §9.4.1), and check
        // the stream data against the resource limits (spec §6.3), in one
        // pass over the frames.
        let mut malformed = None;
        // The frames are parsed once: the first `FRAMES_KEPT` that call for
        // an action are kept for the pass that acts on them (a full packet
        // holds two or three). PING and PADDING call for none beyond making
        // the packet ack-eliciting, so a packet of a thousand PINGs is not
        // parsed twice (spec §10.3: the work per packet is bounded).
        let mut kept = [None; FRAMES_KEPT];
        let mut parsed = 0usize;
        let mut pinged = false;
        let stream_frames = FrameIter::new(payload)
            .map_while(|f| f.map_err(|e| malformed = Some(e)).ok())
            .inspect(|&f| match f {
                Frame::Padding { .. } => {}
                Frame::Ping => pinged = true,
                _ => {
                    if let Some(slot) = kept.get_mut(parsed) {
                        *slot = Some(f);
                    }
                    parsed += 1;
                }
            })
            .filter_map(|f| match f {
                Frame::Stream(s) => Some((s.offset, s.data.len() as u64)),
                _ => None,
            });
        let admitted = self.recv.admits(
            stream_frames,
            self.config.max_reorder_distance,
            self.config.max_buffered_bytes,
        );
        if !admitted && malformed.is_none() {
            // Admission stopped early: the frames after it are still unchecked.
            malformed = FrameIter::new(payload).find_map(Result::err);
        }
        // A packet with a malformed frame is a protocol violation and is not
        // acted on.
        if let Some(e) = malformed {
            self.protocol_violation(
                now,
                &format!("malformed frame: {e}"),
                close_code::PROTOCOL_VIOLATION,
            );
            return;
        }
        // Out-of-order stream data beyond the limits is not buffered, and
        // the packet is not acknowledged, as if lost: the peer sends its data
        // again, which fits once the gap before it fills. Its STREAM frames
        // that start at or before the first missing byte are still taken,
        // so the stream always progresses even when the peer packs the
        // missing bytes together with far-ahead ones.
        if !admitted {
            self.stats.dropped_over_limit += 1;
            trace!(cid = %self.local_cid, pn, "stream data beyond the buffer limits: packet not acknowledged");
        }
        let mut ack_eliciting = pinged;
        // Admitted with no malformed frame: admission went through every
        // frame, so `kept` holds all that call for an action unless there
        // were more.
        let all_kept = admitted && parsed <= FRAMES_KEPT;
        let mut kept_frames = kept.into_iter().flatten();
        let mut parsed_again = FrameIter::new(payload).flatten();
        let frames = std::iter::from_fn(|| {
            if all_kept {
                kept_frames.next()
            } else {
                parsed_again.next()
            }
        });
        for frame in frames {
            ack_eliciting |= frame.is_ack_eliciting();
            match frame {
                Frame::Stream(s) if !admitted && s.offset > self.recv.received() => {
                    if s.end() > self.recv.max_data() {
                        self.protocol_violation(
                            now,
                            "data beyond the flow-control limit",
                            close_code::FLOW_CONTROL,
                        );
                        return;
                    }
                }
                Frame::Padding { .. } | Frame::Ping => {}
                Frame::Ack(ack) => {
                    if let Err(detail) = self.on_ack_frame(now, &ack) {
                        self.protocol_violation(now, detail, close_code::PROTOCOL_VIOLATION);
                        return;
                    }
                }
                Frame::Stream(s) => match self.recv.insert(s.offset, s.data, s.fin) {
                    Ok(readable) => {
                        if readable {
                            self.report_readable();
                        }
                    }
                    Err(v) => {
                        let code = match v {
                            recv_stream::StreamViolation::FlowControl => close_code::FLOW_CONTROL,
                            recv_stream::StreamViolation::FinalSize => {
                                close_code::PROTOCOL_VIOLATION
                            }
                        };
                        self.protocol_violation(now, &v.to_string(), code);
                        return;
                    }
                },
                Frame::MaxData(max) => {
                    if let Err(detail) = self.on_max_data(pn, max) {
                        self.protocol_violation(now, detail, close_code::FLOW_CONTROL);
                        return;
                    }
                }
                Frame::Close(c) => {
                    if c.code == close_code::NO_ERROR && self.send.is_finished() {
                        // A graceful close asserts the peer received our whole stream.
                        self.send.on_peer_closed_gracefully();
                    }
                    self.report_stream_events();
                    let reason = String::from_utf8_lossy(c.reason).into_owned();
                    let why = if c.code == close_code::NO_ERROR {
                        CloseReason::Finished
                    } else if c.code >= close_code::APPLICATION_BASE {
                        let code = u32::try_from(c.code - close_code::APPLICATION_BASE)
                            .unwrap_or(u32::MAX);
                        CloseReason::PeerClose { code, reason }
                    } else if c.code == close_code::TICKET_REQUIRED {
                        CloseReason::TicketRefused
                    } else {
                        CloseReason::PeerError {
                            code: c.code,
                            reason,
                        }
                    };
                    // Answer once, with CLOSE 0, so the peer can stop
                    // lingering (spec §6.6). After a graceful close it
                    // asserts nothing new (the peer sends CLOSE 0 only once
                    // it holds our whole stream and we hold its); after an
                    // abrupt one the peer has already closed and reads it
                    // only as "your CLOSE arrived".
                    self.enter_draining(now, why, true);
                    return;
                }
                Frame::PathChallenge(data) => {
                    if self.path_responses.len() < 4 {
                        self.path_responses.push_back((from, data));
                    }
                }
                Frame::PathResponse(data) => self.on_path_response(now, from, data),
                Frame::AckFrequency(f) => self.received.on_ack_frequency(
                    f.sequence,
                    f.threshold,
                    Duration::from_micros(f.max_delay_micros),
                ),
            }
        }
        if !admitted {
            self.check_stream_progress(now);
            return;
        }
        self.received.on_packet(pn, ack_eliciting, now);
        if let Some(d) = self.received.deadline() {
            self.timers.set(Timer::Ack, d);
        }
        self.check_stream_progress(now);
    }

    /// A MAX_DATA frame in packet `pn` (spec §6.4). The limit may only grow
    /// in the order the peer sent its packets: a frame from a later packet
    /// with a lower value than one from an earlier packet (or than the
    /// handshake's initial limit) is a violation. A reordered, older, lower
    /// frame is just stale and ignored.
    fn on_max_data(&mut self, pn: u64, max: u64) -> Result<(), &'static str> {
        let went_down = max < self.peer_initial_max_data
            || self
                .peer_max_data_frame
                .is_some_and(|(at, value)| (pn >= at && max < value) || (pn < at && max > value));
        if went_down {
            return Err("flow-control limit went down");
        }
        if self.peer_max_data_frame.is_none_or(|(at, _)| pn > at) {
            self.peer_max_data_frame = Some((pn, max));
        }
        self.peer_max_data = self.peer_max_data.max(max);
        Ok(())
    }

    /// An authenticated packet from an address other than the current path.
    fn on_new_address(&mut self, now: Instant, from: SocketAddr, newest: bool) {
        if !newest {
            return; // a reordered packet from an old path says nothing
        }
        if !self.may_validate(now, from) {
            return; // the relay, while the direct path works (spec §11.6)
        }
        if self.challenge.as_ref().is_some_and(|c| c.remote == from) {
            return;
        }
        let mut data = [0u8; 8];
        self.rng.fill(&mut data);
        debug!(cid = %self.local_cid, %from, "validating new peer address");
        self.challenge = Some(PathChallenge {
            remote: from,
            data,
            send: true,
        });
    }

    fn on_path_response(&mut self, now: Instant, from: SocketAddr, data: [u8; 8]) {
        match &self.challenge {
            Some(c) if c.data == data && c.remote == from => {
                self.challenge = None;
                self.timers.stop(Timer::PathValidation);
            }
            // Or the answer to a probe of a candidate path (spec §11.6).
            _ if self.probes.take_response(now, from, data) => {}
            _ => return,
        }
        if from != self.path.remote {
            self.probes.clear();
            self.path_heard = now;
            self.path = Path {
                remote: from,
                bytes_received: 0,
                bytes_sent: 0,
                validated: true,
            };
            self.events.push_back(Event::PathChanged { remote: from });
            // The old path may have eaten packets: start the congestion state afresh-ish
            // by probing soon.
            self.ping_pending = true;
            // What the old path ate was backed off as if the peer were
            // gone: it is back, so what is unacknowledged goes again after
            // one probe timeout, not after the backed-off one (spec §6.7).
            self.pto_count = 0;
            self.set_loss_timer();
        }
    }

    /// Reports the end of the peer's stream and the acknowledgment of ours, once each.
    fn report_stream_events(&mut self) {
        if !self.peer_finished_reported && self.recv.is_complete() {
            self.peer_finished_reported = true;
            self.events.push_back(Event::PeerFinished);
        }
        if !self.all_acked_reported && self.send.is_fully_acked() {
            self.all_acked_reported = true;
            self.events.push_back(Event::AllDataAcked);
        }
    }

    fn check_stream_progress(&mut self, now: Instant) {
        self.report_stream_events();
        if self.all_acked_reported
            && self.peer_finished_reported
            && matches!(self.state, State::Established)
        {
            // Both directions are complete: close gracefully (spec §6.6).
            self.enter_closing(now, close_code::NO_ERROR, b"", CloseReason::Finished);
        }
    }

    fn reset_idle(&mut self, now: Instant) {
        self.timers.set(Timer::Idle, now + self.idle_timeout);
    }
}
