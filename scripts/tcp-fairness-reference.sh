#!/usr/bin/env bash
# Linux kernel TCP in the `fairness` bench's scenario, on real network
# namespaces: a reference for the simulated srudp figures, not a test.
#
#   sudo scripts/tcp-fairness-reference.sh [--cc cubic|reno|bbr] [--mbps N]
#        [--late-start-ms N] [--run-s N] [--series] [--check]
#
# Topology (documentation addresses only):
#
#   sender1 192.0.2.2 ----\
#                          router --[tbf: N Mbit/s, 1 BDP tail drop]-- receiver 203.0.113.2
#   sender2 198.51.100.2 -/
#
# Scenario (as benches/src/two_flows.rs): base RTT 50 ms, the router's
# egress towards the receiver is the bottleneck (token bucket at --mbps,
# tail-drop queue of one bandwidth-delay product, rate x 50 ms in bytes).
# Flow 1 starts at 0 s, flow 2 at --late-start-ms, the run lasts --run-s
# (70) s; throughput is what the receiving application read per whole
# second. Prints one JSON line with the bench's field names (per-second
# lines first with --series). --check instead pings both paths and runs
# one flow alone for 20 s, to check the RTT and the rate.
#
# Delay: this kernel has no netem, so a small user-space delay line
# (scripts/tcp_fairness_reference.py delay, a TUN device in the router
# namespace) holds every packet 25 ms on its way in from a sender or from
# the receiver, before the router forwards it. That is the 12.5 ms sender
# access + 12.5 ms receiver access of each direction, moved in front of the
# bottleneck queue; with the same constant delay on both flows' paths this
# changes no flow's RTT or feedback loop, only where along the path the time
# is spent. The delay line keeps packet order and reports how late it
# released packets (stderr, after the run).
#
# Several instances may run in parallel: each uses its own namespaces
# (srudp-tcpref-<pid>-*), removed on exit, error or interrupt.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
helper="$here/tcp_fairness_reference.py"
# shellcheck source=netlab.sh
source "$here/netlab.sh"

cc=cubic
mbps=100
late_ms=10000
run_s=70
series=0
check=0

die() {
    echo "tcp-fairness-reference: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 [--cc cubic|reno|bbr] [--mbps N] [--late-start-ms N] [--run-s N] [--series] [--check]" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cc) [[ $# -ge 2 ]] || usage; cc=$2; shift 2 ;;
        --mbps) [[ $# -ge 2 ]] || usage; mbps=$2; shift 2 ;;
        --late-start-ms) [[ $# -ge 2 ]] || usage; late_ms=$2; shift 2 ;;
        --run-s) [[ $# -ge 2 ]] || usage; run_s=$2; shift 2 ;;
        --series) series=1; shift ;;
        --check) check=1; shift ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

[[ "$mbps" =~ ^[1-9][0-9]{0,4}$ ]] || die "--mbps must be a whole number 1..99999"
[[ "$late_ms" =~ ^[0-9]{1,7}$ ]] || die "--late-start-ms must be a whole number of ms"
[[ "$run_s" =~ ^[1-9][0-9]{0,3}$ ]] || die "--run-s must be a whole number of seconds"
case "$cc" in cubic|reno|bbr) ;; *) die "--cc must be cubic, reno or bbr" ;; esac
if [[ $check -eq 0 ]] && (( late_ms >= (run_s - 30) * 1000 )); then
    die "--late-start-ms must leave the last 30 s of the run to both flows"
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces)"
for tool in ip tc ping ethtool python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -f "$helper" ]] || die "missing helper: $helper"
[[ -c /dev/net/tun ]] || die "missing /dev/net/tun (the delay line needs TUN)"
available=/proc/sys/net/ipv4/tcp_available_congestion_control
if ! grep -qw "$cc" "$available"; then
    modprobe "tcp_$cc" 2>/dev/null || true
    grep -qw "$cc" "$available" || die "congestion control $cc not available (have: $(cat "$available"))"
fi

prefix="srudp-tcpref-$$"
ns_s1="$prefix-s1"
ns_s2="$prefix-s2"
ns_r="$prefix-router"
ns_rcv="$prefix-rcv"
all_ns=("$ns_s1" "$ns_s2" "$ns_r" "$ns_rcv")
tmp=$(mktemp -d "/tmp/$prefix.XXXXXX")
delay_pid=
flows_pid=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    netlab_teardown "$tmp" $flows_pid $delay_pid -- "${all_ns[@]}"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rate_bps=$((mbps * 1000000))
bdp_bytes=$((rate_bps / 8 / 20)) # 50 ms
# Token bucket depth: 1 ms at the rate, at least two full frames.
burst=$((rate_bps / 8 / 1000))
(( burst >= 3028 )) || burst=3028
one_way_ms=25

