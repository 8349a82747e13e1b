#!/usr/bin/env python3
"""Proxy CPU with a TLS upstream: weir binaries side by side (issue 14).

    python3 bench/tls_upstream_cpu.py --weir OLD/weir --weir NEW/weir
        [--rounds 5] [--duration 5] [--connections 64] [--body 100]

bench/run.py has no scenario with a TLS upstream (its backend is plain,
and nginx would need proxy_ssl settings of its own), so this compares weir
binaries only. The backend is a weir too (the first --weir, or
--backend-weir): TLS 1.3 on 127.0.0.1, one worker, `return 200` with a
fixed body. Each front weir: two workers, access_log off, an [upstream]
with tls = on, tls_verify = off, keepalive = 64, one proxy route; wrk -t1
against it over plain HTTP. Rounds interleave the fronts; per round: req/s
and the front's CPU (utime + stime of its process, all threads, from
/proc) per request. Medians at the end. Needs wrk and openssl.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=10.0):
    deadline = time.monotonic() + seconds
    for _ in range(1000):
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"port {port} never opened")
            time.sleep(0.05)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def start(weir, dir_, name, ini):
    conf = os.path.join(dir_, name + ".ini")
    with open(conf, "w") as f:
        f.write(ini)
    log = open(os.path.join(dir_, name + ".log"), "w")
    return subprocess.Popen([weir, "-c", conf], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def run_wrk(port, duration, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         check=True).stdout
    requests = errors = 0
    for line in out.splitlines():
        words = line.split()
        if "requests in" in line:
            requests = int(words[0])
        if line.strip().startswith("Non-2xx") or line.strip().startswith("Socket errors"):
            errors += sum(int(w.rstrip(",")) for w in words if w.rstrip(",").isdigit())
    return requests, errors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weir", action="append", required=True)
    p.add_argument("--backend-weir")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--body", type=int, default=100)
    a = p.parse_args()
    dir_ = tempfile.mkdtemp(prefix="weir-tlsup-")
    procs = []
    try:
        cert, key = os.path.join(dir_, "c.pem"), os.path.join(dir_, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        bport = free_port()
        body = ("x" * a.body)
        backend = start(a.backend_weir or a.weir[0], dir_, "backend", f"""
[server]
listen = 127.0.0.1:{bport} tls
workers = 1
access_log = off
error_log = {dir_}/backend.err
[limits]
max_requests_per_connection = 0
keepalive_timeout = 75s
[tls]
cert = {cert}
key = {key}
protocols = TLSv1.3
[route r]
match = prefix:/
return = 200 {body}
""")
        procs.append(backend)
        wait_port(bport, backend)
        fronts = []
        for i, weir in enumerate(a.weir):
            port = free_port()
            proc = start(weir, dir_, f"front{i}", f"""
[server]
listen = 127.0.0.1:{port}
workers = 2
access_log = off
error_log = {dir_}/front{i}.err
log_level = warn
[limits]
max_requests_per_connection = 0
keepalive_timeout = 75s
[upstream b]
server = 127.0.0.1:{bport}
tls = on
tls_verify = off
keepalive = 64
[route p]
match = prefix:/
proxy = b
""")
            procs.append(proc)
            wait_port(port, proc)
            run_wrk(port, 2, a.connections)  # warm-up
            fronts.append((weir, port, proc, []))
        for r in range(a.rounds):
            for weir, port, proc, results in fronts:
                t0 = cpu_ticks(proc.pid)
                n, errors = run_wrk(port, a.duration, a.connections)
                t1 = cpu_ticks(proc.pid)
                us = (t1 - t0) / CLK_TCK * 1e6 / n if n else float("nan")
                results.append((n / a.duration, us, errors))
                print(f"round {r + 1} {weir}: {n / a.duration:.0f} req/s "
                      f"{us:.1f} us/req errors {errors}", flush=True)
        for weir, port, proc, results in fronts:
            print(f"median {weir}: {statistics.median(x[0] for x in results):.0f} req/s, "
                  f"{statistics.median(x[1] for x in results):.1f} us/req of front CPU")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(dir_, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
