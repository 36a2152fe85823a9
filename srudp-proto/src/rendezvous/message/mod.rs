//! Rendezvous messages (spec §11.2): the requests a client sends to a
//! rendezvous server and the answers and notices it gets back, carried on
//! the byte stream of their authenticated srudp connection.
//!
//! Each message is a frame: `length u16 | type u8 | body`, where `length`
//! counts the type byte and the body (1 – [`MAX_MESSAGE_LEN`]). Parsing never
//! panics and never allocates more than the fixed limits allow (at most
//! [`MAX_MESSAGE_CANDIDATES`] addresses, [`MAX_GROUPS`] group memberships,
//! names of [`MAX_NAME_LEN`] bytes); every malformed input is a [`MessageError`].
//! Bytes after the last field of a known message are ignored, so a later
//! version can append fields.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::group::{GroupId, GroupMembership, MemberProof};
use crate::keys::{PublicKey, KEY_LEN};
use crate::wire::coding::{Reader, Writer};
use crate::wire::{WireError, NAT_PROBE_TOKEN_LEN};

/// Largest `length` of a frame: type byte plus body.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// Largest frame on the stream: the 2-byte length and the message.
pub const MAX_FRAME_LEN: usize = 2 + MAX_MESSAGE_LEN;
/// Longest name (of a peer or a group), in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most groups one registration joins.
pub const MAX_GROUPS: usize = 4;
/// Most addresses in one message. One less than a connection's candidate
/// limit ([`crate::connection::MAX_CANDIDATES`]) so that the relay always fits.
pub const MAX_MESSAGE_CANDIDATES: usize = 15;

/// Number a client gives each request; answers repeat it. 0 marks a notice
/// the client did not ask for (an introduction to a peer that called us).
pub type RequestId = u32;

/// Why a rendezvous message could not be parsed or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The input ended inside a field.
    #[error("truncated message")]
    Truncated,
    /// A frame's length is 0 or above [`MAX_MESSAGE_LEN`].
    #[error("invalid message length {0}")]
    InvalidLength(usize),
    /// A message type this version does not know (the frame can be skipped).
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// An address family other than 4 and 6.
    #[error("unknown address family {0}")]
    BadAddressFamily(u8),
    /// More addresses than [`MAX_MESSAGE_CANDIDATES`].
    #[error("too many addresses ({0})")]
    TooManyCandidates(usize),
    /// More group memberships than [`MAX_GROUPS`].
    #[error("too many groups ({0})")]
    TooManyGroups(usize),
    /// A name that is empty where one is required, too long, or uses a
    /// character outside `a-z 0-9 . _ -`.
    #[error("invalid name (1-64 bytes of a-z 0-9 . _ -)")]
    InvalidName,
    /// A Connect target kind other than 0 (key) and 1 (name).
    #[error("unknown target kind {0}")]
    BadTargetKind(u8),
    /// The output buffer cannot hold the message.
    #[error("output buffer too small")]
    BufferTooSmall,
}

impl From<WireError> for MessageError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::BufferTooSmall => MessageError::BufferTooSmall,
            _ => MessageError::Truncated,
        }
    }
}

