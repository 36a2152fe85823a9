//! The message side of a rendezvous connection: frames written to and read
//! from the connection's byte stream (spec §11.2), with a bounded backlog.

use std::collections::VecDeque;

use tracing::debug;

use super::message::{Message, MessageError, MessageReader, MAX_FRAME_LEN};
use crate::{ConnectionHandle, Endpoint, ReadError};

/// The backlog of a connection would grow beyond its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Frames in and out of one connection.
#[derive(Debug)]
pub(crate) struct MessageStream {
    reader: MessageReader,
    /// Bytes of frames the connection's send buffer did not take yet.
    backlog: VecDeque<u8>,
    /// Most bytes held for the peer, in the send buffer and the backlog.
    max_backlog: usize,
    /// Frames of unknown type skipped (a newer peer).
    pub(crate) skipped: u64,
}

impl MessageStream {
    pub(crate) fn new(max_backlog: usize) -> MessageStream {
        MessageStream {
            reader: MessageReader::default(),
            backlog: VecDeque::new(),
            max_backlog,
            skipped: 0,
        }
    }

    /// Queues one message on the connection. What this side holds for the
    /// peer — bytes in the connection's send buffer that the peer has not
    /// acknowledged, plus our own backlog — never exceeds `max_backlog`: a
    /// message that would go beyond it is refused with [`Overflow`] (spec
    /// §11.3), whatever the size of the endpoint's send buffer.
    pub(crate) fn send(
        &mut self,
        endpoint: &mut Endpoint,
        handle: ConnectionHandle,
        message: &Message,
    ) -> Result<(), Overflow> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        let n = match message.emit(&mut frame) {
            Ok(n) => n,
            Err(e) => {
                // Our own messages are built within the limits; never send a
                // frame the peer would reject.
                debug!("not sending an unencodable message: {e}");
                return Ok(());
            }
        };
        if self.held(endpoint, handle) + n > self.max_backlog {
            return Err(Overflow);
        }
        let mut rest = &frame[..n];
        if self.backlog.is_empty() {
            let taken = endpoint.write(handle, rest).unwrap_or(0);
            rest = &rest[taken..];
        }
        self.backlog.extend(rest);
        Ok(())
    }

    /// Bytes held for the peer: unacknowledged in the connection's send
    /// buffer, and in our backlog.
    pub(crate) fn held(&self, endpoint: &Endpoint, handle: ConnectionHandle) -> usize {
        let buffered = endpoint.send_buffered(handle).unwrap_or(0);
        usize::try_from(buffered)
            .unwrap_or(usize::MAX)
            .saturating_add(self.backlog.len())
    }

    /// Moves backlogged bytes into the connection after [`Event::Writable`](crate::Event::Writable).
    pub(crate) fn flush(&mut self, endpoint: &mut Endpoint, handle: ConnectionHandle) {
        while !self.backlog.is_empty() {
            let (front, _) = self.backlog.as_slices();
            match endpoint.write(handle, front) {
                Ok(n) if n > 0 => {
                    self.backlog.drain(..n);
                }
                _ => break,
            }
        }
    }

    /// The next complete message the connection delivered, `Ok(None)` when
    /// no complete message is buffered (or the stream ended). Frames of an
    /// unknown type are skipped; any other malformed frame is an error, after
    /// which the connection should be closed.
    pub(crate) fn next_message(
        &mut self,
        endpoint: &mut Endpoint,
        handle: ConnectionHandle,
    ) -> Result<Option<Message>, MessageError> {
        loop {
            let n = match endpoint.read(handle, self.reader.want()) {
                Ok(0)
                | Err(ReadError::Blocked | ReadError::Closed | ReadError::UnknownConnection) => {
                    return Ok(None)
                }
                Ok(n) => n,
            };
            match self.reader.advance(n) {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(MessageError::UnknownType(_)) => self.skipped += 1,
                Err(e) => return Err(e),
            }
        }
    }
}
