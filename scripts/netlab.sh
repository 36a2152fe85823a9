# Shared by the namespace labs (scripts/real-path-lab.sh and
# scripts/tcp-fairness-reference.sh); sourced, not run.

# netlab_link NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B: a veth pair between two
# network namespaces, addressed and up, with segmentation offload and
# receive coalescing off, so packets behave one by one as on a wire.
netlab_link() {
    ip link add name "$2" netns "$1" type veth peer name "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$4" addr add "$6" dev "$5"
    for end in "$1:$2" "$4:$5"; do
        ip netns exec "${end%%:*}" ethtool -K "${end#*:}" tso off gso off gro off 2>/dev/null \
            || echo "warning: could not turn offloads off on ${end#*:}" >&2
        ip -n "${end%%:*}" link set "${end#*:}" up
    done
}

# netlab_teardown TMP PID... -- NAMESPACE...: stops the background
# processes (TERM, then waits for each), deletes the namespaces and the
# scratch folder TMP. For the labs' EXIT traps.
netlab_teardown() {
    local tmp=$1 pid ns
    shift
    while [[ $# -gt 0 && "$1" != "--" ]]; do
        pid=$1
        shift
        [[ -n "$pid" ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ $# -gt 0 ]] && shift
    for ns in "$@"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