/// A peer or group name: 1 – 64 bytes of `a-z`, `0-9`, `.`, `_`, `-`.
///
/// The charset keeps names unambiguous (no case or Unicode look-alikes) and
/// printable anywhere. A name that breaks the rule is refused with a message
/// that states it:
///
/// ```
/// use srudp_proto::rendezvous::Name;
///
/// assert_eq!("chat-room.1".parse::<Name>().unwrap().as_str(), "chat-room.1");
/// let err = "Bad Name".parse::<Name>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid name (1-64 bytes of a-z 0-9 . _ -)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Checks and wraps a name.
    pub fn new(name: &str) -> Result<Name, MessageError> {
        Name::from_bytes(name.as_bytes())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Name, MessageError> {
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_NAME_LEN
            && bytes
                .iter()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
        if !ok {
            return Err(MessageError::InvalidName);
        }
        // Only ASCII was accepted, so this cannot fail.
        let s = std::str::from_utf8(bytes).map_err(|_| MessageError::InvalidName)?;
        Ok(Name(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Name, MessageError> {
        Name::new(s)
    }
}

/// Whom a Connect request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The peer registered with this static key.
    Key(PublicKey),
    /// The peer registered under this name.
    Name(Name),
}

/// Why the server refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The requested peer is not registered.
    PeerUnknown,
    /// Too many requests from this client; try again later.
    RateLimited,
    /// Another key holds this name.
    NameTaken,
    /// Registration needs an IK connection (the server must know our key).
    NotAuthenticated,
    /// The server holds as many registrations as it may.
    ServerFull,
    /// The request needs a registration first.
    NotRegistered,
    /// The server has no second address for NAT tests.
    NatTestUnavailable,
    /// A group holds as many members as it may.
    GroupFull,
    /// The request makes no sense (for example, connecting to oneself).
    InvalidRequest,
    /// The client's source (its IPv4 address or IPv6 /64) holds as many
    /// registrations or relay sessions as one source may (spec §11.3).
    QuotaExceeded,
    /// A code this version does not know.
    Unknown(u8),
}

impl ErrorCode {
    /// The code on the wire.
    pub fn to_wire(self) -> u8 {
        match self {
            ErrorCode::PeerUnknown => 1,
            ErrorCode::RateLimited => 2,
            ErrorCode::NameTaken => 3,
            ErrorCode::NotAuthenticated => 4,
            ErrorCode::ServerFull => 5,
            ErrorCode::NotRegistered => 6,
            ErrorCode::NatTestUnavailable => 7,
            ErrorCode::GroupFull => 8,
            ErrorCode::InvalidRequest => 9,
            ErrorCode::QuotaExceeded => 10,
            ErrorCode::Unknown(c) => c,
        }
    }

    /// The code for a wire value.
    pub fn from_wire(code: u8) -> ErrorCode {
        match code {
            1 => ErrorCode::PeerUnknown,
            2 => ErrorCode::RateLimited,
            3 => ErrorCode::NameTaken,
            4 => ErrorCode::NotAuthenticated,
            5 => ErrorCode::ServerFull,
            6 => ErrorCode::NotRegistered,
            7 => ErrorCode::NatTestUnavailable,
            8 => ErrorCode::GroupFull,
            9 => ErrorCode::InvalidRequest,
            10 => ErrorCode::QuotaExceeded,
            c => ErrorCode::Unknown(c),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::PeerUnknown => f.write_str("peer not registered"),
            ErrorCode::RateLimited => f.write_str("rate limited by the rendezvous server"),
            ErrorCode::NameTaken => f.write_str("name registered by another key"),
            ErrorCode::NotAuthenticated => {
                f.write_str("registration needs an authenticated (IK) connection")
            }
            ErrorCode::ServerFull => f.write_str("rendezvous server full"),
            ErrorCode::NotRegistered => f.write_str("not registered at the rendezvous server"),
            ErrorCode::NatTestUnavailable => {
                f.write_str("the rendezvous server has no second address for NAT tests")
            }
            ErrorCode::GroupFull => f.write_str("group full"),
            ErrorCode::InvalidRequest => f.write_str("invalid request"),
            ErrorCode::QuotaExceeded => f.write_str(
                "this address (IPv4 address or IPv6 /64) holds all the rendezvous server allows one source",
            ),
            ErrorCode::Unknown(c) => write!(f, "unknown error code {c}"),
        }
    }
}

/// One rendezvous message. Types 0x01–0x05 go from client to server,
/// 0x81–0x88 from server to client (spec §11.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// (0x01) Register or refresh our identity: the connection's IK key,
    /// under an optional name, in some groups, reachable at the given host
    /// addresses besides the one the server observes.
    Register {
        /// Request number.
        request: RequestId,
        /// Name to be found by.
        name: Option<Name>,
        /// Groups to join (mesh notices): each group's id and our proof of
        /// its secret (spec §11.3).
        groups: Vec<GroupMembership>,
        /// Our host (LAN) addresses.
        candidates: Vec<SocketAddr>,
        /// Our link to the server rides the stream carrier: UDP does not
        /// pass here (spec §12.5). The trailing `flags` byte's bit 0,
        /// written only when set.
        stream_only: bool,
    },
    /// (0x02) Drop our registration.
    Unregister {
        /// Request number.
        request: RequestId,
    },
    /// (0x03) Introduce us to a registered peer.
    Connect {
        /// Request number.
        request: RequestId,
        /// Whom.
        target: Target,
    },
    /// (0x04) Run a NAT behaviour test (spec §11.7).
    NatTest {
        /// Request number.
        request: RequestId,
    },
    /// (0x05) Our opening knocks toward this peer, which we were introduced
    /// to, are out: our NAT is open toward it (spec §4.4, §11.4).
    Opened {
        /// The peer.
        peer: PublicKey,
    },
    /// (0x81) The registration is in place.
    Registered {
        /// The Register request answered.
        request: RequestId,
        /// Our address as the server sees it (server-reflexive).
        observed: SocketAddr,
        /// How often to refresh, in seconds.
        refresh_secs: u16,
        /// When an unrefreshed registration expires, in seconds.
        expiry_secs: u16,
    },
    /// (0x82) A request failed.
    Error {
        /// The request that failed.
        request: RequestId,
        /// Why.
        code: ErrorCode,
    },
    /// (0x83) Punch toward this peer now (spec §11.4).
    Introduce {
        /// Our Connect request, or 0 when the peer asked for us.
        request: RequestId,
        /// The peer's static key.
        peer: PublicKey,
        /// The peer's registered name.
        name: Option<Name>,
        /// Start punching after this many milliseconds.
        start_in_ms: u16,
        /// Relay session for this pair; 0 = no relay.
        relay_session: u64,
        /// The peer's addresses, the observed one first.
        candidates: Vec<SocketAddr>,
        /// The peer registered as reachable only through the stream carrier
        /// (spec §12.5): go to the relay at the start. The trailing `flags`
        /// byte's bit 0, written only when set.
        peer_stream_only: bool,
    },
    /// (0x84) A peer joined one of our groups (or was there when we joined).
    PeerJoined {
        /// The group.
        group: GroupId,
        /// The peer.
        peer: PublicKey,
        /// Its name.
        name: Option<Name>,
        /// The peer's proof of the group's secret, as it registered it.
        proof: MemberProof,
    },
    /// (0x85) A peer left one of our groups.
    PeerLeft {
        /// The group.
        group: GroupId,
        /// The peer.
        peer: PublicKey,
    },
    /// (0x86) A NAT test started: a probe with `filter_token` was sent to our
    /// observed address from a third server socket we never contact (spec
    /// §11.7); send a probe with `mapping_token` to `alt`.
    NatTestStarted {
        /// The NatTest request.
        request: RequestId,
        /// The server's second address.
        alt: SocketAddr,
        /// Token of the server's unsolicited probe.
        filter_token: [u8; NAT_PROBE_TOKEN_LEN],
        /// Token our probe to `alt` carries.
        mapping_token: [u8; NAT_PROBE_TOKEN_LEN],
    },
    /// (0x87) Our probe reached `alt` from this address.
    NatObserved {
        /// The NatTest request.
        request: RequestId,
        /// Our address as `alt` saw it.
        observed: SocketAddr,
    },
    /// (0x88) This peer, which we were introduced to, has opened its NAT
    /// toward us: our punches may go all the way now (spec §4.4, §11.4).
    PeerOpened {
        /// The peer.
        peer: PublicKey,
    },
}

