#!/usr/bin/env python3
"""What a PROXY protocol v2 header costs per request on keep-alive
connections (issue 19): weir's server CPU per request with and without
`proxy_protocol` on the listener, the same client either way.

wrk cannot send a PROXY header, so the client is this script: CONNS
connections, each sending its v2 header once (in the proxy_protocol runs),
then pipelined batches of GET /fixed (1 KiB from `return`) for SECONDS.
Connections are never closed by weir
(max_requests_per_connection = 0), so each header is sent once. Rounds
alternate between the two listeners; the medians of µs/req (from
/proc/PID/stat) are compared. The client is slower than wrk, so req/s is
not the point: the server's CPU per request is.

Usage: python3 bench/pp_keepalive.py [--weir build/release/weir]
"""

import argparse
import os
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402  (bench/run.py: Server, cpu_ticks, FIXED_BODY)

INI = """\
[server]
listen = 127.0.0.1:{port}{flag}
proxy_protocol_from = 127.0.0.0/8
workers = 2
access_log = off
error_log = stderr

[limits]
max_requests_per_connection = 0

[route fixed]
match = exact:/fixed
return = 200 {body}
"""

REQUEST = b"GET /fixed HTTP/1.1\r\nHost: bench\r\n\r\n"
PP_V2 = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12)
         + socket.inet_aton("192.0.2.7") + socket.inet_aton("127.0.0.1")
         + struct.pack("!HH", 40000, 80))


def client(port, is_pp, seconds, depth, counts, i):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if is_pp:
        s.sendall(PP_V2)
    batch = REQUEST * depth
    n, buf = 0, b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.sendall(batch)
        want = depth
        while want > 0:
            data = s.recv(1 << 20)
            if not data:
                raise RuntimeError("weir closed the connection")
            buf += data
            while True:
                k = buf.find(b"\r\n\r\n")
                if k < 0 or len(buf) < k + 4 + 1024:
                    break
                buf = buf[k + 4 + 1024:]
                want -= 1
                n += 1
    s.close()
    counts[i] = n


def measure(server, is_pp, conns, seconds, depth):
    counts = [0] * conns
    ticks0 = run.cpu_ticks(server.pids())
    threads = [threading.Thread(target=client, args=(server.port, is_pp, seconds, depth,
                                                     counts, i)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ticks = run.cpu_ticks(server.pids()) - ticks0
    total = sum(counts)
    return total / seconds, ticks * 1e6 / run.CLK_TCK / max(total, 1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weir", default="build/release/weir")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--depth", type=int, default=32, help="pipelined requests per batch")
    a = p.parse_args(argv)
    dir_ = tempfile.mkdtemp(prefix="weir-pp-")
    servers = {}
    try:
        for name, flag in (("plain", ""), ("proxy_protocol", " proxy_protocol")):
            port = run.free_port()
            wdir = os.path.join(dir_, name)
            os.makedirs(wdir)
            conf = os.path.join(wdir, "weir.ini")
            with open(conf, "w") as f:
                f.write(INI.format(port=port, flag=flag, body=run.FIXED_BODY))
            s = run.Server("weir", [os.path.abspath(a.weir), "-c", conf], wdir, port, "http")
            s.start()
            servers[name] = s
        res = {name: [] for name in servers}
        for _ in range(a.rounds):
            for name, s in servers.items():
                res[name].append(measure(s, name != "plain", a.conns, a.seconds, a.depth))
        print(f"pp_keepalive: {a.conns} keep-alive connections, {a.depth} pipelined GET /fixed "
              f"per batch, {a.rounds} interleaved rounds of {a.seconds:.0f} s")
        med = {}
        for name, rounds in res.items():
            med[name] = statistics.median(us for _, us in rounds)
            rps = statistics.median(r for r, _ in rounds)
            print(f"  {name:<15} {rps:8.0f} req/s  {med[name]:5.2f} µs/req (server CPU)")
        print(f"  proxy_protocol / plain: {med['proxy_protocol'] / med['plain']:.3f}x µs/req")
    finally:
        for s in servers.values():
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
