#!/usr/bin/env python3
"""Cold-key bursts against the HTTP cache (issue 20): how many requests
reach the origin when N clients ask for the same uncached key at once.

For each server (weir with `cache`, nginx with `proxy_cache` and
`proxy_cache_lock on`), KEYS rounds: a new key each round, CLIENTS
concurrent GETs for it, an origin that takes DELAY seconds to answer and
counts what it gets. Prints, per server, upstream requests per key (the
ideal is 1) and the time until the last client had its answer.

Usage: python3 bench/cache_burst.py [--weir build/release/weir] [--clients 100]
"""

import argparse
import http.server
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402  (bench/run.py: servers, configs)


class Origin:
    """Counts GETs per path; answers each after delay seconds, cacheable."""

    def __init__(self, delay):
        self.counts = {}
        self.lock = threading.Lock()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with origin.lock:
                    origin.counts[self.path] = origin.counts.get(self.path, 0) + 1
                time.sleep(delay)
                body = b"x" * 1024
                self.send_response(200)
                self.send_header("Cache-Control", "max-age=600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


WEIR_INI = """\
[cache c]
max_size = 64m

[upstream b]
server = 127.0.0.1:{{backend_port}}

[route p]
match = prefix:/
proxy = b
cache = c
cache_lock_timeout = 30s
"""
NGINX_HTTP = """\
upstream b {
    server 127.0.0.1:{{backend_port}};
    keepalive 64;
}
proxy_cache_path {{dir}}/nginx-cache keys_zone=c:10m max_size=64m;
"""
NGINX_SERVER = """\
location / {
    proxy_pass http://b;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_cache c;
    proxy_cache_lock on;
    proxy_cache_lock_timeout 30s;
}
"""


def get(port, path, timeout):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.startswith(b"HTTP/1.1 200")


def burst(port, path, clients):
    ok = [False] * clients

    def one(i):
        try:
            ok[i] = get(port, path, 30)
        except OSError:
            ok[i] = False
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sum(ok), time.monotonic() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weir", default="build/release/weir")
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--keys", type=int, default=5)
    p.add_argument("--delay", type=float, default=0.2, help="origin's answer time (s)")
    a = p.parse_args(argv)
    args = run.parse_args(["--weir", a.weir, "--nginx", a.nginx])
    scenario = run.Scenario(name="cache_burst", path="/", weir_ini=WEIR_INI,
                            nginx_http=NGINX_HTTP, nginx_server=NGINX_SERVER)
    origin = Origin(a.delay)
    print(f"cache_burst: {a.clients} concurrent GETs per cold key, {a.keys} keys, "
          f"origin answers in {a.delay * 1000:.0f} ms")
    starters = [("weir", "start_weir")]
    if os.path.exists(a.nginx):
        starters.append(("nginx", "start_nginx"))
    for name, start in starters:
        bench = run.Bench(args)
        bench.backend = type("B", (), {"port": origin.port})()  # {{backend_port}}
        dir_ = tempfile.mkdtemp(prefix="weir-burst-")
        try:
            server = getattr(bench, start)(scenario, dir_)
            ups, secs, oks = [], [], 0
            for k in range(a.keys):
                path = f"/{name}/key{k}"
                n_ok, took = burst(server.port, path, a.clients)
                oks += n_ok
                ups.append(origin.counts.get(path, 0))
                secs.append(took)
            print(f"  {name}: upstream requests per key {ups} (ideal 1); "
                  f"{oks}/{a.clients * a.keys} answered 200; last answer after "
                  f"{1000 * sorted(secs)[len(secs) // 2]:.0f} ms (median)")
        finally:
            for s in bench.servers:
                s.stop()
            shutil.rmtree(dir_, ignore_errors=True)
    origin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
