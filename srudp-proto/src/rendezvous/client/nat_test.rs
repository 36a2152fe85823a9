//! The client's side of a NAT behaviour test (spec §11.7).
//!
//! 1. The client sends NatTest. The server sends a probe with a fresh
//!    `filter_token` from a third, send-only socket to the client's observed
//!    address, and answers NatTestStarted with both tokens.
//! 2. The client waits `nat_filter_wait` for that unsolicited probe: if it
//!    arrives, its NAT's filtering is open. The client never sends to the
//!    third socket, so nothing it did opened the NAT for it, and the
//!    conntrack entry the probe may leave on a router clashes with nothing
//!    the client sends later.
//! 3. Only then does the client send probes with `mapping_token` to the
//!    second address; the server reports the address it saw them from
//!    (NatObserved). The same address as the one observed by the main
//!    socket means endpoint-independent mapping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rendezvous::message::RequestId;
use crate::wire::NAT_PROBE_TOKEN_LEN;

type Token = [u8; NAT_PROBE_TOKEN_LEN];

/// Unsolicited probes remembered before their token is known.
const MAX_EARLY_PROBES: usize = 4;
/// Gap between two of the client's probes to the second address.
const PROBE_GAP: Duration = Duration::from_millis(250);

/// What a finished test saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NatObservation {
    /// Whether the server's unsolicited probe arrived (`None`: the test did
    /// not get that far).
    pub(super) filter_open: Option<bool>,
    /// Our address as seen by the server's second address.
    pub(super) via_alt: Option<SocketAddr>,
}

#[derive(Debug, Default)]
pub(super) enum NatTest {
    #[default]
    Idle,
    /// NatTest sent; the unsolicited probe may arrive before the answer.
    Requested {
        request: RequestId,
        deadline: Instant,
        early: Vec<Token>,
    },
    /// Waiting for the unsolicited probe.
    Filtering {
        request: RequestId,
        filter_token: Token,
        mapping_token: Token,
        alt: SocketAddr,
        filter_open: bool,
        until: Instant,
    },
    /// Sending our probes to the second address.
    Mapping {
        request: RequestId,
        mapping_token: Token,
        alt: SocketAddr,
        filter_open: bool,
        next_send: Instant,
        deadline: Instant,
    },
}

impl NatTest {
    pub(super) fn is_running(&self) -> bool {
        !matches!(self, NatTest::Idle)
    }

    pub(super) fn start(&mut self, request: RequestId, deadline: Instant) {
        *self = NatTest::Requested {
            request,
            deadline,
            early: Vec::new(),
        };
    }

    /// A NatProbe datagram arrived.
    pub(super) fn on_probe(&mut self, token: Token) {
        match self {
            NatTest::Requested { early, .. } if early.len() < MAX_EARLY_PROBES => {
                early.push(token);
            }
            NatTest::Filtering {
                filter_token,
                filter_open,
                ..
            } if *filter_token == token => *filter_open = true,
            _ => {}
        }
    }

    /// The server started the test.
    pub(super) fn on_started(
        &mut self,
        now: Instant,
        request: RequestId,
        alt: SocketAddr,
        filter_token: Token,
        mapping_token: Token,
        wait: Duration,
    ) {
        let NatTest::Requested {
            request: r, early, ..
        } = self
        else {
            return;
        };
        if *r != request {
            return;
        }
        let filter_open = early.contains(&filter_token);
        *self = NatTest::Filtering {
            request,
            filter_token,
            mapping_token,
            alt,
            filter_open,
            until: now + wait,
        };
    }

    /// The server saw our probe from `observed`: the test is over.
    pub(super) fn on_observed(
        &mut self,
        request: RequestId,
        observed: SocketAddr,
    ) -> Option<NatObservation> {
        match self {
            NatTest::Mapping {
                request: r,
                filter_open,
                ..
            } if *r == request => {
                let result = NatObservation {
                    filter_open: Some(*filter_open),
                    via_alt: Some(observed),
                };
                *self = NatTest::Idle;
                Some(result)
            }
            _ => None,
        }
    }

    /// The server refused the test.
    pub(super) fn on_error(&mut self, request: RequestId) -> Option<NatObservation> {
        match self {
            NatTest::Requested { request: r, .. } if *r == request => {
                *self = NatTest::Idle;
                Some(NatObservation {
                    filter_open: None,
                    via_alt: None,
                })
            }
            _ => None,
        }
    }

    pub(super) fn request(&self) -> Option<RequestId> {
        match self {
            NatTest::Idle => None,
            NatTest::Requested { request, .. }
            | NatTest::Filtering { request, .. }
            | NatTest::Mapping { request, .. } => Some(*request),
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            NatTest::Idle => None,
            NatTest::Requested { deadline, .. } => Some(*deadline),
            NatTest::Filtering { until, .. } => Some(*until),
            NatTest::Mapping {
                next_send,
                deadline,
                ..
            } => Some((*next_send).min(*deadline)),
        }
    }

