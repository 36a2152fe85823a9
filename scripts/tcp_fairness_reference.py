#!/usr/bin/env python3
"""Helper for scripts/tcp-fairness-reference.sh and scripts/real-path-lab.sh.

Subcommands, all run as root by those shell scripts, never by hand:

``delay``
    Opens a TUN device in the router's network namespace and sends every
    packet it reads back into the kernel a fixed time later, in order. This
    kernel has no netem (CONFIG_NET_SCH_NETEM is off and there are no
    modules), so the path's propagation delay is made here. The router's
    policy routing sends everything arriving from a sender or the receiver
    through this device once; the packet then comes back in on the TUN
    device and is forwarded normally, through the bottleneck's queue. Packets
    keep their order (one FIFO; every packet gets the same delay). On exit it
    writes how late packets were released, so that a run whose delay line
    fell behind can be told apart. It can also lose packets: independently
    with ``--loss-pct``, or in bursts with ``--ge P_GB,P_BG,LOSS_BAD_PCT``
    (a Gilbert–Elliott chain: from the good state, where nothing is lost, a
    packet moves to the bad state with probability P_GB; from the bad state,
    where LOSS_BAD_PCT % are lost, back with P_BG), from a seeded generator.

``flows``
    Creates the sockets inside the namespaces (setns(2) through ctypes), runs
    one or two TCP bulk flows with the chosen congestion control
    (TCP_CONGESTION per socket) and counts, per flow, the bytes the receiving
    application read in each whole second of a monotonic clock started when
    flow 1 starts. Prints the same JSON fields as the simulated `fairness`
    bench (benches/src/two_flows.rs), with the same definitions.

``transfer``
    One TCP connection from a sender namespace to a receiver namespace with
    the chosen congestion control moves ``--bytes`` bytes; prints one JSON
    line with the seconds from the start of ``connect()`` to the receiver
    reading the sender's end of stream (null if ``--timeout-s`` passed).

``sink``
    Reads its standard input to the end (an srudp receiver piped into it)
    and prints one JSON line: the bytes read, the wall-clock time
    (``time.time()``, the clock of ``date +%s.%N``) at which the last byte
    was read, and the time of the end of file. The lab times an srudp
    transfer to its last byte, as ``transfer`` times TCP to the receiver
    reading the end of the stream; the end of file comes only when the
    srudp process exits, after its closing period.

``meter``
    Counts the bytes on its standard input for ``--run-s`` seconds and
    prints one JSON line with the bytes per second over the last
    ``--window-s`` seconds (for an srudp flow piped into it).

Only the Python 3 standard library is used.
"""

import argparse
import collections
import ctypes
import fcntl
import json
import os
import random
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
# <sched.h>
CLONE_NEWNET = 0x40000000
# <netinet/tcp.h>
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
TCP_INFO = getattr(socket, "TCP_INFO", 11)

WINDOW_S = 30


class Stop(Exception):
    """Raised from the SIGTERM/SIGINT handler to leave the delay loop."""


def _stop(_signum, _frame):
    # Once is enough: a second signal must not interrupt writing the stats.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Stop()


# --------------------------------------------------------------------------
# delay line


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


class Loss:
    """Which packets the delay line drops: none, independently, or in
    Gilbert–Elliott bursts; seeded, so one seed gives one loss pattern."""

    def __init__(self, loss_pct, ge, seed):
        self.rng = random.Random(seed)
        self.p = loss_pct / 100.0
        self.ge = None
        if ge:
            p_gb, p_bg, loss_bad = (float(v) for v in ge.split(","))
            if not (0 <= p_gb <= 1 and 0 < p_bg <= 1 and 0 <= loss_bad <= 100):
                raise SystemExit("--ge wants P_GB,P_BG,LOSS_BAD_PCT with 0<=P<=1")
            self.ge = (p_gb, p_bg, loss_bad / 100.0)
        self.bad = False
        self.dropped = 0

    def drop(self):
        if self.ge is not None:
            p_gb, p_bg, loss_bad = self.ge
            if self.bad:
                if self.rng.random() < p_bg:
                    self.bad = False
            elif self.rng.random() < p_gb:
                self.bad = True
            lost = self.bad and self.rng.random() < loss_bad
        else:
            lost = self.p > 0 and self.rng.random() < self.p
        self.dropped += lost
        return lost


