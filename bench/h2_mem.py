#!/usr/bin/python3
"""Memory per HTTP/2 connection and per open HTTP/2 stream (issue 15).

One weir (1 worker, an h2c listener, a static 1 MiB file) and RSS from
/proc/PID/status around two loads:
  idle    N h2c connections, each after one answered request, held open
  streams C connections x S streams each, every stream a GET of the 1 MiB
          file whose client never reads (its windows stay shut): every
          stream stays open with its answer started
Prints KiB per idle connection and KiB per open stream (the streams'
connections' own cost taken out).

  /usr/bin/python3 bench/h2_mem.py --weir build/release/weir [--conns 500]
      [--stream-conns 4] [--streams 100]
Needs python3-h2 (Debian)."""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

# bench/h2.py would shadow python3-h2's package: not from this directory.
sys.path = [d for d in sys.path if os.path.abspath(d or ".") != os.path.dirname(
    os.path.abspath(__file__))]
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402

INI = """[server]
listen = 127.0.0.1:{port} h2c
workers = 1
access_log = off
error_log = {dir}/error.log
log_level = warn

[limits]
max_connections_per_ip = 0
send_timeout = 10m

[http2]
idle_timeout = 10m

[route files]
match = prefix:/
root = {dir}/root
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Client:
    """One h2c connection that never acknowledges DATA (its windows close)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.heads = set()
        self.ended = set()

    def get(self, path):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                     (":authority", "m.test"), (":path", path)],
                               end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        return sid

    def pump_until(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise RuntimeError("timed out")
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("closed")
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    self.heads.add(ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended.add(ev.stream_id)
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)


def settle(pid):
    """RSS once it stopped moving (the worker's free lists trim each second)."""
    last = rss_kib(pid)
    for _ in range(30):
        time.sleep(0.5)
        now = rss_kib(pid)
        if abs(now - last) < 8:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--stream-conns", type=int, default=4)
    ap.add_argument("--streams", type=int, default=100)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="weir-h2mem-")
    os.mkdir(os.path.join(tmp, "root"))
    with open(os.path.join(tmp, "root", "f.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    with open(os.path.join(tmp, "root", "s.txt"), "wb") as f:
        f.write(b"small\n")
    port = free_port()
    ini = os.path.join(tmp, "weir.ini")
    with open(ini, "w") as f:
        f.write(INI.format(port=port, dir=tmp))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:quarantine_size_mb=1")
    p = subprocess.Popen([a.weir, "-c", ini], env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        idle, held = [], []
        warm = Client(port)  # warms the worker's lists and the file cache
        sid = warm.get("/s.txt")
        warm.pump_until(lambda: sid in warm.ended)
        base = settle(p.pid)
        for _ in range(a.conns):
            c = Client(port)
            sid = c.get("/s.txt")
            c.pump_until(lambda: sid in c.ended)
            idle.append(c)
        with_idle = settle(p.pid)
        per_conn = (with_idle - base) / a.conns
        for _ in range(a.stream_conns):
            c = Client(port)
            for _ in range(a.streams):
                c.get("/f.bin")
            c.pump_until(lambda: len(c.heads) == a.streams)
            held.append(c)
        with_streams = settle(p.pid)
        n = a.stream_conns * a.streams
        per_stream = (with_streams - with_idle - a.stream_conns * per_conn) / n
        print("weir %s" % a.weir)
        print("RSS base %d KiB; +%d idle h2c conns: %d KiB (%.1f KiB/conn)"
              % (base, a.conns, with_idle, per_conn))
        print("+%d conns x %d open streams: %d KiB (%.1f KiB/stream)"
              % (a.stream_conns, a.streams, with_streams, per_stream))
        for c in idle + held:
            c.sock.close()
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
