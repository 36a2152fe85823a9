#!/usr/bin/env bash
# Issue 17's connect times where UDP is blocked: `srudp listen` and
# `srudp connect` in network namespaces whose routers drop UDP (one side,
# both, over TCP and over TLS, and a listener that reaches only a real
# tinyproxy), three runs per case; prints a Markdown table of the time from
# the connector's start to its `path:` line (median and each run).
#
# Needs root, iproute2, nftables, conntrack and tinyproxy (as srudp-cli's
# NAT tests; .ci/run installs them).
# Usage: sudo scripts/udp-blocked-connect-times.sh [> table.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo test -q -p srudp-cli --test nat -- --ignored --exact udp_blocked_connect_times --nocapture --test-threads 1 2>/dev/null)
printf '%s\n' "$out" | sed -n '/^UDP-BLOCKED-BEGIN$/,/^UDP-BLOCKED-END$/p' | sed '1d;$d'
