#!/usr/bin/env python3
"""Where a request's server CPU goes: bench/run.py's scenarios under wrk,
with the server profiled by perf.

    python3 bench/profile.py [--weir BIN] [--weir-before BIN]
                             [--only static_1k --only proxy_100 ...]
                             [--duration 5] [--symbols 12]

For each scenario (default: static_1k, proxy_100, tls_static_1k) and each
server (weir; "before" with --weir-before; the 2-thread no-work server
"floor2" where the scenario has a floor), two wrk runs of the scenario's
shape (64 keep-alive connections, one wrk thread):

  1. `perf record` (cpu-clock, 1999 Hz) on the server's threads for the
     whole run: the share of samples by part (kernel, libc, weir, libevent,
     OpenSSL, other), turned into µs per request with the run's CPU per
     request from /proc, and weir's own hottest symbols;
  2. `perf trace -s` on the server for the whole run: system calls per
     request, by name.

perf adds its own cost to the run it watches, so µs/req here sits above
bench/run.py's; compare the shares and the syscall counts, and take µs/req
from run.py. Prints one table per scenario in Markdown (for a closing note)
and writes bench/results/profile.json. Needs perf (linux-perf) and root or
a permissive perf_event_paranoid.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: scenarios, servers, wrk)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCENARIOS = ("static_1k", "proxy_100", "tls_static_1k")
PARTS = ("kernel", "libc", "weir", "libevent", "OpenSSL", "other")


def part_of(dso, server_bin):
    """Which part a perf dso name belongs to."""
    if dso.startswith("[kernel"):
        return "kernel"
    if dso.startswith("libc.so") or dso.startswith("libc-") or dso.startswith("ld-linux"):
        return "libc"
    if dso.startswith("libevent"):
        return "libevent"
    if dso.startswith("libssl") or dso.startswith("libcrypto"):
        return "OpenSSL"
    if dso == os.path.basename(server_bin) or dso in ("weir", "weir-bench-backend"):
        return "weir"
    return "other"


def parse_dso_report(text, server_bin):
    shares = {p: 0.0 for p in PARTS}
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S.*?)\s*$", line)
        if m:
            shares[part_of(m.group(2), server_bin)] += float(m.group(1))
    return shares


def parse_symbols(text, limit):
    """[(percent, dso, symbol)] of the hottest non-kernel symbols."""
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$", line)
        if not m or m.group(3) == "k":
            continue
        out.append((float(m.group(1)), m.group(2), m.group(4)))
        if len(out) >= limit:
            break
    return out


def parse_trace_summary(text):
    """{syscall: calls} summed over the threads of a `perf trace -s` summary."""
    calls = {}
    for line in text.splitlines():
        m = re.match(r"\s+([a-z_0-9]+)\s+(\d+)\s+\d+\s+[\d.]+", line)
        if m:
            calls[m.group(1)] = calls.get(m.group(1), 0) + int(m.group(2))
    return calls


def watched_wrk(args, server, scenario, tool_argv, duration):
    """Runs tool_argv (perf, attached to the server's threads) around one wrk
    run; returns (wrk result, server CPU s, tool's output)."""
    pids = server.pids()
    tool = subprocess.Popen(tool_argv + ["-p", ",".join(map(str, pids))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.5)  # perf attaches
    t0 = run.cpu_ticks(pids)
    text, _ = run.run_wrk(args.wrk, server.url(scenario.path), 1, scenario.connections,
                          duration, headers=run.wrk_headers(scenario))
    t1 = run.cpu_ticks(pids)
    tool.send_signal(signal.SIGINT)
    try:
        out, _ = tool.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        tool.kill()
        out, _ = tool.communicate()
    return run.parse_wrk(text), (t1 - t0) / run.CLK_TCK, out.decode("utf-8", "replace")


def profile_server(args, server, scenario, server_bin, dir_):
    if args.warmup > 0:
        run.run_wrk(args.wrk, server.url(scenario.path), 1, scenario.connections, args.warmup,
                    latency=False, headers=run.wrk_headers(scenario))
    data = os.path.join(dir_, f"{server.name}.perf.data")
    r, cpu_s, _ = watched_wrk(args, server, scenario,
                              [args.perf, "record", "-q", "-e", "cpu-clock", "-F", "1999",
                               "-o", data], args.duration)
    us = cpu_s * 1e6 / r["requests"] if r["requests"] else None
    rep = subprocess.run([args.perf, "report", "-i", data, "--sort", "dso", "--stdio",
                          "--percent-limit", "0.1"], capture_output=True, timeout=120)
    shares = parse_dso_report(rep.stdout.decode("utf-8", "replace"), server_bin)
    sym = subprocess.run([args.perf, "report", "-i", data, "--sort", "dso,sym", "--stdio",
                          "--percent-limit", "0.3"], capture_output=True, timeout=120)
    symbols = parse_symbols(sym.stdout.decode("utf-8", "replace"), args.symbols)
    r2, _, trace = watched_wrk(args, server, scenario, [args.perf, "trace", "-s"], args.duration)
    calls = parse_trace_summary(trace)
    per_req = {k: v / r2["requests"] for k, v in calls.items()} if r2["requests"] else {}
    return {"server": server.name, "req_s": r["req_s"], "us_per_req": us,
            "shares": shares, "symbols": symbols,
            "us_by_part": {p: (us * s / 100 if us else None) for p, s in shares.items()},
            "syscalls_per_req": dict(sorted(per_req.items(), key=lambda kv: -kv[1]))}


def print_tables(name, rows):
    print(f"\n### {name}\n")
    print("| server | µs/req (under perf) | " + " | ".join(PARTS) + " | syscalls per request |")
    print("|---|---|" + "---|" * len(PARTS) + "---|")
    for r in rows:
        parts = " | ".join(f"{r['shares'][p]:.0f} % ({r['us_by_part'][p]:.2f})"
                           if r["us_per_req"] else f"{r['shares'][p]:.0f} %" for p in PARTS)
        sc = ", ".join(f"{k} {v:.2f}" for k, v in list(r["syscalls_per_req"].items())[:5]
                       if v >= 0.005)
        us = f"{r['us_per_req']:.2f}" if r["us_per_req"] else "?"
        print(f"| {r['server']} | {us} | {parts} | {sc} |")
    for r in rows:
        if r["symbols"]:
            print(f"\n{r['server']}: hottest user-space symbols (% of its samples)")
            for pct, dso, symbol in r["symbols"]:
                print(f"  {pct:5.2f} %  {dso:<22} {symbol}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weir", default="build/release/weir")
    p.add_argument("--weir-before", metavar="BINARY", help="another build, profiled as before")
    p.add_argument("--backend", default="build/release/weir-bench-backend")
    p.add_argument("--only", action="append", metavar="NAME")
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--symbols", type=int, default=12, help="user-space symbols listed (12)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    p.add_argument("--perf", default=shutil.which("perf") or "perf")
    p.add_argument("--openssl", default=shutil.which("openssl") or "openssl")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results", "profile.json"))
    a = p.parse_args()
    if not shutil.which(a.perf):
        print("profile: perf not found (Debian package linux-perf)", file=sys.stderr)
        return 1
    names = a.only or list(DEFAULT_SCENARIOS)
    known = {sc.name: sc for sc in run.SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"profile: unknown scenario(s) {unknown}", file=sys.stderr)
        return 2
    # what run.Bench reads of its arguments
    bargs = argparse.Namespace(weir=a.weir, backend=a.backend, openssl=a.openssl)
    results = {}
    for name in names:
        sc = known[name]
        dir_ = tempfile.mkdtemp(prefix=f"weir-profile-{name}-")
        os.chmod(dir_, 0o755)
        bench = run.Bench(bargs)
        rows = []
        try:
            if sc.backend:
                bench.start_backend(dir_, sc)
            servers = [(bench.start_weir(sc, dir_), a.weir)]
            if a.weir_before:
                servers.append((bench.start_weir(sc, dir_, a.weir_before, "before"),
                                a.weir_before))
            if sc.floor_file and os.path.exists(a.backend):
                servers.append((bench.start_floor(sc, dir_, threads=2), a.backend))
            for s, binary in servers:
                run.http_check(s, sc)
                print(f"profile: {name}: {s.name} ...", file=sys.stderr, flush=True)
                rows.append(profile_server(a, s, sc, binary, dir_))
        finally:
            for s in bench.servers:
                s.stop()
            shutil.rmtree(dir_, ignore_errors=True)
        results[name] = rows
        print_tables(name, rows)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