mod ty {
    pub(super) const REGISTER: u8 = 0x01;
    pub(super) const UNREGISTER: u8 = 0x02;
    pub(super) const CONNECT: u8 = 0x03;
    pub(super) const NAT_TEST: u8 = 0x04;
    pub(super) const OPENED: u8 = 0x05;
    pub(super) const REGISTERED: u8 = 0x81;
    pub(super) const ERROR: u8 = 0x82;
    pub(super) const INTRODUCE: u8 = 0x83;
    pub(super) const PEER_JOINED: u8 = 0x84;
    pub(super) const PEER_LEFT: u8 = 0x85;
    pub(super) const NAT_TEST_STARTED: u8 = 0x86;
    pub(super) const NAT_OBSERVED: u8 = 0x87;
    pub(super) const PEER_OPENED: u8 = 0x88;
}

impl Message {
    /// Parses one message: its type byte and body (a frame without the
    /// length prefix). Never panics.
    pub fn parse(message: &[u8]) -> Result<Message, MessageError> {
        if message.is_empty() || message.len() > MAX_MESSAGE_LEN {
            return Err(MessageError::InvalidLength(message.len()));
        }
        let mut r = Reader::new(message);
        let t = r.u8()?;
        let m = match t {
            ty::REGISTER => {
                let request = r.u32()?;
                let name = read_optional_name(&mut r)?;
                let count = usize::from(r.u8()?);
                if count > MAX_GROUPS {
                    return Err(MessageError::TooManyGroups(count));
                }
                let mut groups = Vec::with_capacity(count);
                for _ in 0..count {
                    groups.push(GroupMembership {
                        group: GroupId(r.array()?),
                        proof: MemberProof(r.array()?),
                    });
                }
                let candidates = read_addresses(&mut r)?;
                Message::Register {
                    request,
                    name,
                    groups,
                    candidates,
                    stream_only: read_flags(&mut r) & FLAG_STREAM_ONLY != 0,
                }
            }
            ty::UNREGISTER => Message::Unregister { request: r.u32()? },
            ty::CONNECT => {
                let request = r.u32()?;
                let target = match r.u8()? {
                    0 => Target::Key(PublicKey(r.array::<KEY_LEN>()?)),
                    1 => Target::Name(read_name(&mut r)?),
                    k => return Err(MessageError::BadTargetKind(k)),
                };
                Message::Connect { request, target }
            }
            ty::NAT_TEST => Message::NatTest { request: r.u32()? },
            ty::OPENED => Message::Opened {
                peer: PublicKey(r.array::<KEY_LEN>()?),
            },
            ty::PEER_OPENED => Message::PeerOpened {
                peer: PublicKey(r.array::<KEY_LEN>()?),
            },
            ty::REGISTERED => Message::Registered {
                request: r.u32()?,
                observed: read_address(&mut r)?,
                refresh_secs: r.u16()?,
                expiry_secs: r.u16()?,
            },
            ty::ERROR => Message::Error {
                request: r.u32()?,
                code: ErrorCode::from_wire(r.u8()?),
            },
            ty::INTRODUCE => Message::Introduce {
                request: r.u32()?,
                peer: PublicKey(r.array::<KEY_LEN>()?),
                name: read_optional_name(&mut r)?,
                start_in_ms: r.u16()?,
                relay_session: r.u64()?,
                candidates: read_addresses(&mut r)?,
                peer_stream_only: read_flags(&mut r) & FLAG_STREAM_ONLY != 0,
            },
            ty::PEER_JOINED => Message::PeerJoined {
                group: GroupId(r.array()?),
                peer: PublicKey(r.array::<KEY_LEN>()?),
                name: read_optional_name(&mut r)?,
                proof: MemberProof(r.array()?),
            },
            ty::PEER_LEFT => Message::PeerLeft {
                group: GroupId(r.array()?),
                peer: PublicKey(r.array::<KEY_LEN>()?),
            },
            ty::NAT_TEST_STARTED => Message::NatTestStarted {
                request: r.u32()?,
                alt: read_address(&mut r)?,
                filter_token: r.array()?,
                mapping_token: r.array()?,
            },
            ty::NAT_OBSERVED => Message::NatObserved {
                request: r.u32()?,
                observed: read_address(&mut r)?,
            },
            other => return Err(MessageError::UnknownType(other)),
        };
        Ok(m)
    }