    /// Advances the test at `now`. Returns a probe to send (destination and
    /// token), and the observation when the test ended without an answer.
    pub(super) fn on_timeout(
        &mut self,
        now: Instant,
        probe_timeout: Duration,
    ) -> (Option<(SocketAddr, Token)>, Option<NatObservation>) {
        match self {
            NatTest::Requested { deadline, .. } if *deadline <= now => {
                *self = NatTest::Idle;
                let none = NatObservation {
                    filter_open: None,
                    via_alt: None,
                };
                (None, Some(none))
            }
            NatTest::Filtering {
                request,
                mapping_token,
                alt,
                filter_open,
                until,
                ..
            } if *until <= now => {
                let probe = (*alt, *mapping_token);
                *self = NatTest::Mapping {
                    request: *request,
                    mapping_token: *mapping_token,
                    alt: *alt,
                    filter_open: *filter_open,
                    next_send: now + PROBE_GAP,
                    deadline: now + probe_timeout,
                };
                (Some(probe), None)
            }
            NatTest::Mapping {
                filter_open,
                deadline,
                ..
            } if *deadline <= now => {
                let result = NatObservation {
                    filter_open: Some(*filter_open),
                    via_alt: None,
                };
                *self = NatTest::Idle;
                (None, Some(result))
            }
            NatTest::Mapping {
                mapping_token,
                alt,
                next_send,
                ..
            } if *next_send <= now => {
                *next_send = now + PROBE_GAP;
                (Some((*alt, *mapping_token)), None)
            }
            _ => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_probe_that_arrives_before_the_answer_counts_and_ours_waits_for_the_verdict() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut test = NatTest::default();
        test.start(7, t + ms(5000));
        test.on_probe([1; 16]);
        test.on_started(
            t + ms(10),
            7,
            sa("203.0.113.9:2"),
            [1; 16],
            [2; 16],
            ms(500),
        );
        // Nothing is sent to the second address during the filtering wait.
        assert_eq!(test.on_timeout(t + ms(400), ms(3000)), (None, None));
        assert_eq!(test.poll_timeout(), Some(t + ms(510)));
        let (probe, done) = test.on_timeout(t + ms(510), ms(3000));
        assert_eq!(probe, Some((sa("203.0.113.9:2"), [2; 16])));
        assert_eq!(done, None);
        // Resent until answered.
        let (probe, _) = test.on_timeout(t + ms(760), ms(3000));
        assert!(probe.is_some());
        assert_eq!(
            test.on_observed(8, sa("198.51.100.1:9")),
            None,
            "wrong request"
        );
        assert_eq!(
            test.on_observed(7, sa("198.51.100.1:9")),
            Some(NatObservation {
                filter_open: Some(true),
                via_alt: Some(sa("198.51.100.1:9"))
            })
        );
        assert!(!test.is_running());
    }

    #[test]
    fn early_probes_are_remembered_up_to_a_bound_and_only_the_announced_token_counts() {
        // Spec §11.7: probes that arrive before NatTestStarted are kept (at
        // most MAX_EARLY_PROBES tokens, whatever a sender floods), and count
        // once the answer names their token.
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut test = NatTest::default();
        test.start(3, t + ms(5000));
        for i in 0..1000u32 {
            test.on_probe([(i % 200) as u8 + 10; 16]);
        }
        let NatTest::Requested { early, .. } = &test else {
            panic!("still waiting for the answer");
        };
        assert_eq!(early.len(), MAX_EARLY_PROBES, "bounded memory");
        assert!(early.capacity() <= 2 * MAX_EARLY_PROBES);
        // None of the remembered tokens is the announced one: filtered.
        test.on_started(t, 3, sa("203.0.113.9:2"), [1; 16], [2; 16], ms(500));
        assert!(matches!(
            test,
            NatTest::Filtering {
                filter_open: false,
                ..
            }
        ));
        // The genuine early probe, arriving first, counts.
        let mut honest = NatTest::default();
        honest.start(4, t + ms(5000));
        honest.on_probe([1; 16]);
        honest.on_probe([9; 16]);
        honest.on_started(t, 4, sa("203.0.113.9:2"), [1; 16], [2; 16], ms(500));
        assert!(matches!(
            honest,
            NatTest::Filtering {
                filter_open: true,
                ..
            }
        ));
    }

    #[test]
    fn no_probe_means_filtered_and_no_answer_means_unknown_mapping() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut test = NatTest::default();
        test.start(1, t + ms(5000));
        test.on_started(t, 1, sa("203.0.113.9:2"), [1; 16], [2; 16], ms(500));
        test.on_probe([9; 16]); // someone else's token
        let _ = test.on_timeout(t + ms(500), ms(1000));
        let (_, done) = test.on_timeout(t + ms(1500), ms(1000));
        assert_eq!(
            done,
            Some(NatObservation {
                filter_open: Some(false),
                via_alt: None
            })
        );
    }
}
