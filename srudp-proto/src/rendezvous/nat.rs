//! What a client learns about its own NAT (spec §11.7).

use std::fmt;

/// How the NAT in front of a client maps its socket to public addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatMapping {
    /// The server saw one of the client's own host addresses: no NAT.
    NotBehindNat,
    /// The same public address whatever the destination (a "cone" NAT):
    /// peers can reach the client at the address the server observed.
    EndpointIndependent,
    /// A different public address for a different destination ("symmetric"
    /// NAT): the observed address is useless to peers, hole punching toward
    /// the client rarely works, and its connections usually need the relay.
    EndpointDependent,
    /// The test could not tell (no second server address, or no answer).
    Unknown,
}

/// Which unsolicited packets the NAT in front of a client lets in.
///
/// The test sends a probe from the server's second address, which the
/// client never contacted. If that address differs from the first in port
/// only, `Open` rules out port-dependent filtering but not address-dependent
/// filtering; with a second IP address it means endpoint-independent
/// filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatFiltering {
    /// The unsolicited probe got in.
    Open,
    /// It did not: only sources the client sent to get in.
    Filtered,
    /// The test could not tell.
    Unknown,
}

/// The result of a NAT behaviour test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatBehavior {
    /// How the client's socket is mapped.
    pub mapping: NatMapping,
    /// What the mapping lets in.
    pub filtering: NatFiltering,
}

impl NatBehavior {
    /// Nothing known.
    pub const UNKNOWN: NatBehavior = NatBehavior {
        mapping: NatMapping::Unknown,
        filtering: NatFiltering::Unknown,
    };
}

impl fmt::Display for NatBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mapping = match self.mapping {
            NatMapping::NotBehindNat => "no NAT",
            NatMapping::EndpointIndependent => "endpoint-independent mapping",
            NatMapping::EndpointDependent => "endpoint-dependent (symmetric) mapping",
            NatMapping::Unknown => "unknown mapping",
        };
        let filtering = match self.filtering {
            NatFiltering::Open => "open filtering",
            NatFiltering::Filtered => "filtering unsolicited packets",
            NatFiltering::Unknown => "unknown filtering",
        };
        write!(f, "{mapping}, {filtering}")
    }
}