    /// Writes the whole frame (length prefix, type, body) into `buf`;
    /// returns its length, at most [`MAX_FRAME_LEN`]. Fails on values the
    /// format cannot carry (too many candidates or groups) and on a short
    /// buffer, never writing a partial frame that claims to be complete.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MessageError> {
        let mut w = Writer::new(buf);
        w.put_u16(0)?; // length, patched below
        match self {
            Message::Register {
                request,
                name,
                groups,
                candidates,
                stream_only,
            } => {
                w.put_u8(ty::REGISTER)?;
                w.put_u32(*request)?;
                put_optional_name(&mut w, name.as_ref())?;
                if groups.len() > MAX_GROUPS {
                    return Err(MessageError::TooManyGroups(groups.len()));
                }
                w.put_u8(groups.len() as u8)?;
                for g in groups {
                    w.put_bytes(&g.group.0)?;
                    w.put_bytes(&g.proof.0)?;
                }
                put_addresses(&mut w, candidates)?;
                put_flags(&mut w, *stream_only)?;
            }
            Message::Unregister { request } => {
                w.put_u8(ty::UNREGISTER)?;
                w.put_u32(*request)?;
            }
            Message::Connect { request, target } => {
                w.put_u8(ty::CONNECT)?;
                w.put_u32(*request)?;
                match target {
                    Target::Key(k) => {
                        w.put_u8(0)?;
                        w.put_bytes(&k.0)?;
                    }
                    Target::Name(n) => {
                        w.put_u8(1)?;
                        put_name(&mut w, n)?;
                    }
                }
            }
            Message::NatTest { request } => {
                w.put_u8(ty::NAT_TEST)?;
                w.put_u32(*request)?;
            }
            Message::Registered {
                request,
                observed,
                refresh_secs,
                expiry_secs,
            } => {
                w.put_u8(ty::REGISTERED)?;
                w.put_u32(*request)?;
                put_address(&mut w, observed)?;
                w.put_u16(*refresh_secs)?;
                w.put_u16(*expiry_secs)?;
            }
            Message::Error { request, code } => {
                w.put_u8(ty::ERROR)?;
                w.put_u32(*request)?;
                w.put_u8(code.to_wire())?;
            }
            Message::Introduce {
                request,
                peer,
                name,
                start_in_ms,
                relay_session,
                candidates,
                peer_stream_only,
            } => {
                w.put_u8(ty::INTRODUCE)?;
                w.put_u32(*request)?;
                w.put_bytes(&peer.0)?;
                put_optional_name(&mut w, name.as_ref())?;
                w.put_u16(*start_in_ms)?;
                w.put_u64(*relay_session)?;
                put_addresses(&mut w, candidates)?;
                put_flags(&mut w, *peer_stream_only)?;
            }
            Message::PeerJoined {
                group,
                peer,
                name,
                proof,
            } => {
                w.put_u8(ty::PEER_JOINED)?;
                w.put_bytes(&group.0)?;
                w.put_bytes(&peer.0)?;
                put_optional_name(&mut w, name.as_ref())?;
                w.put_bytes(&proof.0)?;
            }
            Message::PeerLeft { group, peer } => {
                w.put_u8(ty::PEER_LEFT)?;
                w.put_bytes(&group.0)?;
                w.put_bytes(&peer.0)?;
            }
            Message::NatTestStarted {
                request,
                alt,
                filter_token,
                mapping_token,
            } => {
                w.put_u8(ty::NAT_TEST_STARTED)?;
                w.put_u32(*request)?;
                put_address(&mut w, alt)?;
                w.put_bytes(filter_token)?;
                w.put_bytes(mapping_token)?;
            }
            Message::NatObserved { request, observed } => {
                w.put_u8(ty::NAT_OBSERVED)?;
                w.put_u32(*request)?;
                put_address(&mut w, observed)?;
            }
            Message::Opened { peer } => {
                w.put_u8(ty::OPENED)?;
                w.put_bytes(&peer.0)?;
            }
            Message::PeerOpened { peer } => {
                w.put_u8(ty::PEER_OPENED)?;
                w.put_bytes(&peer.0)?;
            }
        }
        let total = w.len();
        let written = w.into_written();
        // Every message fits MAX_MESSAGE_LEN by construction (the largest,
        // Register, is under 700 bytes), so this never truncates.
        let len = u16::try_from(total - 2).map_err(|_| MessageError::InvalidLength(total - 2))?;
        written[..2].copy_from_slice(&len.to_be_bytes());
        Ok(total)
    }
}

