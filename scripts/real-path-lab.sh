#!/usr/bin/env bash
# The real-path congestion lab (issue 16): srudp against Linux TCP with
# CUBIC and with BBR, over the same real Linux path, in the same run.
#
#   sudo scripts/real-path-lab.sh [--mbps 50] [--rtt-ms 50] [--mib 32]
#        [--runs 3] [--cases 0,1,5,10,ge] [--transports srudp,cubic,bbr]
#        [--coexist-s 60] [--timeout-s 300] [--seed 1]
#        [--congestion cubic|newreno|bbr] [--log-dir DIR]
#
# Root only (it creates network namespaces); without root it says so and
# exits 1. It takes minutes, so it is not part of the test run; its figures
# go into BENCHMARKS.md with the command line.
#
# Topology (documentation addresses only):
#
#   sender 192.0.2.2 -- router --[tbf: rate, one-BDP tail-drop queue]-- receiver 203.0.113.2
#
# The router forwards each direction through a user-space delay line (a TUN
# device, scripts/tcp_fairness_reference.py delay; this kernel has no
# netem): everything the sender sends waits RTT/2 and meets the case's
# loss there, everything the receiver sends waits RTT/2 and is never lost.
# Then the data goes through the bottleneck: a token bucket at --mbps with
# a tail-drop queue of one bandwidth-delay product. Offloads (TSO, GSO,
# GRO) are off on every interface, so loss and queueing are per packet.
#
# Cases: a number is a random loss percentage on the data direction; `ge`
# is Gilbert–Elliott burst loss (good→bad 1 %, bad→good 30 %, 50 % lost in
# the bad state: about 1.6 % lost, in bursts). Per case, the transports run
# --runs times, interleaved (srudp, cubic, bbr, srudp, …), each moving
# --mib MiB once: srudp with `srudp connect --direct` (stdin to the peer),
# TCP from Python with TCP_CONGESTION set on the socket. A transfer counts
# from the sender's start to the receiver reading the end of the stream.
#
# Output, one JSON line per case:
#   {"case", "srudp_congestion", "mbps", "rtt_ms", "loss", "bytes", "runs",
#    "seconds": {"srudp": [...], "tcp_cubic": [...], "tcp_bbr": [...]},
#    "median_mbytes_per_s": {...}, "link_fraction": {...},
#    "rtt_under_load_ms": {...} (median ping RTT during the transfers),
#    "wire_utilization": {...} (bytes the bottleneck sent, headers
#    included, over rate × seconds: how busy each kept the link, whatever
#    its per-packet overhead),
#    "srudp_vs_tcp_cubic", "srudp_vs_tcp_bbr" (ratios of median rates)}
# A transfer that did not finish within --timeout-s counts as null (and
# its rate as 0). Then, unless --coexist-s 0, one line for the coexistence
# case: one srudp flow and one TCP CUBIC flow share the bottleneck (no
# loss) for --coexist-s seconds: {"case": "coexist_cubic",
# "srudp_share", "tcp_cubic_share", "jain_index", "queue_delay_ms"}; and
# one for two srudp flows, the second starting --coexist-s / 6 seconds
# later: {"case": "coexist_srudp", "flow1_mbytes_per_s",
# "flow2_mbytes_per_s", "jain_index"} over the last half of the run.
# Every case line also carries "base_rtt_ms" (the idle path) and
# "queue_delay_ms" (median RTT under load minus base, per transport), and
# srudp's "srudp_seconds_to_exit" (until both processes exited).
#
# --log-dir DIR runs every srudp process with -vv and keeps its stderr in
# DIR (srudp-N-snd.log / -rcv.log per transfer, coexist-*.log per
# coexistence flow): each ends with the connection's statistics.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
helper="$here/tcp_fairness_reference.py"
# shellcheck source=netlab.sh
source "$here/netlab.sh"

mbps=50
rtt_ms=50
mib=32
runs=3
cases=0,1,5,10,ge
transports=srudp,cubic,bbr
coexist_s=60
timeout_s=300
seed=1
# srudp's congestion controller (`srudp --congestion`); the JSON lines say
# which in "srudp_congestion".
congestion=cubic
# Where srudp's -vv logs go (--log-dir); none kept when empty.
log_dir=

die() {
    echo "real-path-lab: $*" >&2
    exit 1
}

