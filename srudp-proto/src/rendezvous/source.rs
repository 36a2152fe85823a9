//! Where a rendezvous client comes from, and what one source may ask of the
//! server (spec §11.3): one host can hold any number of keys, so the
//! server's shared resources — registrations, relay sessions, introductions
//! and NAT tests — are also counted per source address, not only per key
//! or per connection.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::token_bucket::{RateLimit, TokenBucket};

/// What a client's requests are counted against: its IPv4 address, or the
/// /64 prefix of its IPv6 address (one host or one LAN can use any address
/// of its /64, but seldom more than one /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourcePrefix {
    /// An IPv4 address (also an IPv4-mapped IPv6 address).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl SourcePrefix {
    /// The source `ip` belongs to.
    pub fn of(ip: IpAddr) -> SourcePrefix {
        match ip {
            IpAddr::V4(v4) => SourcePrefix::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SourcePrefix::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    SourcePrefix::V6(prefix)
                }
            },
        }
    }
}

/// The request rates of one source.
#[derive(Debug)]
struct SourceRates {
    /// Client connections from the source: the entry lives while one does.
    links: usize,
    introductions: TokenBucket,
    nat_tests: TokenBucket,
}

/// Per-source rates of the requests whose cost is not held state
/// (introductions, NAT tests). An entry exists while a client connection
/// from its source does, so the table is bounded by the endpoint's
/// connection limit.
#[derive(Debug, Default)]
pub(crate) struct SourceRateTable {
    by_source: BTreeMap<SourcePrefix, SourceRates>,
}

/// Which per-source rate a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceRate {
    Introduction,
    NatTest,
}

impl SourceRateTable {
    /// A client connection from `source` arrived.
    pub(crate) fn link_opened(
        &mut self,
        source: SourcePrefix,
        introductions: RateLimit,
        nat_tests: RateLimit,
    ) {
        self.by_source
            .entry(source)
            .or_insert_with(|| SourceRates {
                links: 0,
                introductions: TokenBucket::new(introductions),
                nat_tests: TokenBucket::new(nat_tests),
            })
            .links += 1;
    }

    /// A client connection from `source` is gone.
    pub(crate) fn link_closed(&mut self, source: SourcePrefix) {
        if let Some(r) = self.by_source.get_mut(&source) {
            r.links = r.links.saturating_sub(1);
            if r.links == 0 {
                self.by_source.remove(&source);
            }
        }
    }

    /// Takes one request of kind `rate` from `source`'s bucket, if it holds one.
    pub(crate) fn try_take(
        &mut self,
        source: SourcePrefix,
        rate: SourceRate,
        limit: RateLimit,
        now: Instant,
    ) -> bool {
        let Some(r) = self.by_source.get_mut(&source) else {
            return false;
        };
        let bucket = match rate {
            SourceRate::Introduction => &mut r.introductions,
            SourceRate::NatTest => &mut r.nat_tests,
        };
        bucket.try_take(limit, now, 1)
    }

    /// Sources with a client connection.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_source.len()
    }
}

/// A count of held things per source, with its total: how the registry and
/// the relay table enforce their per-source quotas.
#[derive(Debug, Default)]
pub(crate) struct SourceCounts {
    by_source: BTreeMap<SourcePrefix, usize>,
    total: usize,
}

impl SourceCounts {
    /// Things `source` holds.
    pub(crate) fn of(&self, source: SourcePrefix) -> usize {
        self.by_source.get(&source).copied().unwrap_or(0)
    }

    /// Things held in all.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    pub(crate) fn add(&mut self, source: SourcePrefix) {
        *self.by_source.entry(source).or_insert(0) += 1;
        self.total += 1;
    }

    pub(crate) fn remove(&mut self, source: SourcePrefix) {
        if let Some(n) = self.by_source.get_mut(&source) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn prefix(s: &str) -> SourcePrefix {
        SourcePrefix::of(s.parse().unwrap())
    }

    #[test]
    fn an_ipv4_address_is_one_source_and_an_ipv6_slash_64_is_one_source() {
        assert_eq!(prefix("192.0.2.1"), SourcePrefix::V4([192, 0, 2, 1]));
        assert_ne!(prefix("192.0.2.1"), prefix("192.0.2.2"));
        assert_eq!(prefix("::ffff:192.0.2.1"), prefix("192.0.2.1"));
        assert_eq!(
            prefix("2001:db8:1:2::1"),
            prefix("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(prefix("2001:db8:1:2::1"), prefix("2001:db8:1:3::1"));
    }

    #[test]
    fn per_source_rates_are_shared_by_every_connection_of_the_source() {
        let t = Instant::now();
        let limit = RateLimit::new(1, 3);
        let (a, b) = (prefix("192.0.2.1"), prefix("192.0.2.2"));
        let mut rates = SourceRateTable::default();
        for _ in 0..100 {
            rates.link_opened(a, limit, limit);
        }
        rates.link_opened(b, limit, limit);
        let taken = (0..100)
            .filter(|_| rates.try_take(a, SourceRate::Introduction, limit, t))
            .count();
        assert_eq!(taken, 3, "100 connections share one burst");
        assert!(
            rates.try_take(a, SourceRate::NatTest, limit, t),
            "another rate"
        );
        assert!(
            rates.try_take(b, SourceRate::Introduction, limit, t),
            "another source"
        );
        assert!(rates.try_take(
            a,
            SourceRate::Introduction,
            limit,
            t + Duration::from_secs(1)
        ));
        for _ in 0..100 {
            rates.link_closed(a);
        }
        assert_eq!(rates.len(), 1);
        assert!(
            !rates.try_take(a, SourceRate::Introduction, limit, t),
            "no connection"
        );
    }

    #[test]
    fn counts_per_source_and_in_total() {
        let (a, b) = (prefix("192.0.2.1"), prefix("2001:db8::1"));
        let mut c = SourceCounts::default();
        c.add(a);
        c.add(a);
        c.add(b);
        assert_eq!((c.of(a), c.of(b), c.total()), (2, 1, 3));
        c.remove(a);
        c.remove(b);
        c.remove(b);
        assert_eq!((c.of(a), c.of(b), c.total()), (1, 0, 1));
    }
}
