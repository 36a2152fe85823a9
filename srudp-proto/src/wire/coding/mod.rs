//! Bounds-checked cursors for reading and writing wire data.
//!
//! All integers are big-endian. Varints follow RFC 9000 §16 (see
//! [`varint_len`](super::varint_len)). Every operation either completes or
//! fails without consuming input / writing output.

use super::WireError;

pub(crate) mod varint;

/// A cursor over received bytes. Every read is bounds-checked and fails with
/// [`WireError::Truncated`] (consuming nothing) if too few bytes remain.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            rest: buf,
            position: 0,
        }
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_be_bytes)
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_be_bytes)
    }

    /// Reads a varint (any of its 1/2/4/8-byte encodings).
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let saved = self.clone();
        varint::read(self).inspect_err(|_| *self = saved)
    }

    /// Reads exactly `N` bytes into an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.bytes(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| WireError::Truncated)
    }

    /// Reads exactly `n` bytes, borrowed from the input.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(WireError::Truncated)?;
        self.rest = tail;
        self.position = self.position.saturating_add(n);
        Ok(head)
    }

    /// Consumes and returns everything that remains (possibly nothing).
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = std::mem::take(&mut self.rest);
        self.position = self.position.saturating_add(rest.len());
        rest
    }

    /// The bytes that remain, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next byte, without consuming it.
    pub fn peek_u8(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The number of bytes that remain.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The number of bytes consumed so far.
    pub fn position(&self) -> usize {
        self.position
    }
}

/// A cursor that fills a caller-provided buffer from the front. Every write
/// is bounds-checked and fails with [`WireError::BufferTooSmall`] (writing
/// nothing) if it does not fit.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Writes one byte.
    pub fn put_u8(&mut self, v: u8) -> Result<(), WireError> {
        self.put_bytes(&[v])
    }

    /// Writes a big-endian `u16`.
    pub fn put_u16(&mut self, v: u16) -> Result<(), WireError> {
        self.put_bytes(&v.to_be_bytes())
    }

    /// Writes a big-endian `u32`.
    pub fn put_u32(&mut self, v: u32) -> Result<(), WireError> {
        self.put_bytes(&v.to_be_bytes())
    }

    /// Writes a big-endian `u64`.
    pub fn put_u64(&mut self, v: u64) -> Result<(), WireError> {
        self.put_bytes(&v.to_be_bytes())
    }

    /// Writes `v` as a varint in its shortest encoding; fails with
    /// [`WireError::VarintOverflow`] if `v > 2^62 - 1`.
    pub fn put_varint(&mut self, v: u64) -> Result<(), WireError> {
        varint::write(self, v)
    }

    /// Writes `bytes` verbatim.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Claims the next `n` bytes and lets `fill` write them (it must write
    /// every one: the buffer may hold older bytes). Nothing is claimed and
    /// `fill` is not called if they do not fit.
    pub fn put_with(&mut self, n: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), WireError> {
        fill(self.reserve(n)?);
        Ok(())
    }

    /// Writes `n` zero bytes.
    pub fn put_zeros(&mut self, n: usize) -> Result<(), WireError> {
        self.reserve(n)?.fill(0);
        Ok(())
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of bytes that can still be written.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Fails with [`WireError::BufferTooSmall`] unless `n` more bytes fit.
    pub fn ensure(&self, n: usize) -> Result<(), WireError> {
        if n <= self.remaining() {
            Ok(())
        } else {
            Err(WireError::BufferTooSmall)
        }
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Ends writing and returns the written prefix of the buffer.
    pub fn into_written(self) -> &'a mut [u8] {
        let len = self.len;
        self.buf.get_mut(..len).unwrap_or_default()
    }

    /// Claims the next `n` bytes of the buffer.
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], WireError> {
        let end = self.len.checked_add(n).ok_or(WireError::BufferTooSmall)?;
        let slot = self
            .buf
            .get_mut(self.len..end)
            .ok_or(WireError::BufferTooSmall)?;
        self.len = end;
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_integers_in_order() {
        let bytes = [
            0x01, // u8
            0x02, 0x03, // u16
            0x04, 0x05, 0x06, 0x07, // u32
            0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // u64
            0x25, // varint 37
            0xaa, 0xbb, // bytes(2)
            0xcc, 0xdd, // rest
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Ok(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(r.varint(), Ok(37));
        assert_eq!(r.position(), 16);
        assert_eq!(r.bytes(2), Ok(&[0xaa, 0xbb][..]));
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.peek_u8(), Some(0xcc));
        assert_eq!(r.rest(), &[0xcc, 0xdd]);
        assert!(r.is_empty());
        assert_eq!(r.position(), bytes.len());
        assert_eq!(r.rest(), &[] as &[u8]);
        assert_eq!(r.u8(), Err(WireError::Truncated));
    }

    #[test]
    fn failed_reads_consume_nothing() {
        let bytes = [0x01, 0x02, 0x03];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u32(), Err(WireError::Truncated));
        assert_eq!(r.bytes(4), Err(WireError::Truncated));
        assert_eq!(r.bytes(usize::MAX), Err(WireError::Truncated));
        let mut v = Reader::new(&[0x80, 0x00]);
        assert_eq!(v.varint(), Err(WireError::Truncated));
        assert_eq!(v.position(), 0);
        assert_eq!(r.position(), 0);
        assert_eq!(r.u16(), Ok(0x0102));
    }

    #[test]
    fn writes_big_endian_integers_in_order() {
        let mut buf = [0xffu8; 24];
        let mut w = Writer::new(&mut buf);
        w.put_u8(0x01).unwrap();
        w.put_u16(0x0203).unwrap();
        w.put_u32(0x0405_0607).unwrap();
        w.put_u64(0x0809_0a0b_0c0d_0e0f).unwrap();
        w.put_varint(15_293).unwrap();
        w.put_bytes(&[0xaa]).unwrap();
        w.put_zeros(2).unwrap();
        assert_eq!(w.len(), 20);
        assert_eq!(w.remaining(), 4);
        assert_eq!(
            w.into_written(),
            [
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
                0x0f, 0x7b, 0xbd, 0xaa, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn failed_writes_write_nothing() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert!(w.is_empty());
        assert_eq!(w.put_u32(1), Err(WireError::BufferTooSmall));
        assert_eq!(w.put_zeros(usize::MAX), Err(WireError::BufferTooSmall));
        assert_eq!(w.ensure(4), Err(WireError::BufferTooSmall));
        assert_eq!(w.ensure(3), Ok(()));
        assert_eq!(w.len(), 0);
        w.put_u16(0xabcd).unwrap();
        assert_eq!(w.put_u16(1), Err(WireError::BufferTooSmall));
        w.put_u8(0xef).unwrap();
        assert_eq!(w.remaining(), 0);
        assert_eq!(w.put_bytes(&[]), Ok(()));
        assert_eq!(w.written(), [0xab, 0xcd, 0xef]);
    }
}