usage() {
    sed -n '4,7p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --mbps) [[ $# -ge 2 ]] || usage; mbps=$2; shift 2 ;;
        --rtt-ms) [[ $# -ge 2 ]] || usage; rtt_ms=$2; shift 2 ;;
        --mib) [[ $# -ge 2 ]] || usage; mib=$2; shift 2 ;;
        --runs) [[ $# -ge 2 ]] || usage; runs=$2; shift 2 ;;
        --cases) [[ $# -ge 2 ]] || usage; cases=$2; shift 2 ;;
        --transports) [[ $# -ge 2 ]] || usage; transports=$2; shift 2 ;;
        --coexist-s) [[ $# -ge 2 ]] || usage; coexist_s=$2; shift 2 ;;
        --timeout-s) [[ $# -ge 2 ]] || usage; timeout_s=$2; shift 2 ;;
        --seed) [[ $# -ge 2 ]] || usage; seed=$2; shift 2 ;;
        --congestion) [[ $# -ge 2 ]] || usage; congestion=$2; shift 2 ;;
        --log-dir) [[ $# -ge 2 ]] || usage; log_dir=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "real-path-lab: unknown argument: $1" >&2; usage ;;
    esac
done

[[ "$mbps" =~ ^[1-9][0-9]{0,3}$ ]] || die "--mbps must be a whole number 1..9999"
[[ "$rtt_ms" =~ ^[1-9][0-9]{0,3}$ && $((rtt_ms % 2)) -eq 0 ]] || die "--rtt-ms must be an even whole number 2..9998"
[[ "$mib" =~ ^[1-9][0-9]{0,4}$ ]] || die "--mib must be a whole number of MiB"
[[ "$runs" =~ ^[1-9][0-9]?$ ]] || die "--runs must be 1..99"
[[ "$coexist_s" =~ ^[0-9]{1,4}$ ]] || die "--coexist-s must be a whole number of seconds"
(( coexist_s == 0 || coexist_s >= 12 )) || die "--coexist-s must be 0 (no coexistence cases) or at least 12"
[[ "$timeout_s" =~ ^[1-9][0-9]{0,4}$ ]] || die "--timeout-s must be a whole number of seconds"
[[ "$seed" =~ ^[0-9]{1,9}$ ]] || die "--seed must be a whole number"
case "$congestion" in cubic|newreno|bbr) ;; *) die "--congestion must be cubic, newreno or bbr" ;; esac
export LAB_CONGESTION=$congestion
if [[ -n "$log_dir" ]]; then
    mkdir -p "$log_dir" || die "cannot create --log-dir $log_dir"
    log_dir=$(cd "$log_dir" && pwd)
fi
IFS=, read -r -a case_list <<<"$cases"
for c in "${case_list[@]}"; do
    [[ "$c" == ge || "$c" =~ ^[0-9]{1,2}(\.[0-9]+)?$ ]] || die "unknown case '$c' (a loss percentage or ge)"
done
IFS=, read -r -a transport_list <<<"$transports"
for t in "${transport_list[@]}"; do
    case "$t" in srudp|cubic|bbr) ;; *) die "unknown transport '$t' (srudp, cubic, bbr)" ;; esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces)"
for tool in ip tc ping ethtool python3 timeout; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -c /dev/net/tun ]] || die "missing /dev/net/tun (the delay line needs TUN)"
available=/proc/sys/net/ipv4/tcp_available_congestion_control
for t in "${transport_list[@]}"; do
    [[ "$t" == srudp ]] && continue
    if ! grep -qw "$t" "$available"; then
        modprobe "tcp_$t" 2>/dev/null || true
        grep -qw "$t" "$available" || die "congestion control $t not available (have: $(cat "$available"))"
    fi
done

srudp=${SRUDP_BIN:-$root/target/release/srudp}
if [[ -z "${SRUDP_BIN:-}" ]]; then
    echo "real-path-lab: building the srudp command (release)" >&2
    (cd "$root" && cargo build --release -q -p srudp-cli) || die "cargo build failed"
fi
[[ -x "$srudp" ]] || die "no srudp binary at $srudp"

prefix="srudp-lab-$$"
ns_s="$prefix-snd"
ns_r="$prefix-router"
ns_c="$prefix-rcv"
all_ns=("$ns_s" "$ns_r" "$ns_c")
tmp=$(mktemp -d "/tmp/$prefix.XXXXXX")
delay_pids=()
bg_pids=()

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    netlab_teardown "$tmp" "${bg_pids[@]}" "${delay_pids[@]}" -- "${all_ns[@]}"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

snd_addr=192.0.2.2
rcv_addr=203.0.113.2
rate_bps=$((mbps * 1000000))
bdp_bytes=$((rate_bps / 8 * rtt_ms / 1000))
(( bdp_bytes >= 3028 )) || bdp_bytes=3028
burst=$((rate_bps / 8 / 1000)) # 1 ms at the rate, at least two frames
(( burst >= 3028 )) || burst=3028
bytes=$((mib * 1048576))

for ns in "${all_ns[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    # Buffers far above what the path holds, for TCP and for srudp's UDP
    # socket (it asks for 4 MiB), so no buffer limits a flow.
    ip netns exec "$ns" sysctl -qw net.ipv4.tcp_rmem="4096 131072 67108864" \
        net.ipv4.tcp_wmem="4096 65536 67108864" net.ipv4.tcp_no_metrics_save=1
done
sysctl -qw net.core.rmem_max=8388608 net.core.wmem_max=8388608 2>/dev/null || true
ip netns exec "$ns_r" sysctl -qw net.ipv4.ip_forward=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0

netlab_link "$ns_s" eth0 "$snd_addr/30" "$ns_r" to-snd 192.0.2.1/30
netlab_link "$ns_c" eth0 "$rcv_addr/30" "$ns_r" to-rcv 203.0.113.1/30
ip -n "$ns_s" route add default via 192.0.2.1
ip -n "$ns_c" route add default via 203.0.113.1
for dev in to-snd to-rcv; do
    ip netns exec "$ns_r" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
done
tc -n "$ns_r" qdisc replace dev to-rcv root tbf rate "${mbps}mbit" burst "$burst" limit "$bdp_bytes"

# start_delay_lines LOSS_ARGS...: one delay line per direction; the data
# direction (from the sender) gets the loss arguments.
start_delay_lines() {
    local dev table iif
    delay_pids=()
    for spec in "dly-data:100:to-snd" "dly-ack:101:to-rcv"; do
        IFS=: read -r dev table iif <<<"$spec"
        local extra=()
        [[ "$dev" == dly-data ]] && extra=("$@")
        ip netns exec "$ns_r" python3 "$helper" delay --dev "$dev" --one-way-ms $((rtt_ms / 2)) \
            --max-s 100000 --seed "$seed" --stats "$tmp/$dev.json" "${extra[@]}" &
        delay_pids+=($!)
        for _ in $(seq 1 100); do
            ip -n "$ns_r" link show "$dev" >/dev/null 2>&1 && break
            sleep 0.05
        done
        ip -n "$ns_r" link show "$dev" >/dev/null 2>&1 || die "the delay line $dev did not start"
        ip -n "$ns_r" link set "$dev" txqueuelen 10000 up
        ip netns exec "$ns_r" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
        ip -n "$ns_r" route replace default dev "$dev" table "$table"
        ip -n "$ns_r" rule add iif "$iif" lookup "$table" pref "$table" 2>/dev/null || true
    done
}

stop_delay_lines() {
    for pid in "${delay_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    delay_pids=()
    for dev in dly-data dly-ack; do
        [[ -f "$tmp/$dev.json" ]] && sed "s/^/real-path-lab: delay line $dev: /" "$tmp/$dev.json" >&2
        rm -f "$tmp/$dev.json"
    done
}

# Keys for srudp --direct: each side pins the other's key (Noise IK).
snd_key=$("$srudp" keygen --out "$tmp/snd.key" 2>/dev/null | tail -n 1 | awk '{print $NF}')
rcv_key=$("$srudp" keygen --out "$tmp/rcv.key" 2>/dev/null | tail -n 1 | awk '{print $NF}')
[[ ${#snd_key} -ge 40 && ${#rcv_key} -ge 40 ]] || die "srudp keygen did not print a key"

now() { date +%s.%N; }

# srudp's verbosity flags (-vv with --log-dir) and where a process's stderr
# goes: log_to NAME prints $log_dir/NAME.log, or /dev/null without one.
verbosity=()
[[ -n "$log_dir" ]] && verbosity=(-vv)
log_to() {
    if [[ -n "$log_dir" ]]; then echo "$log_dir/$1.log"; else echo /dev/null; fi
}
transfers=0

# ping_during SECONDS_MAX OUT: pings the receiver from the sender 5 times a
# second in the background; the caller kills it. Prints the pid.
ping_during() {
    ip netns exec "$ns_s" ping -n -i 0.2 -W 2 -w "$1" "$rcv_addr" >"$2" 2>/dev/null &
    echo $!
}

# tbf_bytes: the bytes the bottleneck has sent so far (headers included).
tbf_bytes() {
    tc -s -n "$ns_r" qdisc show dev to-rcv | sed -n 's/^ *Sent \([0-9]*\) bytes.*/\1/p' | head -n 1
}

# base_rtt: the mean of 5 pings across the idle path, in ms (empty if none
# came back).
base_rtt() {
    ip netns exec "$ns_s" ping -n -q -c 5 -i 0.2 -W 2 "$rcv_addr" \
        | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p'
}

# median_ping FILE: the median RTT of the replies in a ping output, or null.
median_ping() {
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$1" | sort -n | awk '
        { v[NR] = $1 } END { if (NR == 0) print "null"; else print v[int((NR + 1) / 2)] }'
}

# run_srudp: one srudp transfer of $bytes; prints its seconds or null.
run_srudp() {
    local port=$((5000 + RANDOM % 1000)) start end status
    transfers=$((transfers + 1))
    ip netns exec "$ns_c" timeout "$timeout_s" "$srudp" "${verbosity[@]}" --congestion "$congestion" connect --direct "$snd_addr:$port" \
        --peer-key "$snd_key" --key "$tmp/rcv.key" --bind "$rcv_addr:$port" \
        </dev/null 2>"$tmp/srudp-rcv.log" | python3 "$helper" sink >"$tmp/srudp-sink.json" &
    local receiver=$!
    bg_pids+=("$receiver")
    start=$(now)
    status=0
    head -c "$bytes" /dev/zero | ip netns exec "$ns_s" timeout "$timeout_s" "$srudp" "${verbosity[@]}" --congestion "$congestion" connect \
        --direct "$rcv_addr:$port" --peer-key "$rcv_key" --key "$tmp/snd.key" \
        --bind "$snd_addr:$port" >/dev/null 2>"$tmp/srudp-snd.log" || status=$?
    wait "$receiver" || status=$?
    end=$(now)
    bg_pids=()
    if [[ -n "$log_dir" ]]; then
        cp "$tmp/srudp-rcv.log" "$log_dir/srudp-$transfers-rcv.log"
        cp "$tmp/srudp-snd.log" "$log_dir/srudp-$transfers-snd.log"
    fi
    local got last
    read -r got last < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["bytes"], j["last_byte_at"])' "$tmp/srudp-sink.json")
    if [[ $status -ne 0 || "$got" != "$bytes" ]]; then
        echo "real-path-lab: srudp transfer failed (status $status, $got of $bytes bytes): $(tail -n 1 "$tmp/srudp-snd.log")" >&2
        echo null
        return
    fi
    # Timed like TCP, to the receiver reading the last byte; the time until
    # both processes have exited (closing period included) is kept apart.
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f\n", b - a }' >>"$tmp/srudp-exit"
    awk -v a="$start" -v b="$last" 'BEGIN { printf "%.4f\n", b - a }'
}

# run_tcp CC: one TCP transfer of $bytes; prints its seconds or null.
run_tcp() {
    local out
    out=$(python3 "$helper" transfer --sender-ns "$ns_s" --receiver-ns "$ns_c" \
        --receiver-addr "$rcv_addr" --cc "$1" --port $((6000 + RANDOM % 1000)) \
        --bytes "$bytes" --timeout-s "$timeout_s") || { echo null; return; }
    python3 -c 'import json,sys; s=json.loads(sys.argv[1])["seconds"]; print("null" if s is None else s)' "$out"
}

# srudp_metered_flow N RUN_S WINDOW_S: starts srudp flow N (its own ports)
# in the background for RUN_S seconds, its receiver piped into a meter that
# writes $tmp/meter-N.json (the rate over the last WINDOW_S seconds).
meters=()
srudp_metered_flow() {
    local n=$1 run=$2 window=$3 port=$((5000 + RANDOM % 1000 + 1000 * $1))
    ip netns exec "$ns_c" timeout $((run + 30)) "$srudp" "${verbosity[@]}" --congestion "$congestion" connect --direct "$snd_addr:$port" \
        --peer-key "$snd_key" --key "$tmp/rcv.key" --bind "$rcv_addr:$port" </dev/null 2>"$(log_to "coexist-srudp-$n-rcv")" \
        | python3 "$helper" meter --run-s "$run" --window-s "$window" >"$tmp/meter-$n.json" &
    meters+=($!)
    bg_pids+=($!)
    head -c 100000000000 /dev/zero | ip netns exec "$ns_s" timeout "$run" "$srudp" "${verbosity[@]}" --congestion "$congestion" connect \
        --direct "$rcv_addr:$port" --peer-key "$rcv_key" --key "$tmp/snd.key" \
        --bind "$snd_addr:$port" >/dev/null 2>"$(log_to "coexist-srudp-$n-snd")" &
    bg_pids+=($!)
}

# case_line NAME LOSS_JSON: runs every transport --runs times and prints
# the case's JSON line from the collected seconds.
run_case() {
    local name=$1 loss_json=$2 t r secs pid base sent
    : >"$tmp/results"
    : >"$tmp/srudp-exit"
    base=$(base_rtt)
    for ((r = 1; r <= runs; r++)); do
        for t in "${transport_list[@]}"; do
            pid=$(ping_during "$timeout_s" "$tmp/ping-$t-$r")
            sent=$(tbf_bytes)
            if [[ "$t" == srudp ]]; then secs=$(run_srudp); else secs=$(run_tcp "$t"); fi
            sent=$(( $(tbf_bytes) - sent ))
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "$t $secs $(median_ping "$tmp/ping-$t-$r") $sent" >>"$tmp/results"
            echo "real-path-lab: $name run $r: $t ${secs} s" >&2
        done
    done
    python3 - "$tmp/results" "$name" "$loss_json" "$mbps" "$rtt_ms" "$bytes" "$runs" "$tmp/srudp-exit" "$base" <<'EOF'
import json, os, statistics, sys
path, name, loss, mbps, rtt, nbytes, runs, exits, base = sys.argv[1:]
mbps, rtt, nbytes, runs = float(mbps), int(rtt), int(nbytes), int(runs)
label = {"srudp": "srudp", "cubic": "tcp_cubic", "bbr": "tcp_bbr"}
seconds, pings, wire = {}, {}, {}
for line in open(path):
    t, s, p, w = line.split()
    seconds.setdefault(label[t], []).append(None if s == "null" else float(s))
    if s != "null":
        # The bottleneck's busy fraction while the transfer ran: its bytes
        # on the wire (headers included; pings are negligible) over what the
        # rate allows in that time. Packet overhead does not count against it.
        wire.setdefault(label[t], []).append(int(w) * 8 / (mbps * 1e6 * float(s)))
    if p != "null":
        pings.setdefault(label[t], []).append(float(p))
rate = {}
for t, xs in seconds.items():
    rates = [nbytes / s / 1e6 if s else 0.0 for s in xs]
    rate[t] = round(statistics.median(rates), 3)
out = {
    "case": name, "srudp_congestion": os.environ["LAB_CONGESTION"],
    "mbps": mbps, "rtt_ms": rtt, "loss": json.loads(loss),
    "bytes": nbytes, "runs": runs, "seconds": seconds,
    "median_mbytes_per_s": rate,
    "link_fraction": {t: round(r * 1e6 * 8 / (mbps * 1e6), 3) for t, r in rate.items()},
    "rtt_under_load_ms": {t: round(statistics.median(p), 1) for t, p in pings.items()},
    "wire_utilization": {t: round(statistics.median(u), 3) for t, u in wire.items()},
    "base_rtt_ms": float(base) if base else None,
    "srudp_seconds_to_exit": [float(x) for x in open(exits).read().split()],
}
if base:
    out["queue_delay_ms"] = {t: round(statistics.median(p) - float(base), 1) for t, p in pings.items()}
for other in ("tcp_cubic", "tcp_bbr"):
    if "srudp" in rate and other in rate and rate[other] > 0:
        out[f"srudp_vs_{other}"] = round(rate["srudp"] / rate[other], 3)
print(json.dumps(out), flush=True)
EOF
}

for c in "${case_list[@]}"; do
    if [[ "$c" == ge ]]; then
        start_delay_lines --ge 0.01,0.3,50
        run_case "ge_burst" '{"gilbert_elliott": {"p_good_bad": 0.01, "p_bad_good": 0.3, "loss_bad_pct": 50}}'
    else
        start_delay_lines --loss-pct "$c"
        run_case "loss_${c}pct" "{\"random_pct\": $c}"
    fi
    stop_delay_lines
done

if (( coexist_s > 0 )); then
    start_delay_lines
    base=$(base_rtt)
    port=$((5000 + RANDOM % 1000))
    ip netns exec "$ns_c" timeout $((coexist_s + 30)) "$srudp" "${verbosity[@]}" --congestion "$congestion" connect --direct "$snd_addr:$port" \
        --peer-key "$snd_key" --key "$tmp/rcv.key" --bind "$rcv_addr:$port" </dev/null 2>"$(log_to coexist-cubic-rcv)" \
        | python3 "$helper" meter --run-s "$coexist_s" --window-s "$coexist_s" >"$tmp/meter.json" &
    meter=$!
    bg_pids+=("$meter")
    head -c 100000000000 /dev/zero | ip netns exec "$ns_s" timeout "$coexist_s" "$srudp" "${verbosity[@]}" --congestion "$congestion" connect \
        --direct "$rcv_addr:$port" --peer-key "$rcv_key" --key "$tmp/snd.key" \
        --bind "$snd_addr:$port" >/dev/null 2>"$(log_to coexist-cubic-snd)" &
    bg_pids+=($!)
    python3 "$helper" transfer --sender-ns "$ns_s" --receiver-ns "$ns_c" --receiver-addr "$rcv_addr" \
        --cc cubic --port $((6000 + RANDOM % 1000)) --bytes 100000000000 \
        --timeout-s "$coexist_s" >"$tmp/tcp.json" &
    tcp=$!
    bg_pids+=("$tcp")
    pid=$(ping_during "$coexist_s" "$tmp/ping-coexist")
    # Both flows end by themselves after --coexist-s and print their bytes.
    wait "$tcp" || true
    wait "$meter" || true
    for p in "${bg_pids[@]}" "$pid"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    bg_pids=()
    loaded=$(median_ping "$tmp/ping-coexist")
    python3 - "$tmp/meter.json" "$tmp/tcp.json" "$base" "$loaded" "$coexist_s" "$mbps" <<'EOF'
import json, os, sys
meter, tcp, base, loaded, run_s, mbps = sys.argv[1:]
s = json.load(open(meter))["total_bytes"] if open(meter).read().strip() else 0
t = json.load(open(tcp))["bytes"] if open(tcp).read().strip() else 0
total = s + t
share = (s / total, t / total) if total else (0.0, 0.0)
jain = (s + t) ** 2 / (2 * (s * s + t * t)) if total else 0.0
print(json.dumps({
    "case": "coexist_cubic", "srudp_congestion": os.environ["LAB_CONGESTION"],
    "mbps": float(mbps), "run_s": int(run_s),
    "srudp_bytes": s, "tcp_cubic_bytes": t,
    "srudp_share": round(share[0], 3), "tcp_cubic_share": round(share[1], 3),
    "jain_index": round(jain, 3),
    "link_fraction": round(total * 8 / (float(mbps) * 1e6 * int(run_s)), 3),
    "base_rtt_ms": float(base) if base else None,
    "queue_delay_ms": round(float(loaded) - float(base), 1) if base and loaded != "null" else None,
}), flush=True)
EOF
    stop_delay_lines

    # Two srudp flows: the second starts --coexist-s / 6 seconds after the
    # first (10 s for 60), as in the simulated fairness bench; Jain's index
    # over each flow's rate in the last half of the run.
    start_delay_lines
    late=$((coexist_s / 6))
    window=$((coexist_s / 2))
    srudp_metered_flow 1 "$coexist_s" "$window"
    sleep "$late"
    srudp_metered_flow 2 $((coexist_s - late)) "$window"
    for m in "${meters[@]}"; do wait "$m" || true; done
    for p in "${bg_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    bg_pids=()
    meters=()
    python3 - "$tmp/meter-1.json" "$tmp/meter-2.json" "$coexist_s" "$late" "$window" "$mbps" <<'EOF'
import json, os, sys
m1, m2, run_s, late, window, mbps = sys.argv[1:]
def rate(path):
    text = open(path).read().strip()
    return json.loads(text)["bytes_per_s_last_window"] if text else 0.0
a, b = rate(m1), rate(m2)
jain = (a + b) ** 2 / (2 * (a * a + b * b)) if a + b else 0.0
print(json.dumps({
    "case": "coexist_srudp", "srudp_congestion": os.environ["LAB_CONGESTION"],
    "mbps": float(mbps), "run_s": int(run_s), "second_flow_starts_s": int(late),
    "window_s": int(window),
    "flow1_mbytes_per_s": round(a / 1e6, 3), "flow2_mbytes_per_s": round(b / 1e6, 3),
    "jain_index": round(jain, 3),
    "link_fraction": round((a + b) * 8 / (float(mbps) * 1e6), 3),
}), flush=True)
EOF
    stop_delay_lines
fi