for ns in "${all_ns[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    # Buffers far above the ~1.25 MB the path can hold (BDP + queue at
    # 100 Mbit/s), so neither flow control nor the send buffer limits a flow.
    ip netns exec "$ns" sysctl -qw net.ipv4.tcp_rmem="4096 131072 33554432" \
        net.ipv4.tcp_wmem="4096 65536 33554432" net.ipv4.tcp_no_metrics_save=1
done
ip netns exec "$ns_r" sysctl -qw net.ipv4.ip_forward=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0

netlab_link "$ns_s1" eth0 192.0.2.2/30 "$ns_r" to-s1 192.0.2.1/30
netlab_link "$ns_s2" eth0 198.51.100.2/30 "$ns_r" to-s2 198.51.100.1/30
netlab_link "$ns_rcv" eth0 203.0.113.2/30 "$ns_r" to-rcv 203.0.113.1/30
ip -n "$ns_s1" route add default via 192.0.2.1
ip -n "$ns_s2" route add default via 198.51.100.1
ip -n "$ns_rcv" route add default via 203.0.113.1
for dev in to-s1 to-s2 to-rcv; do
    ip netns exec "$ns_r" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
done

# The bottleneck: token bucket at the rate, tail-drop byte queue of one BDP.
tc -n "$ns_r" qdisc replace dev to-rcv root tbf rate "${mbps}mbit" burst "$burst" limit "$bdp_bytes"

# The delay line: everything that enters the router from a sender or the
# receiver goes through the TUN device once (table 100), comes back in on
# it after 25 ms and is then forwarded by the main table.
ip netns exec "$ns_r" python3 "$helper" delay --dev delay0 --one-way-ms "$one_way_ms" \
    --max-s $((run_s + 120)) --stats "$tmp/delay.json" &
delay_pid=$!
for _ in $(seq 1 100); do
    ip -n "$ns_r" link show delay0 >/dev/null 2>&1 && break
    kill -0 "$delay_pid" 2>/dev/null || die "the delay line exited early"
    sleep 0.05
done
ip -n "$ns_r" link show delay0 >/dev/null 2>&1 || die "the delay line's TUN device did not appear"
ip -n "$ns_r" link set delay0 txqueuelen 10000 up
ip netns exec "$ns_r" sysctl -qw net.ipv4.conf.delay0.rp_filter=0
ip -n "$ns_r" route add default dev delay0 table 100
for dev in to-s1 to-s2 to-rcv; do
    ip -n "$ns_r" rule add iif "$dev" lookup 100 pref 100
done

# Base RTT: ping both senders' paths (small packets, so no queueing).
for ns in "$ns_s1" "$ns_s2"; do
    out=$(ip netns exec "$ns" ping -n -q -c 5 -i 0.2 -W 2 203.0.113.2) || die "ping from $ns failed"
    avg=$(sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p' <<<"$out")
    echo "base RTT from ${ns#"$prefix"-}: avg ${avg} ms" >&2
    awk -v a="$avg" 'BEGIN { exit !(a >= 49.5 && a <= 55) }' \
        || die "base RTT ${avg} ms is not 50 ms: the delay line is not keeping up"
done

flows=(python3 "$helper" flows
    --sender1-ns "$ns_s1" --sender2-ns "$ns_s2" --receiver-ns "$ns_rcv"
    --sender1-addr 192.0.2.2 --sender2-addr 198.51.100.2 --receiver-addr 203.0.113.2
    --cc "$cc" --mbps "$mbps")
if [[ $check -eq 1 ]]; then
    flows+=(--single-flow --run-s 20 --series)
else
    flows+=(--late-start-ms "$late_ms" --run-s "$run_s")
    [[ $series -eq 1 ]] && flows+=(--series)
fi
# In the background and waited for, so that an interrupt is handled at
# once rather than after the run.
"${flows[@]}" &
flows_pid=$!
wait "$flows_pid" || die "the flows failed (exit status $?)"
flows_pid=

# Diagnostics on stderr: the bottleneck's drops and the delay line's timing.
tc -n "$ns_r" -s qdisc show dev to-rcv | sed 's/^/bottleneck: /' >&2
tc -n "$ns_r" -s qdisc show dev delay0 | sed 's/^/delay-line qdisc: /' >&2
kill -TERM "$delay_pid" 2>/dev/null || true
wait "$delay_pid" 2>/dev/null || true
delay_pid=
[[ -f "$tmp/delay.json" ]] && sed 's/^/delay line: /' "$tmp/delay.json" >&2
exit 0