def run_delay(args):
    delay = args.one_way_ms / 1000.0
    loss = Loss(args.loss_pct, args.ge, args.seed)
    fd = open_tun(args.dev)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    queue = collections.deque()
    # Lateness of each release against its due time, in 100 µs buckets;
    # the last bucket holds everything from 10 ms on.
    buckets = [0] * 101
    packets = 0
    write_errors = 0
    max_late = 0.0
    max_queued = 0
    deadline = time.monotonic() + args.max_s
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            timeout = min(queue[0][0] - now if queue else 0.5, deadline - now)
            readable = True
            if timeout > 0:
                readable = bool(select.select([fd], [], [], timeout)[0])
            if readable:
                # A bounded batch per pass, so releases are never starved.
                for _ in range(512):
                    try:
                        pkt = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if not loss.drop():
                        queue.append((time.monotonic() + delay, pkt))
                max_queued = max(max_queued, len(queue))
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                due, pkt = queue.popleft()
                try:
                    os.write(fd, pkt)
                except OSError:
                    write_errors += 1
                late = now - due
                max_late = max(max_late, late)
                buckets[min(int(late * 10_000), 100)] += 1
                packets += 1
    except Stop:
        pass
    finally:
        stats = {
            "packets": packets,
            "dropped": loss.dropped,
            "write_errors": write_errors,
            "max_queued_packets": max_queued,
            "max_late_ms": round(max_late * 1e3, 3),
        }
        for q in (50, 99, 99.9):
            stats[f"p{q}_late_ms"] = _bucket_percentile(buckets, packets, q)
        if args.stats:
            with open(args.stats, "w", encoding="utf-8") as f:
                f.write(json.dumps(stats) + "\n")
        os.close(fd)


def _bucket_percentile(buckets, total, q):
    if total == 0:
        return None
    need = total * q / 100.0
    seen = 0
    for i, n in enumerate(buckets):
        seen += n
        if seen >= need:
            return round((i + 1) / 10.0, 1)  # upper edge of the bucket, ms
    return None


# --------------------------------------------------------------------------
# flows

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def socket_in(ns, make):
    """Creates a socket inside network namespace `ns`; the calling thread
    goes back to its own namespace afterwards (a socket keeps the namespace
    it was created in)."""
    home = "/proc/thread-self/ns/net"
    home_fd = os.open(home, os.O_RDONLY)
    try:
        enter_netns(f"/run/netns/{ns}")
        try:
            return make()
        finally:
            if _libc.setns(home_fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home")
    finally:
        os.close(home_fd)


def tcp_listener(addr, port):
    """A listening TCP socket at (addr, port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4)
    return s


def tcp_sender(cc):
    """A TCP socket whose congestion control is `cc` (checked)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc.encode())
    got = s.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0")
    if got.decode() != cc:
        raise SystemExit(f"TCP_CONGESTION is {got!r}, not {cc}")
    return s