fn read_name(r: &mut Reader<'_>) -> Result<Name, MessageError> {
    let len = usize::from(r.u8()?);
    if len == 0 || len > MAX_NAME_LEN {
        return Err(MessageError::InvalidName);
    }
    Name::from_bytes(r.bytes(len)?)
}

fn read_optional_name(r: &mut Reader<'_>) -> Result<Option<Name>, MessageError> {
    let len = usize::from(r.u8()?);
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_NAME_LEN {
        return Err(MessageError::InvalidName);
    }
    Name::from_bytes(r.bytes(len)?).map(Some)
}

fn put_name(w: &mut Writer<'_>, name: &Name) -> Result<(), MessageError> {
    w.put_u8(name.0.len() as u8)?;
    w.put_bytes(name.0.as_bytes())?;
    Ok(())
}

fn put_optional_name(w: &mut Writer<'_>, name: Option<&Name>) -> Result<(), MessageError> {
    match name {
        Some(n) => put_name(w, n),
        None => w.put_u8(0).map_err(Into::into),
    }
}

fn read_address(r: &mut Reader<'_>) -> Result<SocketAddr, MessageError> {
    let ip = match r.u8()? {
        4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
        6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
        f => return Err(MessageError::BadAddressFamily(f)),
    };
    Ok(SocketAddr::new(ip, r.u16()?))
}

