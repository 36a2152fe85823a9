//! Where an endpoint stands with its rendezvous server, as the adapters
//! report it to applications: folded from the client's events.

use std::net::SocketAddr;

use srudp_proto::rendezvous::{ClientEvent, ErrorCode, NatBehavior};

/// Where an endpoint stands with its rendezvous server.
///
/// Adapters keep one per endpoint and feed it every [`ClientEvent`] with
/// [`apply`](Self::apply); the default is "never registered".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RendezvousStatus {
    /// Whether the server holds our registration now.
    pub registered: bool,
    /// Our address as the server last observed it (server-reflexive).
    pub observed: Option<SocketAddr>,
    /// How many times we registered over a new link (1 after the first
    /// registration; it grows when the client re-registers by itself after
    /// losing the server, for example across a server restart).
    pub registrations: u64,
    /// Why the server last refused our registration, while it does.
    pub refused: Option<ErrorCode>,
    /// The NAT behaviour test's result, once it ran.
    pub nat: Option<NatBehavior>,
}

impl RendezvousStatus {
    /// Folds one client event into the status. Returns whether the event
    /// was about the status (registration, refusal, loss of the server,
    /// NAT behaviour): then whoever waits for a status change should look
    /// again. Other events leave it untouched and return `false`.
    pub fn apply(&mut self, event: &ClientEvent) -> bool {
        match event {
            ClientEvent::Registered { observed } => {
                tracing::info!(%observed, "registered at the rendezvous server");
                if !self.registered {
                    self.registrations += 1;
                }
                self.registered = true;
                self.refused = None;
                self.observed = Some(*observed);
            }
            ClientEvent::RegistrationRefused { code } => {
                tracing::info!("the rendezvous server refused our registration: {code:?}");
                self.registered = false;
                self.refused = Some(*code);
            }
            ClientEvent::Disconnected { reason } => {
                tracing::info!("lost the rendezvous server ({reason}); reconnecting");
                self.registered = false;
            }
            ClientEvent::NatDetected(behavior) => {
                tracing::info!(%behavior, "NAT behaviour detected");
                self.nat = Some(*behavior);
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn registrations_count_new_links_not_refreshes() {
        let mut s = RendezvousStatus::default();
        assert!(s.apply(&ClientEvent::Registered {
            observed: addr("203.0.113.5:4000")
        }));
        // A refresh over the same link reports the registration again.
        assert!(s.apply(&ClientEvent::Registered {
            observed: addr("203.0.113.5:4001")
        }));
        assert_eq!(s.registrations, 1);
        assert_eq!(s.observed, Some(addr("203.0.113.5:4001")));
        assert!(s.apply(&ClientEvent::Disconnected {
            reason: srudp_proto::CloseReason::IdleTimeout
        }));
        assert!(!s.registered);
        assert!(s.apply(&ClientEvent::Registered {
            observed: addr("203.0.113.5:4002")
        }));
        assert_eq!((s.registered, s.registrations), (true, 2));
    }

    #[test]
    fn a_refusal_is_reported_until_the_next_registration() {
        let mut s = RendezvousStatus::default();
        assert!(s.apply(&ClientEvent::RegistrationRefused {
            code: ErrorCode::RateLimited
        }));
        assert_eq!(
            (s.registered, s.refused),
            (false, Some(ErrorCode::RateLimited))
        );
        s.apply(&ClientEvent::Registered {
            observed: addr("203.0.113.5:4000"),
        });
        assert_eq!(s.refused, None);
    }
}
