#!/usr/bin/env bash
# The NAT matrix of NAT.md: `srudp listen` and `srudp connect` behind every
# pair of NAT kinds (port-preserving masquerade with and without an input
# firewall, `masquerade random`, `masquerade fully-random`), without and
# with a PCP or a UPnP-IGD port mapping on the listener's router, each in fresh
# network namespaces; prints a Markdown table: direct / relayed / failed and
# the time from the connector's start to its `path:` line (to its direct
# path for "relayed, then direct": the hard-NAT round of spec §4.4).
#
# Needs root, iproute2, nftables and conntrack (as srudp-cli's NAT tests).
# Usage: sudo scripts/nat-matrix.sh [> table.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo test -q -p srudp-cli --test nat -- --ignored --exact nat_matrix --nocapture --test-threads 1 2>/dev/null)
printf '%s\n' "$out" | sed -n '/^NAT-MATRIX-BEGIN$/,/^NAT-MATRIX-END$/p' | sed '1d;$d'
