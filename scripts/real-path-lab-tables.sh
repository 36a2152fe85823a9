#!/usr/bin/env bash
# Every table of issue 16 from the real-path lab, one command (root; about
# 20 minutes on an otherwise idle machine):
#
#   sudo SRUDP_BIN=target/release/srudp scripts/real-path-lab-tables.sh [--congestion bbr|cubic|newreno]
#
# 1. 50 Mbit/s, 50 ms, 32 MiB, medians of 3: 0 % loss against TCP CUBIC and
#    TCP BBR, then the coexistence cases (60 s with one TCP CUBIC flow; two
#    srudp flows).
# 2. The same path at 1 %, 5 %, 10 % and Gilbert–Elliott loss against TCP
#    BBR (TCP CUBIC does not finish these in minutes: 0.31 MB/s at 1 %).
# 3. 100 Mbit/s, 20 ms and 10 Mbit/s, 200 ms (8 MiB): 0 % against both TCPs,
#    1 % and 5 % against TCP BBR.
#
# It prints the JSON lines of scripts/real-path-lab.sh, each preceded by a
# line {"table": ...} naming the invocation.

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
congestion=bbr
while [[ $# -gt 0 ]]; do
    case "$1" in
        --congestion) [[ $# -ge 2 ]] || { echo "real-path-lab-tables: --congestion needs a value" >&2; exit 2; }
            congestion=$2; shift 2 ;;
        *) echo "real-path-lab-tables: unknown argument: $1" >&2; exit 2 ;;
    esac
done

table() {
    local name=$1
    shift
    printf '{"table": "%s", "args": "%s"}\n' "$name" "$*"
    "$here/real-path-lab.sh" --congestion "$congestion" "$@"
}

table 50mbit_50ms_clean --cases 0 --runs 3 --coexist-s 60 --timeout-s 120
table 50mbit_50ms_lossy --cases 1,5,10,ge --runs 3 --transports srudp,bbr --coexist-s 0 --timeout-s 120
table 100mbit_20ms_clean --mbps 100 --rtt-ms 20 --cases 0 --runs 3 --coexist-s 0 --timeout-s 120
table 100mbit_20ms_lossy --mbps 100 --rtt-ms 20 --cases 1,5 --runs 3 --transports srudp,bbr --coexist-s 0 --timeout-s 120
table 10mbit_200ms_clean --mbps 10 --rtt-ms 200 --mib 8 --cases 0 --runs 3 --coexist-s 0 --timeout-s 120
table 10mbit_200ms_lossy --mbps 10 --rtt-ms 200 --mib 8 --cases 1,5 --runs 3 --transports srudp,bbr --coexist-s 0 --timeout-s 120