def tcp_info(sock):
    """(cwnd in segments, smoothed RTT in ms, total retransmitted segments)."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 104)
    except OSError:
        return None
    if len(raw) < 104:
        return None
    rtt_us, = struct.unpack_from("I", raw, 68)
    cwnd, = struct.unpack_from("I", raw, 80)
    total_retrans, = struct.unpack_from("I", raw, 100)
    return cwnd, rtt_us / 1000.0, total_retrans


class Sender(threading.Thread):
    """Connects at `start_at` and writes until `end_at` (blocking writes
    with a short timeout so the deadline is always seen)."""

    def __init__(self, sock, dest, start_at, end_at):
        super().__init__(daemon=True)
        self.sock = sock
        self.dest = dest
        self.start_at = start_at
        self.end_at = end_at
        self.started = None  # monotonic time just before connect()
        self.error = None

    def run(self):
        try:
            pause = self.start_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.started = time.monotonic()
            self.sock.settimeout(5.0)
            self.sock.connect(self.dest)
            self.sock.settimeout(0.5)
            chunk = memoryview(bytes(1 << 20))
            while time.monotonic() < self.end_at:
                try:
                    self.sock.send(chunk)
                except socket.timeout:
                    continue
        except OSError as e:
            if time.monotonic() < self.end_at:
                self.error = f"{self.dest}: {e}"


def jain_index(xs):
    squares = sum(v * v for v in xs)
    if not xs or squares == 0:
        return 1.0
    return sum(xs) ** 2 / (len(xs) * squares)


def run_flows(args):
    port = args.port
    sender_ns = [args.sender1_ns, args.sender2_ns]
    sender_addr = [args.sender1_addr, args.sender2_addr]
    nflows = 1 if args.single_flow else 2

    lst = socket_in(args.receiver_ns, lambda: tcp_listener(args.receiver_addr, port))
    lst.setblocking(False)
    socks = [socket_in(sender_ns[i], lambda: tcp_sender(args.cc)) for i in range(nflows)]

    t0 = time.monotonic()
    end = t0 + args.run_s
    starts = [0.0, args.late_start_ms / 1000.0]
    senders = [
        Sender(socks[i], (args.receiver_addr, port), t0 + starts[i], end)
        for i in range(nflows)
    ]
    for s in senders:
        s.start()

    sel = selectors.DefaultSelector()
    sel.register(lst, selectors.EVENT_READ, None)
    buf = bytearray(1 << 20)
    read = [0, 0]
    series = []
    conns = []
    next_sample = t0 + 1.0

    def flush(now):
        nonlocal next_sample
        while now >= next_sample and len(series) < args.run_s:
            sample = list(map(float, read))
            read[0] = read[1] = 0
            line = {
                "t": len(series) + 1,
                "flow1_bytes_per_s": sample[0],
                "flow2_bytes_per_s": sample[1],
            }
            for i, s in enumerate(socks):
                info = tcp_info(s)
                if info is not None and senders[i].started is not None:
                    line[f"flow{i + 1}_cwnd"] = info[0]
                    line[f"flow{i + 1}_srtt_ms"] = info[1]
                    line[f"flow{i + 1}_total_retrans"] = info[2]
            series.append(line)
            next_sample += 1.0

    while len(series) < args.run_s:
        now = time.monotonic()
        flush(now)
        if len(series) >= args.run_s:
            break
        timeout = max(0.0, next_sample - now)
        for key, _ in sel.select(timeout):
            if key.data is None:
                try:
                    conn, peer = lst.accept()
                except BlockingIOError:
                    continue
                if peer[0] not in sender_addr[:nflows]:
                    conn.close()
                    continue
                conn.setblocking(False)
                conns.append(conn)
                sel.register(conn, selectors.EVENT_READ, sender_addr.index(peer[0]))
                continue
            flush(time.monotonic())
            try:
                n = key.fileobj.recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                sel.unregister(key.fileobj)
                continue
            read[key.data] += n

    for s in senders:
        s.join(timeout=2.0)
    errors = [s.error for s in senders if s.error]
    retrans = [tcp_info(s) for s in socks]
    for c in conns + socks + [lst]:
        c.close()
    if errors:
        raise SystemExit("sender failed: " + "; ".join(errors))
    if any(s.started is None for s in senders):
        raise SystemExit("a sender never started")

    rate = args.mbps * 1e6 / 8.0
    if args.series:
        for line in series:
            print(json.dumps(line))
    samples = [(l["flow1_bytes_per_s"], l["flow2_bytes_per_s"]) for l in series]
    window = min(WINDOW_S, len(samples))
    last = samples[len(samples) - window:]
    totals = [sum(s[0] for s in last) / window, sum(s[1] for s in last) / window]
    flow2_start = (senders[1].started - t0) if nflows == 2 else None
    converged = None
    if flow2_start is not None:
        # As in benches/src/two_flows.rs: sample i covers (i, i+1] s; flow 2's first
        # full second is the one after its start.
        for i in range(int(flow2_start), len(samples)):
            f1, f2 = samples[i]
            if f2 > 0 and f2 >= 0.8 * (f1 + f2) / 2.0:
                converged = round((i + 1) - flow2_start, 3)
                break
    out = {
        "scenario": "linux_tcp_two_flows_late_start" if nflows == 2 else "linux_tcp_single_flow",
        "cc": args.cc,
        "kernel": os.uname().release,
        "bottleneck_bytes_per_s": rate,
        "rtt_ms": 50,
        "flow2_start_s": round(flow2_start, 4) if flow2_start is not None else None,
        "run_s": args.run_s,
        "flow1_bytes_per_s": totals[0],
        "flow2_bytes_per_s": totals[1],
        "utilization": (totals[0] + totals[1]) / rate,
    }
    if nflows == 2:
        out["jain_index_last_30s"] = jain_index(totals)
        out["min_jain_index_per_second_last_30s"] = min(
            [jain_index(list(s)) for s in last] + [1.0]
        )
        out["flow2_reached_80pct_of_fair_share_after_s"] = converged
    out["flows"] = [
        {"total_retrans": r[2] if r else None} for r in retrans
    ]
    print(json.dumps(out))


def run_transfer(args):
    """One TCP bulk transfer of --bytes with --cc; prints its seconds."""

    lst = socket_in(args.receiver_ns, lambda: tcp_listener(args.receiver_addr, args.port))
    snd = socket_in(args.sender_ns, lambda: tcp_sender(args.cc))
    deadline = time.monotonic() + args.timeout_s
    errors = []

    def send():
        try:
            snd.settimeout(args.timeout_s)
            snd.connect((args.receiver_addr, args.port))
            chunk = memoryview(bytes(1 << 20))
            left = args.bytes
            while left > 0:
                left -= snd.send(chunk[: min(left, len(chunk))])
            snd.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(str(e))

    start = time.monotonic()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    lst.settimeout(args.timeout_s)
    conn, _ = lst.accept()
    buf = bytearray(1 << 20)
    total = 0
    seconds = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        try:
            n = conn.recv_into(buf)
        except socket.timeout:
            break
        if n == 0:
            seconds = time.monotonic() - start
            break
        total += n
    info = tcp_info(snd)
    for c in (conn, snd, lst):
        c.close()
    if errors and seconds is None:
        raise SystemExit("sender failed: " + "; ".join(errors))
    print(json.dumps({
        "transport": f"tcp_{args.cc}",
        "bytes": total,
        "seconds": round(seconds, 4) if seconds is not None and total == args.bytes else None,
        "total_retrans": info[2] if info else None,
    }))


def run_meter(args):
    """Counts stdin's bytes per whole second for --run-s seconds."""
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)
    start = time.monotonic()
    per_second = [0] * args.run_s
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    f = os.fdopen(fd, "rb", buffering=0, closefd=False)
    while True:
        now = time.monotonic()
        if now - start >= args.run_s:
            break
        if not select.select([fd], [], [], min(0.5, args.run_s - (now - start)))[0]:
            continue
        try:
            n = f.readinto(view)
        except BlockingIOError:
            continue
        if not n:
            break
        second = int(time.monotonic() - start)
        if second < args.run_s:
            per_second[second] += n
    window = per_second[args.run_s - args.window_s:]
    print(json.dumps({
        "bytes_per_s_last_window": sum(window) / args.window_s,
        "window_s": args.window_s,
        "total_bytes": sum(per_second),
    }))


