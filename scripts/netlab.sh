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
