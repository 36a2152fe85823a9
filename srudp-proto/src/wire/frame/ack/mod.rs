//! The ACK frame (type 0x02), with ranges as in QUIC (RFC 9000 §19.3.1).
//!
//! `type varint | largest varint | ack_delay varint | range_count varint |
//! first_range varint | (gap varint, range_len varint) × range_count`
//!
//! The first range is `[largest - first_range, largest]`. Each further range
//! lies below the previous one: its largest is `previous_smallest - gap - 2`
//! and its smallest is `its_largest - range_len`. All ranges are validated
//! when the frame is parsed, so iterating over them cannot fail.

use std::iter::FusedIterator;
use std::ops::RangeInclusive;

use super::FRAME_TYPE_ACK;
use crate::range_set::RangeSet;
use crate::wire::coding::varint::{varint_len, VARINT_MAX};
use crate::wire::coding::{Reader, Writer};
use crate::wire::{WireError, MAX_ACK_RANGES};

/// A parsed ACK frame. The additional ranges stay encoded (borrowed from the
/// packet) and are decoded by [`ranges`](Self::ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrame<'a> {
    /// The largest packet number acknowledged.
    pub largest: u64,
    /// How long the sender held this ACK back after receiving `largest`,
    /// in microseconds.
    pub ack_delay_micros: u64,
    /// Packets below `largest` also acknowledged by the first range.
    first_range: u64,
    /// The number of (gap, range_len) pairs in `raw`.
    additional: usize,
    /// The encoded (gap, range_len) pairs.
    raw: &'a [u8],
}

/// Walks the (gap, range_len) pairs in `r` below the first range, failing if
/// any range underflows or the input is short.
fn walk(
    largest: u64,
    first_range: u64,
    additional: usize,
    r: &mut Reader<'_>,
) -> Result<(), WireError> {
    let mut smallest = largest
        .checked_sub(first_range)
        .ok_or(WireError::InvalidAckRanges)?;
    for _ in 0..additional {
        let gap = r.varint()?;
        let len = r.varint()?;
        smallest = next_range(smallest, gap, len)
            .ok_or(WireError::InvalidAckRanges)?
            .0;
    }
    Ok(())
}

/// The `(smallest, largest)` of the range that follows one whose smallest
/// is `prev_smallest`, or `None` on underflow.
fn next_range(prev_smallest: u64, gap: u64, len: u64) -> Option<(u64, u64)> {
    let largest = prev_smallest.checked_sub(gap)?.checked_sub(2)?;
    Some((largest.checked_sub(len)?, largest))
}

impl<'a> AckFrame<'a> {
    /// Parses the body of an ACK frame (after its type).
    pub(super) fn parse(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let largest = r.varint()?;
        let ack_delay_micros = r.varint()?;
        let count = r.varint()?;
        let additional = usize::try_from(count)
            .ok()
            .filter(|&n| n < MAX_ACK_RANGES)
            .ok_or(WireError::TooManyAckRanges(count))?;
        let first_range = r.varint()?;
        let before = r.peek_rest();
        let start = r.position();
        walk(largest, first_range, additional, r)?;
        let raw = before
            .get(..r.position().saturating_sub(start))
            .ok_or(WireError::Truncated)?;
        Ok(AckFrame {
            largest,
            ack_delay_micros,
            first_range,
            additional,
            raw,
        })
    }

    /// The acknowledged ranges, highest first.
    pub fn ranges(&self) -> AckRanges<'a> {
        AckRanges {
            first: self
                .largest
                .checked_sub(self.first_range)
                .map(|smallest| smallest..=self.largest),
            smallest: self.largest.saturating_sub(self.first_range),
            left: self.additional,
            r: Reader::new(self.raw),
        }
    }

    /// The number of ranges, the first one included (1 to
    /// [`MAX_ACK_RANGES`]). The wire's `range_count` field is one less.
    pub fn range_count(&self) -> usize {
        self.additional.saturating_add(1)
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn encoded_len(&self) -> usize {
        header_len(
            self.largest,
            self.ack_delay_micros,
            self.additional,
            self.first_range,
        )
        .saturating_add(self.raw.len())
    }

    /// Re-emits this frame (ranges exactly as received); on error nothing is
    /// written.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        if self.largest > VARINT_MAX || self.ack_delay_micros > VARINT_MAX {
            return Err(WireError::VarintOverflow);
        }
        // `largest` is public: check the ranges still fit below it.
        let mut r = Reader::new(self.raw);
        walk(self.largest, self.first_range, self.additional, &mut r)?;
        w.ensure(self.encoded_len())?;
        put_header(
            w,
            self.largest,
            self.ack_delay_micros,
            self.additional,
            self.first_range,
        )?;
        w.put_bytes(self.raw)
    }
}

/// The size of an ACK frame up to and including `first_range`.
fn header_len(largest: u64, delay: u64, additional: usize, first_range: u64) -> usize {
    1 + varint_len(largest)
        + varint_len(delay)
        + varint_len(additional as u64)
        + varint_len(first_range)
}

fn put_header(
    w: &mut Writer<'_>,
    largest: u64,
    delay: u64,
    additional: usize,
    first_range: u64,
) -> Result<(), WireError> {
    w.put_varint(FRAME_TYPE_ACK)?;
    w.put_varint(largest)?;
    w.put_varint(delay)?;
    w.put_varint(additional as u64)?;
    w.put_varint(first_range)
}

/// The ranges of an [`AckFrame`], highest first, as inclusive ranges.
#[derive(Debug, Clone)]
pub struct AckRanges<'a> {
    first: Option<RangeInclusive<u64>>,
    smallest: u64,
    left: usize,
    r: Reader<'a>,
}