def run_sink(_args):
    """Reads stdin to EOF; prints bytes, last-byte time and EOF time."""
    f = os.fdopen(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    view = memoryview(bytearray(1 << 20))
    total, last_byte_at = 0, None
    while True:
        n = f.readinto(view)
        if not n:
            break
        total += n
        last_byte_at = time.time()
    print(json.dumps({"bytes": total, "last_byte_at": last_byte_at, "eof_at": time.time()}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("delay")
    d.add_argument("--dev", required=True)
    d.add_argument("--one-way-ms", type=float, required=True)
    d.add_argument("--max-s", type=float, required=True)
    d.add_argument("--stats")
    d.add_argument("--loss-pct", type=float, default=0.0)
    d.add_argument("--ge", help="Gilbert-Elliott burst loss: P_GB,P_BG,LOSS_BAD_PCT")
    d.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("transfer")
    for name in ("sender-ns", "receiver-ns", "receiver-addr", "cc"):
        t.add_argument(f"--{name}", required=True)
    t.add_argument("--port", type=int, default=5002)
    t.add_argument("--bytes", type=int, required=True)
    t.add_argument("--timeout-s", type=float, default=300.0)
    m = sub.add_parser("meter")
    m.add_argument("--run-s", type=int, required=True)
    m.add_argument("--window-s", type=int, default=30)
    sub.add_parser("sink")
    f = sub.add_parser("flows")
    for name in ("sender1-ns", "sender2-ns", "receiver-ns",
                 "sender1-addr", "sender2-addr", "receiver-addr", "cc"):
        f.add_argument(f"--{name}", required=True)
    f.add_argument("--port", type=int, default=5001)
    f.add_argument("--mbps", type=float, required=True)
    f.add_argument("--late-start-ms", type=int, default=10000)
    f.add_argument("--run-s", type=int, default=70)
    f.add_argument("--single-flow", action="store_true")
    f.add_argument("--series", action="store_true")
    args = p.parse_args()
    if args.cmd == "delay":
        if not 0 <= args.loss_pct < 100:
            p.error("--loss-pct must be in [0, 100)")
        run_delay(args)
    elif args.cmd == "transfer":
        if args.bytes <= 0:
            p.error("--bytes must be positive")
        run_transfer(args)
    elif args.cmd == "sink":
        run_sink(args)
    elif args.cmd == "meter":
        if not 0 < args.window_s <= args.run_s <= 3600:
            p.error("want 0 < --window-s <= --run-s <= 3600")
        run_meter(args)
    else:
        if not 0 < args.run_s <= 3600:
            p.error("--run-s must be in 1..3600")
        run_flows(args)


if __name__ == "__main__":
    main()