fn put_address(w: &mut Writer<'_>, addr: &SocketAddr) -> Result<(), MessageError> {
    match addr.ip() {
        IpAddr::V4(ip) => {
            w.put_u8(4)?;
            w.put_bytes(&ip.octets())?;
        }
        IpAddr::V6(ip) => {
            w.put_u8(6)?;
            w.put_bytes(&ip.octets())?;
        }
    }
    w.put_u16(addr.port())?;
    Ok(())
}

fn read_addresses(r: &mut Reader<'_>) -> Result<Vec<SocketAddr>, MessageError> {
    let count = usize::from(r.u8()?);
    if count > MAX_MESSAGE_CANDIDATES {
        return Err(MessageError::TooManyCandidates(count));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(read_address(r)?);
    }
    Ok(out)
}

/// `flags` bit 0 of Register and Introduce: the sender's (Register) or the
/// peer's (Introduce) link to the server rides the stream carrier (spec
/// §11.2, §12.5).
const FLAG_STREAM_ONLY: u8 = 1;

/// The optional trailing `flags` byte of Register and Introduce: 0 when
/// absent (a sender that predates it); unknown bits are ignored.
fn read_flags(r: &mut Reader<'_>) -> u8 {
    if r.is_empty() {
        0
    } else {
        r.u8().unwrap_or(0)
    }
}

/// Writes the `flags` byte only when a flag is set, so messages without
/// one are byte for byte what senders that predate it wrote.
fn put_flags(w: &mut Writer<'_>, stream_only: bool) -> Result<(), MessageError> {
    if stream_only {
        w.put_u8(FLAG_STREAM_ONLY)?;
    }
    Ok(())
}

fn put_addresses(w: &mut Writer<'_>, addrs: &[SocketAddr]) -> Result<(), MessageError> {
    if addrs.len() > MAX_MESSAGE_CANDIDATES {
        return Err(MessageError::TooManyCandidates(addrs.len()));
    }
    w.put_u8(addrs.len() as u8)?;
    for a in addrs {
        put_address(w, a)?;
    }
    Ok(())
}

/// Reassembles messages from a byte stream, one frame at a time, in a fixed
/// buffer of [`MAX_FRAME_LEN`] bytes.
///
/// Fill [`want`](Self::want) (for example with `Endpoint::read`), then call
/// [`advance`](Self::advance) with the number of bytes written: it returns a
/// message when one is complete. Reading exactly what the current frame
/// still lacks means no byte of the next frame is ever buffered.
#[derive(Debug)]
pub struct MessageReader {
    buf: Box<[u8; MAX_FRAME_LEN]>,
    filled: usize,
}

impl Default for MessageReader {
    fn default() -> Self {
        MessageReader {
            buf: Box::new([0u8; MAX_FRAME_LEN]),
            filled: 0,
        }
    }
}

impl MessageReader {
    /// The bytes to fill next: the rest of the length prefix, or the rest of
    /// the frame. Never empty.
    pub fn want(&mut self) -> &mut [u8] {
        let end = self.frame_end().unwrap_or(2);
        &mut self.buf[self.filled..end]
    }

    fn frame_end(&self) -> Option<usize> {
        (self.filled >= 2).then(|| 2 + usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]])))
    }

    /// Records that `n` bytes of [`want`](Self::want) were filled. Returns
    /// the message once a frame is complete (and starts the next), or an
    /// error for a frame that cannot be read: a length of 0 or above
    /// [`MAX_MESSAGE_LEN`] (the stream cannot be resynchronised: give up on
    /// it) or a malformed message ([`MessageError::UnknownType`] alone means
    /// the frame was well delimited and can be skipped).
    pub fn advance(&mut self, n: usize) -> Result<Option<Message>, MessageError> {
        let want = self.want().len();
        self.filled += n.min(want);
        if self.filled == 2 {
            let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
            if len == 0 || len > MAX_MESSAGE_LEN {
                self.filled = 0;
                return Err(MessageError::InvalidLength(len));
            }
            return Ok(None);
        }
        match self.frame_end() {
            Some(end) if self.filled == end => {
                self.filled = 0;
                Message::parse(&self.buf[2..end]).map(Some)
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