impl Iterator for AckRanges<'_> {
    type Item = RangeInclusive<u64>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        self.left = self.left.checked_sub(1)?;
        let pair = self.r.varint().and_then(|gap| Ok((gap, self.r.varint()?)));
        match pair
            .ok()
            .and_then(|(gap, len)| next_range(self.smallest, gap, len))
        {
            Some((smallest, largest)) => {
                self.smallest = smallest;
                Some(smallest..=largest)
            }
            None => {
                // Unreachable for validated frames; end cleanly regardless.
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left.saturating_add(usize::from(self.first.is_some()));
        (n, Some(n))
    }
}

impl ExactSizeIterator for AckRanges<'_> {}
impl FusedIterator for AckRanges<'_> {}

/// What an ACK built from a [`RangeSet`] contains.
struct Plan {
    largest: u64,
    first_range: u64,
    additional: usize,
    pairs_len: usize,
}

/// The (gap, range_len) pairs for the ranges of `set` below its highest,
/// highest first, at most `n - 1` of them.
fn pairs(set: &RangeSet, n: usize) -> impl Iterator<Item = Option<(u64, u64)>> + '_ {
    let mut ranges = set.iter().rev().take(n);
    let mut prev_smallest = ranges.next().map(|r| r.start);
    ranges.map(move |r| {
        let largest = r.end.checked_sub(1)?;
        let gap = prev_smallest?.checked_sub(largest)?.checked_sub(2)?;
        prev_smallest = Some(r.start);
        Some((gap, largest.checked_sub(r.start)?))
    })
}

fn plan(set: &RangeSet, ack_delay_micros: u64, max_ranges: usize) -> Result<Plan, WireError> {
    let n = max_ranges.clamp(1, MAX_ACK_RANGES);
    let top = set.iter().next_back().ok_or(WireError::InvalidAckRanges)?;
    let largest = top.end.checked_sub(1).ok_or(WireError::InvalidAckRanges)?;
    if largest > VARINT_MAX || ack_delay_micros > VARINT_MAX {
        return Err(WireError::VarintOverflow);
    }
    let first_range = largest
        .checked_sub(top.start)
        .ok_or(WireError::InvalidAckRanges)?;
    let mut additional = 0usize;
    let mut pairs_len = 0usize;
    for pair in pairs(set, n) {
        let (gap, len) = pair.ok_or(WireError::InvalidAckRanges)?;
        additional += 1;
        pairs_len += varint_len(gap) + varint_len(len);
    }
    Ok(Plan {
        largest,
        first_range,
        additional,
        pairs_len,
    })
}

/// The size of the ACK frame [`emit_ack`] would write for these arguments.
pub fn ack_frame_len(
    set: &RangeSet,
    ack_delay_micros: u64,
    max_ranges: usize,
) -> Result<usize, WireError> {
    let p = plan(set, ack_delay_micros, max_ranges)?;
    Ok(header_len(p.largest, ack_delay_micros, p.additional, p.first_range) + p.pairs_len)
}

/// Writes an ACK frame for the highest `min(max_ranges, MAX_ACK_RANGES)`
/// ranges of `set` (a `max_ranges` of 0 counts as 1); on error nothing is
/// written.
///
/// Fails with [`WireError::InvalidAckRanges`] if `set` is empty,
/// [`WireError::VarintOverflow`] if a packet number or the delay exceeds
/// `2^62 - 1`, or [`WireError::BufferTooSmall`].
pub fn emit_ack(
    w: &mut Writer<'_>,
    set: &RangeSet,
    ack_delay_micros: u64,
    max_ranges: usize,
) -> Result<(), WireError> {
    let p = plan(set, ack_delay_micros, max_ranges)?;
    w.ensure(header_len(p.largest, ack_delay_micros, p.additional, p.first_range) + p.pairs_len)?;
    put_header(w, p.largest, ack_delay_micros, p.additional, p.first_range)?;
    for (gap, len) in pairs(set, max_ranges.clamp(1, MAX_ACK_RANGES)).flatten() {
        w.put_varint(gap)?;
        w.put_varint(len)?;
    }
    Ok(())
}

/// Writes an ACK frame from its wire fields as given (§9.4.3): `largest`,
/// the delay, the first range and the `(gap, len)` pairs of the additional
/// ranges. Unlike [`emit_ack`] it does not check that the ranges stay above
/// 0 or that there are at most [`MAX_ACK_RANGES`]: it writes what a hostile
/// peer could, for tests, fuzzers and benchmarks. On error nothing is
/// written ([`WireError::VarintOverflow`], [`WireError::BufferTooSmall`]).
pub fn emit_ack_fields(
    w: &mut Writer<'_>,
    largest: u64,
    ack_delay_micros: u64,
    first_range: u64,
    pairs: &[(u64, u64)],
) -> Result<(), WireError> {
    let mut pairs_len = 0;
    for &(gap, len) in pairs {
        if gap > VARINT_MAX || len > VARINT_MAX {
            return Err(WireError::VarintOverflow);
        }
        pairs_len += varint_len(gap) + varint_len(len);
    }
    if largest > VARINT_MAX || ack_delay_micros > VARINT_MAX || first_range > VARINT_MAX {
        return Err(WireError::VarintOverflow);
    }
    w.ensure(header_len(largest, ack_delay_micros, pairs.len(), first_range) + pairs_len)?;
    put_header(w, largest, ack_delay_micros, pairs.len(), first_range)?;
    for &(gap, len) in pairs {
        w.put_varint(gap)?;
        w.put_varint(len)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
