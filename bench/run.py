#!/usr/bin/env python3
"""weir benchmark: weir and nginx side by side, same machine, same run.

    python3 bench/run.py --weir build/release/weir      # what `make bench` runs
    python3 bench/run.py --no-weir                      # nginx alone (harness check)
    python3 bench/run.py --only fixed_1k --rounds 3 --duration 3

Each scenario starts both servers from configs generated into a fresh temp
directory (127.0.0.1, ephemeral ports), checks they answer the scenario URL
as expected, warms both up, then runs interleaved wrk rounds (weir, nginx,
weir, nginx, ...). Around every wrk run it reads the servers' CPU time from
/proc, so each round yields req/s, p99 latency, transfer/s, errors and
microseconds of server CPU per request. Medians and weir/nginx ratios are
printed and written to bench/results/last.json. See bench/README.md.

Python 3 standard library only.
"""

import argparse
import datetime
import gzip
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# Scenarios
#
# A scenario is one entry in SCENARIOS. The snippets are templates: every
# {{name}} is replaced from the scenario's variables (see Bench.vars):
#   {{dir}}   the run's temp directory (absolute)
#   {{port}}  the server's port
#   {{body}}  FIXED_BODY (1024 bytes, ini- and nginx-string-safe)
# plus whatever the scenario's setup(dir) returns. An unknown name is an error.
#
# weir_ini      appended to the generated [server]/[limits] sections
# nginx_server  placed inside the generated `server { listen ...; }` block
# nginx_http    (optional) placed at http{} level, e.g. an upstream block
# tls           listen with TLS on both servers (weir "tls", nginx "ssl");
#               a self-signed certificate is made in the temp dir and
#               exposed as {{cert}} / {{key}}
# backend       start weir-bench-backend (bench/fixed_backend.c: every request
#               answered 200 with a fixed 100-byte body) once for the
#               scenario, shared by both servers, at {{backend_port}}; its CPU
#               is measured apart and never counted as the server's
# default       False: only run with --only NAME (not yet in `make bench`)
# idle          N > 0: instead of wrk, N idle keep-alive connections (one
#               request each) and the server's RSS per connection, and the
#               CPU the server spends per second while they sit (run_idle)
# half_head     with idle: each connection sends half a request head and
#               waits (slowloris shape) instead of a whole request
# wrk_headers   extra request headers for wrk (-H), e.g. Connection: close
# handshakes    instead of wrk, `openssl s_time` runs: full handshakes (-new)
#               then resumed ones (-reuse), one GET each, and the server's CPU
#               per connection in each mode (run_handshakes)
# --------------------------------------------------------------------------

def _make_body(n):
    # Letters and digits only: no ';' or '#' (ini comments), no '"', '\' or
    # '$' (nginx string), no spaces at the ends (ini trimming).
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (alphabet * (n // len(alphabet) + 1))[:n]


FIXED_BODY = _make_body(1024)


@dataclass
class Scenario:
    name: str
    path: str
    weir_ini: str
    nginx_server: str
    expect_status: int = 200
    expect_len: int = 0
    connections: int = 64
    duration: Optional[int] = None   # seconds; None = --duration
    nginx_http: str = ""
    tls: bool = False
    setup: Optional[Callable[[str], dict]] = None
    backend: bool = False
    default: bool = True
    note: str = ""
    idle: int = 0     # > 0: not a wrk run; hold this many idle keep-alive
                      # connections and measure memory (see run_idle)
    half_head: bool = False  # idle: each connection sends half a request head
                             # and stops (slowloris shape) instead of a request
    wrk_headers: tuple = ()
    handshakes: bool = False   # not a wrk run: s_time -new / -reuse
    h2o_paths: str = ""        # plain HTTP scenarios: h2o's `paths:` entries, h2o
                               # measured beside nginx when set and installed
    accept_encoding: str = ""  # sent by wrk and the check; the check decodes
                               # the body before comparing its length
    backend_file: str = ""     # backend: serve this file (from setup) as text/html
    peers: bool = True         # False: weir alone (no peer does this)
    client_cert: bool = False  # tls: clients present a certificate the servers
                               # require and verify ({{client_ca}})
    weir_server: str = "access_log = off\n"  # weir's [server] logging keys
    floor_file: str = ""       # measure the floor beside the servers: the
                               # no-work server (weir-bench-backend) answering
                               # every request with this file's bytes, with one
                               # thread ("floor") and with as many threads as
                               # the servers have workers ("floor2")


def write_file(dir_, rel, size):
    """Creates dir_/rel with size deterministic bytes; returns its path."""
    path = os.path.join(dir_, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        chunk = _make_body(65536).encode()
        f.write((chunk * (size // len(chunk) + 1))[:size])
    return path


def setup_static(dir_):
    write_file(dir_, "www/1k.bin", 1024)
    write_file(dir_, "www/1m.bin", 1024 * 1024)
    return {"root": os.path.join(dir_, "www")}


STATIC_WEIR = """\
[route static]
match = prefix:/
root = {{root}}
"""
# h2o (beside nginx where a scenario names it): its file handler.
H2O_STATIC = """\
/:
  file.dir: {{root}}
"""

# nginx gets the open-file cache weir has built in (revalidated each second
# like weir's), so the comparison is like for like.
STATIC_NGINX = """\
sendfile on;
tcp_nopush on;
open_file_cache max=1024 inactive=60s;
open_file_cache_valid 1s;
location / { root {{root}}; }
"""

# TLS 1.3 only on both sides, same ECDSA P-256 certificate (make_cert).
TLS_STATIC_WEIR = """\
[tls]
cert = {{cert}}
key = {{key}}
protocols = TLSv1.3

""" + STATIC_WEIR
TLS_STATIC_NGINX = """\
ssl_certificate {{cert}};
ssl_certificate_key {{key}};
ssl_protocols TLSv1.3;
ssl_session_cache shared:SSL:1m;
""" + STATIC_NGINX
# Full handshakes only: no tickets and no session cache on either side (wrk
# does not resume anyway; this keeps ticket sealing out of the measure).
TLS_HANDSHAKE_WEIR = TLS_STATIC_WEIR.replace("protocols = TLSv1.3\n",
                                             "protocols = TLSv1.3\nsession_tickets = off\n")
TLS_HANDSHAKE_NGINX = TLS_STATIC_NGINX.replace("ssl_session_cache shared:SSL:1m;\n",
                                               "ssl_session_cache off;\n"
                                               "ssl_session_tickets off;\n")
# Resumption: tickets on (weir's default, spelled out) and, for nginx, the
# shared cache too, as a production nginx would be set up.
TLS_RESUME_WEIR = TLS_STATIC_WEIR.replace("protocols = TLSv1.3\n",
                                          "protocols = TLSv1.3\nsession_tickets = on\n")
TLS_RESUME_NGINX = TLS_STATIC_NGINX.replace("ssl_session_cache shared:SSL:1m;\n",
                                            "ssl_session_cache shared:SSL:1m;\n"
                                            "ssl_session_tickets on;\n")

# Client certificates (issue 19): the resumption scenario's servers, also
# requiring a client certificate signed by {{client_ca}}.
TLS_MTLS_WEIR = TLS_RESUME_WEIR.replace("session_tickets = on\n",
                                        "session_tickets = on\nclient_ca = {{client_ca}}\n"
                                        "verify_client = on\n")
TLS_MTLS_NGINX = TLS_RESUME_NGINX + "ssl_client_certificate {{client_ca}};\nssl_verify_client on;\n"

# Routing cost (issue 18): the request matches the last of 100 anchored
# regex routes, against the same answer behind one regex route.
def _regex_routes(n):
    weir = "".join("[route r%02d]\nmatch = regex:^/r%02d/\nreturn = 200 {{body}}\n\n" % (i, i)
                   for i in range(n))
    nginx = "".join('location ~ ^/r%02d/ { return 200 "{{body}}"; }\n' % i for i in range(n))
    return weir, nginx


# Compression (issue 16): a 100 KiB HTML page, text a compressor finds
# structure in but not a trivial repetition (about 4:1 with gzip -1).
def setup_html(dir_):
    words = ["<p>", "</p>", "<div class=\"row\">", "</div>", "weir", "proxy", "route",
             "static", "the", "a", "fast", "request", "answer", "upstream", "client", "page",
             "<a href=\"/docs/\">", "</a>", "\n"]
    out, x = [], 7
    while sum(map(len, out)) < 100 * 1024:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(words[x % len(words)] + ("%d " % (x % 1000) if x % 7 == 0 else " "))
    path = os.path.join(dir_, "www", "page.html")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(out)[:100 * 1024])
    return {"root": os.path.join(dir_, "www")}


def _compress_static(coding):
    return STATIC_WEIR + "compress = %s\n" % coding


# The proxy scenarios' configurations (one fixed backend, keep-alive 64).
PROXY_WEIR = """\
[upstream b]
server = 127.0.0.1:{{backend_port}}
keepalive = 64

[route p]
match = prefix:/
proxy = b
"""
NGINX_PROXY = """\
location / {
    proxy_pass http://b;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
}
"""


def _compress_proxy(coding):
    return PROXY_WEIR + "compress = %s\n" % coding


# nginx compresses per request at level 1, the closest to weir's default.
NGINX_GZIP = """\
gzip on;
gzip_comp_level 1;
gzip_types text/html;
gzip_static off;
gzip_vary on;
"""
NGINX_GZIP_PROXY = NGINX_GZIP + NGINX_PROXY
NGINX_UPSTREAM = """\
upstream b {
    server 127.0.0.1:{{backend_port}};
    keepalive 64;
    keepalive_requests 100000;
}
"""

# The HTTP cache (issue 20): the backend's 1 KiB file, cached for 10 min
# by fallback freshness on both servers (the backend sends no
# Cache-Control); every measured request is a hit.
CACHE_WEIR = """\
[cache c]
max_size = 64m

[upstream b]
server = 127.0.0.1:{{backend_port}}
keepalive = 64

[route p]
match = prefix:/
proxy = b
cache = c
cache_valid = 200 10m
"""
NGINX_CACHE_HTTP = NGINX_UPSTREAM + """\
proxy_cache_path {{dir}}/nginx-cache keys_zone=c:10m max_size=64m;
"""
NGINX_CACHE = """\
location / {
    proxy_pass http://b;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_cache c;
    proxy_cache_valid 200 10m;
}
"""

# Access lists (issue 19): the client (127.0.0.1) matches the 100th rule.
ACL_100_WEIR = STATIC_WEIR + "".join("deny = 10.%d.0.0/16\n" % i for i in range(99)) + \
    "allow = 127.0.0.1\n"
ACL_100_NGINX = "".join("deny 10.%d.0.0/16;\n" % i for i in range(99)) + \
    "allow 127.0.0.1;\ndeny all;\n" + STATIC_NGINX

# Access logs (issue 21): weir's json formats beside nginx's escape=json
# log_format of the same fields, every request logged to a file.
LOG_JSON_CUSTOM = ("json $time_iso8601 $remote_addr $request_id $request $status "
                   "$body_bytes_sent $request_time $host $route $http_referer "
                   "$http_user_agent $http_x_forwarded_for")
LOG_NGINX_HTTP = """\
log_format weirjson escape=json '{"time":"$time_iso8601","remote_addr":"$remote_addr",'
    '"request_id":"$request_id","request":"$request","status":$status,'
    '"body_bytes_sent":$body_bytes_sent,"request_time":$request_time,"host":"$host",'
    '"route":"static","http_referer":"$http_referer","http_user_agent":"$http_user_agent",'
    '"http_x_forwarded_for":"$http_x_forwarded_for"}';
"""
LOG_NGINX_SERVER = """\
access_log {{dir}}/nginx/access.log weirjson;
"""

ROUTES_1_WEIR, ROUTES_1_NGINX = _regex_routes(1)
ROUTES_100_WEIR, ROUTES_100_NGINX = _regex_routes(100)

SCENARIOS = [
    Scenario(
        name="fixed_1k",
        path="/fixed",
        expect_len=1024,
        weir_ini="""\
[route fixed]
match = exact:/fixed
return = 200 {{body}}
""",
        nginx_server="""\
location = /fixed { return 200 "{{body}}"; }
""",
        note="fixed 1024-byte response from config, no file I/O",
    ),
    Scenario(name="routes_1_regex", path="/r00/x", expect_len=1024,
             weir_ini=ROUTES_1_WEIR, nginx_server=ROUTES_1_NGINX,
             note="fixed 1024-byte answer behind one regex:^/r00/ route"),
    Scenario(name="routes_100_regex", path="/r99/x", expect_len=1024,
             weir_ini=ROUTES_100_WEIR, nginx_server=ROUTES_100_NGINX,
             note="the same answer from the last of 100 regex:^/rNN/ routes"),
    Scenario(name="static_1k", path="/1k.bin", expect_len=1024,
             weir_ini=STATIC_WEIR, nginx_server=STATIC_NGINX,
             setup=setup_static, h2o_paths=H2O_STATIC,
             floor_file="www/1k.bin",
             note="1 KiB file from disk (page cache)"),
    Scenario(name="log_json", path="/1k.bin", expect_len=1024,
             weir_ini=STATIC_WEIR, nginx_server=STATIC_NGINX + LOG_NGINX_SERVER,
             nginx_http=LOG_NGINX_HTTP, setup=setup_static,
             weir_server="access_log = {{dir}}/weir/access.log\naccess_log_format = json\n",
             note="1 KiB file, every request in weir's built-in json access log "
                  "(nginx: a json log_format of the same fields)"),
    Scenario(name="log_json_custom", path="/1k.bin", expect_len=1024,
             weir_ini=STATIC_WEIR, nginx_server=STATIC_NGINX + LOG_NGINX_SERVER,
             nginx_http=LOG_NGINX_HTTP, setup=setup_static,
             weir_server="access_log = {{dir}}/weir/access.log\n"
                         "access_log_format = " + LOG_JSON_CUSTOM + "\n",
             note="1 KiB file, every request in a custom json format "
                  "(json $var ...: 12 fields; nginx: the same log_format)"),
    Scenario(name="static_1k_acl100", path="/1k.bin", expect_len=1024,
             weir_ini=ACL_100_WEIR, nginx_server=ACL_100_NGINX, setup=setup_static,
             note="1 KiB file behind 100 allow/deny rules, the client matching the last"),
    Scenario(name="static_1m", path="/1m.bin", expect_len=1024 * 1024,
             connections=16,
             weir_ini=STATIC_WEIR, nginx_server=STATIC_NGINX,
             setup=setup_static,
             note="1 MiB file from disk (sendfile)"),
    Scenario(name="tls_fixed_1k", path="/fixed", expect_len=1024, tls=True,
             weir_ini="""\
[tls]
cert = {{cert}}
key = {{key}}

[route fixed]
match = exact:/fixed
return = 200 {{body}}
""",
             nginx_server="""\
ssl_certificate {{cert}};
ssl_certificate_key {{key}};
ssl_protocols TLSv1.2 TLSv1.3;
ssl_session_cache shared:SSL:1m;
location = /fixed { return 200 "{{body}}"; }
""",
             default=False,
             note="fixed 1024-byte response over TLS (keep-alive: handshakes amortised)"),
    # Both proxies keep up to 64 idle upstream connections per worker and
    # reuse them without a per-connection request limit (nginx's upstream
    # keepalive_requests defaults to 1000; weir has none).
    Scenario(name="proxy_100", path="/proxy_100", expect_len=100, backend=True,
             weir_ini=PROXY_WEIR, nginx_http=NGINX_UPSTREAM, nginx_server=NGINX_PROXY,
             note="reverse proxy to one fixed 100-byte backend, upstream keep-alive 64"),
    Scenario(name="cache_hit_1k", path="/1k.bin", expect_len=1024, backend=True,
             backend_file="www/1k.bin", setup=setup_static,
             weir_ini=CACHE_WEIR, nginx_http=NGINX_CACHE_HTTP, nginx_server=NGINX_CACHE,
             note="1 KiB proxied response from the cache (all hits; nginx proxy_cache, "
                  "its cache on disk in the page cache)"),
    Scenario(name="idle_10k", path="/fixed", expect_len=1024, idle=10000,
             weir_ini="""\
[route fixed]
match = exact:/fixed
return = 200 {{body}}
""",
             nginx_server="""\
location = /fixed { return 200 "{{body}}"; }
""",
             note="10,000 idle keep-alive connections: server RSS per connection"),
    Scenario(name="idle_10k_proxy", path="/proxy_100", expect_len=100, idle=10000,
             backend=True,
             weir_ini=PROXY_WEIR, nginx_http=NGINX_UPSTREAM, nginx_server=NGINX_PROXY,
             default=False,
             note="10,000 idle keep-alive connections, each after one proxied request"),
    Scenario(name="slowloris_10k", path="/fixed", expect_len=1024, idle=10000,
             half_head=True,
             weir_ini="""\
[route fixed]
match = exact:/fixed
return = 200 {{body}}
""",
             nginx_server="""\
location = /fixed { return 200 "{{body}}"; }
""",
             default=False,
             note="10,000 connections that each sent half a request head (slowloris)"),
    Scenario(name="conn_close_1k", path="/1k.bin", expect_len=1024,
             weir_ini=STATIC_WEIR, nginx_server=STATIC_NGINX,
             setup=setup_static, wrk_headers=("Connection: close",), h2o_paths=H2O_STATIC,
             note="1 KiB file, a new connection per request (Connection: close)"),
    Scenario(name="tls_static_1k", path="/1k.bin", expect_len=1024, tls=True,
             weir_ini=TLS_STATIC_WEIR, nginx_server=TLS_STATIC_NGINX,
             setup=setup_static,
             note="1 KiB file over TLS 1.3, keep-alive"),
    Scenario(name="tls_handshake", path="/1k.bin", expect_len=1024, tls=True,
             weir_ini=TLS_HANDSHAKE_WEIR, nginx_server=TLS_HANDSHAKE_NGINX,
             setup=setup_static, wrk_headers=("Connection: close",),
             note="TLS 1.3 full handshake (ECDSA P-256) + 1 KiB file per connection"),
    Scenario(name="tls_resume", path="/1k.bin", expect_len=1024, tls=True,
             weir_ini=TLS_RESUME_WEIR, nginx_server=TLS_RESUME_NGINX,
             setup=setup_static, handshakes=True, duration=3, connections=1,
             note="TLS 1.3 full vs resumed (ticket) handshakes, openssl s_time, "
                  "1 KiB file each"),
    Scenario(name="tls_mtls", path="/1k.bin", expect_len=1024, tls=True, client_cert=True,
             weir_ini=TLS_MTLS_WEIR, nginx_server=TLS_MTLS_NGINX,
             setup=setup_static, handshakes=True, duration=3, connections=1,
             note="tls_resume with a client certificate required and verified (mTLS)"),
    Scenario(name="gzip_static_100k", path="/page.html", expect_len=100 * 1024,
             accept_encoding="gzip", setup=setup_html,
             weir_ini=_compress_static("gzip"), nginx_server=NGINX_GZIP + STATIC_NGINX,
             note="100 KiB HTML file, Accept-Encoding: gzip (weir compresses it once, "
                  "nginx gzip_comp_level 1 per request)"),
    Scenario(name="gzip_proxy_100k", path="/page.html", expect_len=100 * 1024,
             accept_encoding="gzip", setup=setup_html, backend=True,
             backend_file="www/page.html",
             weir_ini=_compress_proxy("gzip"), nginx_http=NGINX_UPSTREAM,
             nginx_server=NGINX_GZIP_PROXY,
             note="the same page from the backend, compressed as it streams (gzip level 1)"),
    Scenario(name="br_static_100k", path="/page.html", expect_len=100 * 1024,
             accept_encoding="br", setup=setup_html, peers=False,
             weir_ini=_compress_static("br"), nginx_server="",
             note="100 KiB HTML file, Brotli (level 4; no peer does it on the fly)"),
    Scenario(name="zstd_static_100k", path="/page.html", expect_len=100 * 1024,
             accept_encoding="zstd", setup=setup_html, peers=False,
             weir_ini=_compress_static("zstd"), nginx_server="",
             note="100 KiB HTML file, zstd (level 3; no peer does it on the fly)"),
    Scenario(name="br_proxy_100k", path="/page.html", expect_len=100 * 1024,
             accept_encoding="br", setup=setup_html, backend=True,
             backend_file="www/page.html", peers=False,
             weir_ini=_compress_proxy("br"), nginx_server="",
             note="100 KiB HTML from the backend, Brotli level 4 as it streams"),
    Scenario(name="zstd_proxy_100k", path="/page.html", expect_len=100 * 1024,
             accept_encoding="zstd", setup=setup_html, backend=True,
             backend_file="www/page.html", peers=False,
             weir_ini=_compress_proxy("zstd"), nginx_server="",
             note="100 KiB HTML from the backend, zstd level 3 as it streams"),
]


# --------------------------------------------------------------------------
# Generated base configs
# --------------------------------------------------------------------------

WEIR_BASE = """\
; generated by bench/run.py
[server]
listen = 127.0.0.1:{{port}}{{listen_flag}}
workers = 2
{{weir_server}}error_log = {{dir}}/weir/error.log
log_level = warn

[limits]
max_requests_per_connection = 0
keepalive_timeout = 75s
header_timeout = 75s
shutdown_timeout = 2s

"""

# h2o (Debian's 2.2.5) beside nginx where a scenario gives its paths: 2
# threads like the others' 2 workers, no access log.
H2O_BASE = """\
# generated by bench/run.py
num-threads: 2
pid-file: {{dir}}/h2o/h2o.pid
error-log: {{dir}}/h2o/error.log
{{h2o_user}}
listen:
  host: 127.0.0.1
  port: {{port}}
{{h2o_listen_extra}}hosts:
  default:
    paths:
{{h2o_paths}}
"""

NGINX_BASE = """\
# generated by bench/run.py
{{user}}
worker_processes 2;
pid {{dir}}/nginx/nginx.pid;
error_log {{dir}}/nginx/error.log warn;

events {
    worker_connections {{worker_connections}};
}

http {
    access_log off;
    default_type text/plain;
    server_tokens off;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    client_header_timeout 75s;
    client_body_temp_path {{dir}}/nginx/client_body;
    proxy_temp_path {{dir}}/nginx/proxy;
    fastcgi_temp_path {{dir}}/nginx/fastcgi;
    uwsgi_temp_path {{dir}}/nginx/uwsgi;
    scgi_temp_path {{dir}}/nginx/scgi;

{{nginx_http}}
    server {
        listen 127.0.0.1:{{port}}{{listen_flag}};
{{nginx_server}}
    }
}
"""


def render(template, variables):
    def sub(m):
        key = m.group(1)
        if key not in variables:
            raise BenchError(f"template uses {{{{{key}}}}}, which is not defined")
        return str(variables[key])
    return re.sub(r"\{\{(\w+)\}\}", sub, template)


def indent(text, prefix):
    return "".join(prefix + line if line.strip() else line
                   for line in text.splitlines(keepends=True))


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

class BenchError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_stat(pid):
    """(ppid, utime+stime in ticks) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses: split at the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    return int(rest[1]), int(rest[11]) + int(rest[12])


def process_tree(root_pid):
    """root_pid and all its descendants (nginx: master + workers)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(int(name))
        if st:
            children.setdefault(st[0], []).append(int(name))
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(pids)


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        st = read_stat(pid)
        if st:
            total += st[1]
    return total


class Server:
    """One server process (weir, or nginx master with its workers)."""

    def __init__(self, name, argv, workdir, port, scheme):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.port, self.scheme = port, scheme
        self.proc = None
        self.out_path = os.path.join(workdir, "stdout-stderr.log")

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self, timeout=10.0):
        out = open(self.out_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode} "
                                 f"at start-up\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"{self.name} did not accept on 127.0.0.1:{self.port} "
                         f"within {timeout:.0f}s\n{self.logs()}")

    def logs(self, max_chars=3000):
        parts = []
        for root, _, files in os.walk(self.workdir):
            for fn in sorted(files):
                if fn.endswith(".log"):
                    p = os.path.join(root, fn)
                    with open(p, "rb") as f:
                        text = f.read().decode("utf-8", "replace")[-max_chars:]
                    if text.strip():
                        parts.append(f"--- {p} ---\n{text.rstrip()}")
        return "\n".join(parts) or f"(no {self.name} log output)"

    def pids(self):
        return process_tree(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL to the process group after timeout."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group is ours alone
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"warning: {self.name} ignored SIGTERM for {timeout:.0f}s; SIGKILL",
                      file=sys.stderr)
            except ProcessLookupError:
                pass
        try:  # leftovers: workers of a killed master, or the master itself
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass


def http_check(server, scenario):
    """GET the scenario URL once; fail loudly on a wrong status or length."""
    if server.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        cert = client_cert_args(scenario, server)
        if cert:
            ctx.load_cert_chain(cert[1], cert[3])
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", scenario.path,
                     headers={"Accept-Encoding": scenario.accept_encoding}
                     if scenario.accept_encoding else {})
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise BenchError(f"{scenario.name}: {server.name}: GET {server.url(scenario.path)} "
                         f"failed: {e!r}\n{server.logs()}")
    finally:
        conn.close()
    wire_len = len(body)
    if scenario.accept_encoding:
        coding = resp.getheader("Content-Encoding")
        if coding != scenario.accept_encoding:
            raise BenchError(f"{scenario.name}: {server.name}: Content-Encoding {coding!r}, "
                             f"expected {scenario.accept_encoding}\n{server.logs()}")
        body = decode_body(coding, body)
    if resp.status != scenario.expect_status or len(body) != scenario.expect_len:
        hint = ""
        if scenario.backend and resp.status in (502, 504):
            hint = (f"\n  {server.name} could not reach the backend: if this weir build has "
                    f"no proxy support yet, every proxied request is 502 (check nginx alone "
                    f"with --no-weir --only {scenario.name})")
        raise BenchError(
            f"{scenario.name}: {server.name}: GET {server.url(scenario.path)} answered "
            f"{resp.status} with {len(body)} body bytes; expected {scenario.expect_status} "
            f"with {scenario.expect_len}\n  headers: {dict(resp.getheaders())}\n"
            f"  body starts: {body[:120]!r}{hint}\n{server.logs()}")
    return {"status": resp.status, "body_len": len(body), "wire_len": wire_len,
            "headers": {k.lower(): v for k, v in resp.getheaders()}}


def decode_body(coding, data):
    """A compressed body decoded: gzip by Python, br and zstd by the CLIs."""
    if coding == "gzip":
        return gzip.decompress(data)
    tool = {"br": ["brotli", "-dc"], "zstd": ["zstd", "-dcq"]}[coding]
    if not shutil.which(tool[0]):
        raise BenchError(f"`{tool[0]}` is needed to check a {coding} answer")
    return subprocess.run(tool, input=data, capture_output=True, check=True,
                          timeout=30).stdout


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"bad wrk time {text!r}")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def _bytes(text):
    m = re.fullmatch(r"([\d.]+)([KMGT]?B)", text)
    if not m:
        raise ValueError(f"bad wrk size {text!r}")
    return float(m.group(1)) * _SIZE_UNITS[m.group(2)]


def parse_wrk(out):
    """The numbers of one `wrk --latency` run's text output."""
    def find(pattern, what):
        m = re.search(pattern, out, re.M)
        if not m:
            raise BenchError(f"wrk output has no {what}:\n{out}")
        return m
    r = {}
    m = find(r"^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", "request count")
    r["requests"] = int(m.group(1))
    r["elapsed_s"] = _ms(m.group(2)) / 1e3
    r["bytes_read"] = _bytes(m.group(3))
    r["req_s"] = float(find(r"^Requests/sec:\s+([\d.]+)", "Requests/sec").group(1))
    r["transfer_Bps"] = _bytes(find(r"^Transfer/sec:\s+([\d.]+\w+)", "Transfer/sec").group(1))
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)\s*$", out, re.M))
    if "99" not in dist:
        raise BenchError(f"wrk output has no latency distribution (--latency):\n{out}")
    r["p50_ms"] = _ms(dist["50"])
    r["p99_ms"] = _ms(dist["99"])
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non_2xx_3xx"] = int(m.group(1)) if m else 0
    r["errors"] = r["non_2xx_3xx"] + sum(r["socket_errors"].values())
    return r


def run_child(argv, limit_s):
    """Runs argv to completion (killed after limit_s, or on ^C); (exit code,
    stdout and stderr text, its CPU seconds, wall seconds)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        deadline = t0 + limit_s
        try:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"did not finish within {limit_s:.0f}s: {' '.join(argv)}")
                time.sleep(0.02)
        except BaseException:  # timeout, ^C, SIGTERM: never leave it behind
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return proc.returncode, text, ru.ru_utime + ru.ru_stime, wall


def wrk_headers(scenario):
    """wrk's -H lines: the scenario's, and its Accept-Encoding."""
    extra = (f"Accept-Encoding: {scenario.accept_encoding}",) if scenario.accept_encoding else ()
    return tuple(scenario.wrk_headers) + extra


def run_wrk(wrk, url, threads, connections, duration, latency=True, headers=()):
    """Runs wrk; returns (text output, wrk's own CPU seconds)."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    for h in headers:
        argv += ["-H", h]
    if latency:
        argv.append("--latency")
    argv.append(url)
    rc, text, cpu, _ = run_child(argv, duration + 30)
    if rc != 0:
        raise BenchError(f"wrk exited {rc}: {' '.join(argv)}\n{text}")
    return text, cpu


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def version_of(argv):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=10)
        text = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        return text.splitlines()[0] if text else ""
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"


def make_client_pki(dir_, openssl="openssl"):
    """A CA and a client certificate it signed (clientAuth), in dir_/tls."""
    d = os.path.join(dir_, "tls")
    os.makedirs(d, exist_ok=True)
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    crt, key, csr = (os.path.join(d, n) for n in ("client.pem", "client.key", "client.csr"))
    if os.path.exists(crt):
        return {"client_ca": ca}  # one PKI per run: every server trusts the same CA
    ext = os.path.join(d, "client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in ([openssl, "req", "-x509"] + ec + ["-days", "2", "-subj", "/CN=bench CA",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", ca_key, "-out", ca],
                 [openssl, "req", "-new"] + ec + ["-subj", "/CN=bench client", "-keyout", key,
                  "-out", csr],
                 [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                  "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt]):
        p = subprocess.run(argv, capture_output=True, timeout=30)
        if p.returncode != 0:
            raise BenchError(f"{' '.join(argv[:3])} failed:\n{p.stderr.decode()}")
    return {"client_ca": ca}


def client_cert_args(scenario, server):
    """s_client/s_time arguments presenting the scenario's client certificate."""
    if not scenario.client_cert:
        return []
    d = os.path.join(os.path.dirname(server.workdir), "tls")
    return ["-cert", os.path.join(d, "client.pem"), "-key", os.path.join(d, "client.key")]


def make_cert(dir_, openssl="openssl"):
    cert, key = os.path.join(dir_, "tls", "cert.pem"), os.path.join(dir_, "tls", "key.pem")
    os.makedirs(os.path.dirname(cert), exist_ok=True)
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        raise BenchError(f"openssl req failed:\n{p.stderr.decode()}")
    return {"cert": cert, "key": key}


class Bench:
    def __init__(self, args):
        self.args = args
        self.servers = []      # everything to stop at the end of a scenario
        self.backend = None    # the scenario's weir-bench-backend, if any

    def vars(self, scenario, dir_, port):
        v = {"dir": dir_, "port": port, "body": FIXED_BODY,
             "listen_flag": "", "nginx_http": "", "nginx_server": "",
             "worker_connections": max(4096, scenario.idle + 1024),
             "user": "user root root;" if os.geteuid() == 0 else ""}
        if self.backend:
            v["backend_port"] = self.backend.port
        if scenario.setup:
            v.update(scenario.setup(dir_))
        if scenario.tls:
            v.update(make_cert(dir_, self.args.openssl))
        if scenario.client_cert:
            v.update(make_client_pki(dir_, self.args.openssl))
        return v

    def start_weir(self, scenario, dir_, binary=None, name="weir"):
        """weir (or, as "before", --weir-before's build) on scenario's config."""
        port = free_port()
        wdir = os.path.join(dir_, name)
        os.makedirs(wdir)
        v = self.vars(scenario, dir_, port)
        v["listen_flag"] = " tls" if scenario.tls else ""
        v["weir_server"] = render(scenario.weir_server, v)
        ini = render(WEIR_BASE, v) + render(scenario.weir_ini, v)
        conf = os.path.join(wdir, "weir.ini")
        with open(conf, "w") as f:
            f.write(ini)
        weir = os.path.abspath(binary or self.args.weir)
        p = subprocess.run([weir, "-t", "-c", conf], capture_output=True, timeout=30)
        if p.returncode != 0:
            raise BenchError(f"{scenario.name}: `{weir} -t -c {conf}` exited {p.returncode}:\n"
                             + (p.stdout + p.stderr).decode("utf-8", "replace"))
        s = Server(name, [weir, "-c", conf], wdir, port, "https" if scenario.tls else "http")
        self.servers.append(s)
        s.start()
        return s

    def start_backend(self, dir_, scenario):
        """weir-bench-backend on a free port, in its own session (so no
        server's process tree includes it)."""
        port = free_port()
        bdir = os.path.join(dir_, "backend")
        os.makedirs(bdir)
        argv = [os.path.abspath(self.args.backend), str(port)]
        if scenario.backend_file:
            scenario.setup(dir_)
            argv.append(os.path.join(dir_, scenario.backend_file))
        s = Server("backend", argv, bdir, port, "http")
        self.servers.append(s)
        s.start()
        self.backend = s
        return s

    def start_floor(self, scenario, dir_, threads=1):
        """The no-work reference: weir-bench-backend answering every request
        with scenario.floor_file's bytes (setup already ran for the servers),
        on one thread ("floor") or on threads SO_REUSEPORT loops ("floorN"),
        the shape of a server with that many workers."""
        port = free_port()
        name = "floor" if threads == 1 else f"floor{threads}"
        fdir = os.path.join(dir_, name)
        os.makedirs(fdir)
        argv = [os.path.abspath(self.args.backend), "-t", str(threads), str(port),
                os.path.join(dir_, scenario.floor_file)]
        s = Server(name, argv, fdir, port, "http")
        self.servers.append(s)
        s.start()
        return s

    def start_nginx(self, scenario, dir_):
        port = free_port()
        ndir = os.path.join(dir_, "nginx")
        os.makedirs(ndir)
        v = self.vars(scenario, dir_, port)
        v["listen_flag"] = " ssl" if scenario.tls else ""
        v["nginx_http"] = indent(render(scenario.nginx_http, v), "    ")
        v["nginx_server"] = indent(render(scenario.nginx_server, v), "        ")
        conf = os.path.join(ndir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(render(NGINX_BASE, v))
        base = [self.args.nginx, "-p", ndir + "/", "-c", conf,
                "-e", os.path.join(ndir, "error.log")]
        p = subprocess.run(base + ["-t", "-q"], capture_output=True, timeout=30)
        if p.returncode != 0:
            raise BenchError(f"{scenario.name}: `nginx -t -c {conf}` exited {p.returncode}:\n"
                             + (p.stdout + p.stderr).decode("utf-8", "replace"))
        s = Server("nginx", base + ["-g", "daemon off;"], ndir, port,
                   "https" if scenario.tls else "http")
        self.servers.append(s)
        s.start()
        return s

    def start_h2o(self, scenario, dir_):
        port = free_port()
        hdir = os.path.join(dir_, "h2o")
        os.makedirs(hdir)
        v = self.vars(scenario, dir_, port)
        v["h2o_user"] = "user: root" if os.geteuid() == 0 else ""
        v["h2o_paths"] = indent(render(scenario.h2o_paths, v), "      ")
        v["h2o_listen_extra"] = ""
        conf = os.path.join(hdir, "h2o.conf")
        with open(conf, "w") as f:
            f.write(render(H2O_BASE, v))
        p = subprocess.run([self.args.h2o, "-t", "-c", conf], capture_output=True, timeout=30)
        if p.returncode != 0:
            raise BenchError(f"{scenario.name}: `h2o -t -c {conf}` exited {p.returncode}:\n"
                             + (p.stdout + p.stderr).decode("utf-8", "replace"))
        s = Server("h2o", [self.args.h2o, "-c", conf], hdir, port, "http")
        self.servers.append(s)
        s.start()
        return s

    def measure(self, server, scenario, connections, duration):
        """One wrk round against server with its CPU time read around it."""
        if not server.alive():
            raise BenchError(f"{server.name} died\n{server.logs()}")
        pids_before = server.pids()
        backend_pids = self.backend.pids() if self.backend else []
        t0, b0 = cpu_ticks(pids_before), cpu_ticks(backend_pids)
        text, wrk_cpu = run_wrk(self.args.wrk, server.url(scenario.path), self.args.threads,
                                connections, duration, headers=wrk_headers(scenario))
        pids_after = server.pids()
        t1, b1 = cpu_ticks(pids_after), cpu_ticks(backend_pids)
        if not server.alive():
            raise BenchError(f"{server.name} died during the run\n{server.logs()}")
        if self.backend and not self.backend.alive():
            raise BenchError(f"the backend died during the run\n{self.backend.logs()}")
        r = parse_wrk(text)
        r["server_cpu_s"] = (t1 - t0) / CLK_TCK
        r["us_per_req"] = (r["server_cpu_s"] * 1e6 / r["requests"]) if r["requests"] else None
        if self.backend:  # context only: not part of the server's figure
            r["backend_cpu_s"] = (b1 - b0) / CLK_TCK
            r["backend_us_per_req"] = (r["backend_cpu_s"] * 1e6 / r["requests"]
                                       if r["requests"] else None)
        r["wrk_cpu_s"] = round(wrk_cpu, 3)
        r["bytes_per_resp"] = r["bytes_read"] / r["requests"] if r["requests"] else None
        r["server_pids"] = len(pids_after)
        if pids_before != pids_after:
            r["warning"] = f"server processes changed during the run: {pids_before} -> {pids_after}"
            print(f"warning: {server.name}: {r['warning']}", file=sys.stderr)
        return r

    def run_idle(self, scenario, servers):
        """Idle rounds, interleaved like wrk rounds: per server (restarted
        each round), open scenario.idle connections (one request each), read
        the RSS growth of the server's process tree, time one new client,
        close them all. At most 3 rounds."""
        rounds = []
        for i in range(1, min(self.args.rounds, 3) + 1):
            for s in servers:
                if i > 1:
                    # a fresh process each round: memory freed by the last
                    # round's connections stays in RSS (allocator caches),
                    # which would hide the next round's growth
                    s.stop()
                    s.start()
                r = measure_idle(s, scenario)
                r.update(round=i, server=s.name)
                rounds.append(r)
                print("   " + format_idle_round(r), flush=True)
        return rounds

    def run_handshakes(self, scenario, servers, seconds):
        """s_time rounds, interleaved like wrk rounds: per server, a run of
        full handshakes then one of resumed ones. At most 3 rounds."""
        openssl = self.args.openssl
        for s in servers:
            check_resumption(openssl, s, scenario.path, client_cert_args(scenario, s))
            print(f"   {s.name}: resumes TLS 1.3 sessions (s_client -sess_out, -sess_in: "
                  f"Reused)", flush=True)
        for s in servers:
            if self.args.warmup > 0:
                rc, out, _, _ = run_child(stime_argv(openssl, s, scenario.path, "-new",
                                                     self.args.warmup,
                                                     client_cert_args(scenario, s)),
                                          self.args.warmup + 30)
                if rc != 0:
                    raise BenchError(f"s_time warm-up against {s.name} exited {rc}:\n"
                                     f"{out[-2000:]}\n{s.logs()}")
        rounds = []
        for i in range(1, min(self.args.rounds, 3) + 1):
            for s in servers:
                full = None
                for mode, flag in STIME_MODES:
                    r = measure_handshakes(s, scenario, openssl, mode, flag, seconds)
                    r.update(round=i, server=s.name)
                    if mode == "full":
                        full = r
                    elif full and full["us_per_conn"] and r["us_per_conn"]:
                        # the two runs were back to back: this pair shares
                        # the machine's state of the moment
                        r["resumption"] = full["us_per_conn"] / r["us_per_conn"]
                    rounds.append(r)
                    print("   " + format_handshake_round(r), flush=True)
        return rounds

    def run_scenario(self, scenario):
        a = self.args
        connections = a.connections or scenario.connections
        duration = a.duration or scenario.duration or 5
        dir_ = tempfile.mkdtemp(prefix=f"weir-bench-{scenario.name}-")
        os.chmod(dir_, 0o755)
        if scenario.handshakes:
            how = f"openssl s_time -new/-reuse -time {duration}, {min(a.rounds, 3)} rounds"
        elif scenario.idle:
            how = f"{scenario.idle} idle connections, {min(a.rounds, 3)} rounds"
        else:
            how = f"wrk -t{a.threads} -c{connections} -d{duration}s, {a.rounds} rounds"
        print(f"\n== {scenario.name}: GET {scenario.path}  {how}  ({scenario.note})", flush=True)
        print(f"   temp dir {dir_}", flush=True)
        ok = False
        try:
            servers = []
            if scenario.backend:
                b = self.start_backend(dir_, scenario)
                print(f"   backend: weir-bench-backend on 127.0.0.1:{b.port}", flush=True)
            if not a.no_weir:
                servers.append(self.start_weir(scenario, dir_))
            if a.weir_before:
                try:
                    servers.append(self.start_weir(scenario, dir_, a.weir_before, "before"))
                except BenchError as e:  # an older build may not know a key
                    print(f"   before: skipped, its build refuses this scenario's config:"
                          f"\n   {str(e).splitlines()[-1] if str(e) else e}", flush=True)
            if not a.no_nginx and scenario.peers:
                servers.append(self.start_nginx(scenario, dir_))
            if scenario.h2o_paths and not a.no_h2o and shutil.which(a.h2o) and scenario.peers:
                servers.append(self.start_h2o(scenario, dir_))
            if scenario.floor_file and not a.no_floor and os.path.exists(a.backend):
                if not servers:
                    self.vars(scenario, dir_, 0)  # runs setup: the file must exist
                servers.append(self.start_floor(scenario, dir_))
                servers.append(self.start_floor(scenario, dir_, threads=2))
            checks = {}
            for s in servers:
                checks[s.name] = http_check(s, scenario)
                c = checks[s.name]
                wire = (f" ({c['wire_len']} on the wire, {c['headers'].get('content-encoding')})"
                        if scenario.accept_encoding else "")
                print(f"   {s.name}: {s.url(scenario.path)} -> {c['status']}, "
                      f"{c['body_len']} bytes{wire}, pids {s.pids()}", flush=True)
            if scenario.idle:
                result = summarise_idle(scenario, self.run_idle(scenario, servers))
                result["check"] = checks
                ok = True
                return result
            if scenario.handshakes:
                result = summarise_handshakes(scenario,
                                              self.run_handshakes(scenario, servers, duration),
                                              duration)
                for s in servers:  # still answering correctly after the load?
                    http_check(s, scenario)
                result["check"] = checks
                ok = True
                return result
            for s in servers:
                if a.warmup > 0:
                    run_wrk(a.wrk, s.url(scenario.path), a.threads, connections, a.warmup,
                            latency=False, headers=wrk_headers(scenario))
            rounds = []
            for i in range(1, a.rounds + 1):
                for s in servers:
                    r = self.measure(s, scenario, connections, duration)
                    r.update(round=i, server=s.name)
                    rounds.append(r)
                    print("   " + format_round(r), flush=True)
            for s in servers:  # still answering correctly after the load?
                http_check(s, scenario)
            result = summarise(scenario, rounds, connections, duration, a.threads)
            result["check"] = checks
            ok = True
            return result
        finally:
            for s in self.servers:
                s.stop()
            self.servers = []
            self.backend = None
            if ok and not a.keep:
                shutil.rmtree(dir_, ignore_errors=True)
            else:
                print(f"   kept {dir_}", file=sys.stderr)


# --------------------------------------------------------------------------
# Idle connections
# --------------------------------------------------------------------------

IDLE_BATCH = 250


def rss_kib(pids):
    """Sum of VmRSS over pids, in KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def raise_nofile(want):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


def open_idle_batch(server, path, n, expect_len=None, half_head=False):
    """n connections to server, each with one GET answered (or, half_head,
    with half a request head sent and no answer); the sockets."""
    if expect_len is None:
        expect_len = FIXED_BODY_LEN
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    if half_head:
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow".encode()
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(10)
            # close() sends RST: no TIME_WAIT pile-up over several rounds
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.connect(("127.0.0.1", server.port))
        for s in socks:
            s.sendall(req)
        for s in socks if not half_head else ():
            buf = b""
            for _ in range(64):
                buf += s.recv(65536)
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep and len(body) >= expect_len:
                    break
            if not buf.startswith(b"HTTP/1.1 200"):
                raise BenchError(f"{server.name}: idle connection answered {buf[:60]!r}")
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


FIXED_BODY_LEN = len(FIXED_BODY)


IDLE_CPU_S = 10  # window over which the server's CPU is read while connections sit


def measure_idle(server, scenario):
    n = scenario.idle

    def batch(k):
        return open_idle_batch(server, scenario.path, k, scenario.expect_len, scenario.half_head)
    if not server.alive():
        raise BenchError(f"{server.name} died\n{server.logs()}")
    # warm-up of the same shape, so buffers kept for reuse count in "before"
    for s in batch(IDLE_BATCH):
        s.close()
    time.sleep(0.5)
    pids = server.pids()
    before = rss_kib(pids)
    socks = []
    t0 = time.monotonic()
    try:
        while len(socks) < n:
            socks += batch(min(IDLE_BATCH, n - len(socks)))
        open_s = time.monotonic() - t0
        time.sleep(0.5)
        after = rss_kib(server.pids())
        # what holding them costs: the server's CPU over a quiet window
        c0, w0 = cpu_ticks(server.pids()), time.monotonic()
        time.sleep(IDLE_CPU_S)
        c1, w1 = cpu_ticks(server.pids()), time.monotonic()
        cpu_ms_per_s = (c1 - c0) * 1000.0 / CLK_TCK / (w1 - w0)
        t1 = time.monotonic()
        c = open_idle_batch(server, scenario.path, 1, scenario.expect_len)
        new_ms = (time.monotonic() - t1) * 1000
        c[0].close()
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    if not server.alive():
        raise BenchError(f"{server.name} died holding idle connections\n{server.logs()}")
    return {"connections": n, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_conn": (after - before) / n, "open_s": round(open_s, 2),
            "idle_cpu_ms_per_s": round(cpu_ms_per_s, 2),
            "new_client_ms": round(new_ms, 2)}


def format_idle_round(r):
    return (f"round {r['round']} {r['server']:<5}  RSS {r['rss_before_kib']} -> "
            f"{r['rss_after_kib']} KiB  {r['kib_per_conn']:.2f} KiB/conn  "
            f"idle cpu {r['idle_cpu_ms_per_s']:.1f} ms/s  "
            f"opened in {r['open_s']:.1f}s  new client {r['new_client_ms']:.1f}ms")


def summarise_idle(scenario, rounds):
    medians = {}
    for name in ("weir", "nginx"):
        if any(r["server"] == name for r in rounds):
            medians[name] = {k: med(rounds, name, k)
                             for k in ("kib_per_conn", "idle_cpu_ms_per_s", "new_client_ms")}
    ratio = {}
    if "weir" in medians and "nginx" in medians and medians["weir"]["kib_per_conn"]:
        ratio["memory"] = medians["nginx"]["kib_per_conn"] / medians["weir"]["kib_per_conn"]
    return {"name": scenario.name, "kind": "idle", "path": scenario.path, "note": scenario.note,
            "connections": scenario.idle, "rounds": rounds, "median": medians, "ratio": ratio}


# --------------------------------------------------------------------------
# TLS handshakes: openssl s_time
# --------------------------------------------------------------------------

# mode name -> s_time flag. "full": a fresh session per connection, every
# handshake a full one; "resumed": the session of the previous connection
# offered each time (TLS 1.3: its ticket), so the server resumes it.
STIME_MODES = (("full", "-new"), ("resumed", "-reuse"))
# A resumed run may hold a few full handshakes (a ticket key rotating
# mid-run); more than 1 % means resumption does not work, which would make
# the "resumed" figures a second set of full ones.
MIN_RESUMED_SHARE = 0.99


def stime_argv(openssl, server, path, flag, seconds, extra=()):
    return [openssl, "s_time", "-connect", f"127.0.0.1:{server.port}", "-tls1_3", flag,
            "-time", str(seconds), "-www", path] + list(extra)


def parse_stime(out):
    """(connections, bytes read, connections resumed) of one s_time timing
    block: its progress line (one character per connection, 'r' when the
    session was reused) and its "N connections in X.XXs; ..." line."""
    m = re.search(r"\n([*rt23]*)\n\n(\d+) connections in [\d.]+s; [\d.]+ connections/user "
                  r"sec, bytes read (\d+)\n", out)
    if not m:
        raise BenchError(f"s_time output has no connection count:\n{out[-2000:]}")
    conns, progress = int(m.group(2)), m.group(1)
    if len(progress) != conns:
        raise BenchError(f"s_time counted {conns} connections but printed {len(progress)} "
                         f"marks:\n{out[-2000:]}")
    return conns, int(m.group(3)), progress.count("r")


def check_stime_round(server, scenario, mode, r, out):
    """Fails loudly when a run did not measure what it claims to."""
    conns = r["connections"]
    where = f"{scenario.name}: {server.name}: s_time {mode}"
    if conns == 0:
        raise BenchError(f"{where}: no connection completed\n{out[-2000:]}\n{server.logs()}")
    if r["bytes_per_conn"] < scenario.expect_len:
        raise BenchError(f"{where}: {r['bytes_per_conn']:.0f} bytes read per connection, "
                         f"less than the {scenario.expect_len}-byte body: requests failed\n"
                         f"{server.logs()}")
    if mode == "full" and r["resumed"]:
        raise BenchError(f"{where}: {r['resumed']} of {conns} connections resumed a session")
    if mode == "resumed" and r["resumed"] < MIN_RESUMED_SHARE * conns:
        raise BenchError(f"{where}: only {r['resumed']} of {conns} connections resumed their "
                         f"session: {server.name} does not resume TLS 1.3 sessions\n"
                         f"{server.logs()}")


def check_resumption(openssl, server, path, extra=()):
    """Before measuring: one s_client run saving its session (TLS 1.3: the
    ticket it received), one offering it back, which must say "Reused"."""
    sess = os.path.join(server.workdir, "resume-check.pem")
    req = f"GET {path} HTTP/1.0\r\n\r\n".encode()

    def s_client(more):
        argv = [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_3",
                "-ign_eof"] + list(extra) + more
        try:
            p = subprocess.run(argv, input=req, capture_output=True, timeout=20)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{server.name}: {' '.join(argv)} did not finish within 20s")
        text = p.stdout.decode("utf-8", "replace")
        m = re.search(r"^(New|Reused), (TLSv[\d.]+)", text, re.M)
        if not m or m.group(2) != "TLSv1.3":
            raise BenchError(f"{server.name}: {' '.join(argv)}: no TLS 1.3 session "
                             f"(exit {p.returncode}):\n{text[-1500:]}"
                             f"{p.stderr.decode('utf-8', 'replace')[-1500:]}\n{server.logs()}")
        return m.group(1)

    s_client(["-sess_out", sess])
    if not os.path.exists(sess):
        raise BenchError(f"{server.name} sent no session ticket (s_client -sess_out wrote "
                         f"nothing)\n{server.logs()}")
    if s_client(["-sess_in", sess]) != "Reused":
        raise BenchError(f"{server.name} did not resume the session it issued "
                         f"(s_client -sess_in: New, not Reused)\n{server.logs()}")


def measure_handshakes(server, scenario, openssl, mode, flag, seconds):
    """One s_time run with the server's CPU time read around it."""
    if not server.alive():
        raise BenchError(f"{server.name} died\n{server.logs()}")
    pids_before = server.pids()
    t0 = cpu_ticks(pids_before)
    argv = stime_argv(openssl, server, scenario.path, flag, seconds,
                      client_cert_args(scenario, server))
    rc, out, client_cpu, wall = run_child(argv, seconds + 30)
    pids_after = server.pids()
    t1 = cpu_ticks(pids_after)
    if not server.alive():
        raise BenchError(f"{server.name} died during the run\n{server.logs()}")
    if rc != 0:
        raise BenchError(f"s_time exited {rc}: {' '.join(argv)}\n{out[-2000:]}\n{server.logs()}")
    conns, nbytes, resumed = parse_stime(out)
    cpu_s = (t1 - t0) / CLK_TCK
    r = {"mode": mode, "connections": conns, "resumed": resumed, "wall_s": round(wall, 3),
         "conn_s": conns / wall, "server_cpu_s": cpu_s, "us_per_conn": cpu_s * 1e6 / conns
         if conns else None, "client_cpu_s": round(client_cpu, 3),
         "bytes_per_conn": nbytes / conns if conns else 0, "server_pids": len(pids_after)}
    check_stime_round(server, scenario, mode, r, out)
    if pids_before != pids_after:
        r["warning"] = f"server processes changed during the run: {pids_before} -> {pids_after}"
        print(f"warning: {server.name}: {r['warning']}", file=sys.stderr)
    return r


def format_handshake_round(r):
    return (f"round {r['round']} {r['server']:<5} {r['mode']:<7}  {r['conn_s']:>7.0f} conn/s  "
            f"{fmt_num(r['us_per_conn'], '.0f'):>5} us/conn  resumed "
            f"{r['resumed']}/{r['connections']}  s_time cpu {r['client_cpu_s']:.2f}s"
            + (f"  full/resumed cpu {r['resumption']:.2f}x" if "resumption" in r else ""))


HANDSHAKE_KEYS = ("conn_s", "us_per_conn", "server_cpu_s", "client_cpu_s", "connections")


def summarise_handshakes(scenario, rounds, seconds):
    def med_mode(name, mode, key):
        vals = [r[key] for r in rounds if r["server"] == name and r["mode"] == mode
                and r.get(key) is not None]
        return statistics.median(vals) if vals else None
    medians = {}
    for name in ("weir", "nginx"):
        if any(r["server"] == name for r in rounds):
            medians[name] = {mode: {k: med_mode(name, mode, k) for k in HANDSHAKE_KEYS}
                             for mode, _ in STIME_MODES}
    ratio = {"resumption": {}}
    for name, m in medians.items():  # how much cheaper resuming is, per server
        full, res = m["full"]["us_per_conn"], m["resumed"]["us_per_conn"]
        ratio["resumption"][name] = full / res if full and res else None
    if "weir" in medians and "nginx" in medians:
        for mode, _ in STIME_MODES:
            w, n = medians["weir"][mode], medians["nginx"][mode]
            ratio[mode] = {"conn_s": w["conn_s"] / n["conn_s"] if n["conn_s"] else None,
                           "cpu": n["us_per_conn"] / w["us_per_conn"]
                           if w["us_per_conn"] and n["us_per_conn"] else None}
    return {"name": scenario.name, "kind": "handshakes", "path": scenario.path,
            "note": scenario.note, "duration_s": seconds, "protocol": "TLSv1.3",
            "rounds": rounds, "median": medians, "ratio": ratio}


def print_handshakes_table(res):
    print(f"\n{res['name']}  GET {res['path']}  openssl s_time -new / -reuse, "
          f"{res['duration_s']}s per run, {res['protocol']}, one connection at a time")
    head = (f"{'round':<7}{'server':<7}{'mode':<9}{'conn/s':>8}{'us/conn':>9}{'srv cpu s':>11}"
            f"{'s_time cpu s':>14}{'resumed':>14}")
    print(head)
    print("-" * len(head))

    def row(label, name, d, resumed):
        print(f"{label:<7}{name:<7}{d['mode']:<9}{fmt_num(d['conn_s'], '.0f'):>8}"
              f"{fmt_num(d['us_per_conn'], '.1f'):>9}{fmt_num(d['server_cpu_s'], '.2f'):>11}"
              f"{fmt_num(d['client_cpu_s'], '.2f'):>14}{resumed:>14}")
    for r in res["rounds"]:
        row(str(r["round"]), r["server"], r, f"{r['resumed']}/{r['connections']}")
    print("-" * len(head))
    for name, m in res["median"].items():
        for mode, _ in STIME_MODES:
            row("median", name, dict(m[mode], mode=mode), "")
    q = res["ratio"]
    parts = [f"{name} {fmt_num(x, '.2f')}x" for name, x in q["resumption"].items()]
    print("resumption (full us/conn / resumed us/conn): " + "  ".join(parts)
          + "   (> 1: a resumed handshake costs the server less)")
    if "full" in q:
        print("weir/nginx: " + "   ".join(
            f"{mode}: conn/s {fmt_num(q[mode]['conn_s'], '.2f')}x, cpu (nginx us/conn / "
            f"weir us/conn) {fmt_num(q[mode]['cpu'], '.2f')}x" for mode, _ in STIME_MODES)
            + "   (> 1 is better for weir)")


def handshakes_summary_line(res):
    q = res["ratio"]
    parts = []
    for name, m in res["median"].items():
        f, r = m["full"], m["resumed"]
        parts.append(f"{name} full {fmt_num(f['conn_s'], '.0f')} conn/s "
                     f"{fmt_num(f['us_per_conn'], '.0f')} µs/conn, resumed "
                     f"{fmt_num(r['conn_s'], '.0f')} conn/s {fmt_num(r['us_per_conn'], '.0f')} "
                     f"µs/conn ({fmt_num(q['resumption'][name], '.2f')}x cheaper)")
    line = f"{res['name']}: " + " | ".join(parts)
    if "full" in q:
        line += " | ratio " + ", ".join(
            f"{mode} {fmt_num(q[mode]['conn_s'], '.2f')}x conn/s "
            f"{fmt_num(q[mode]['cpu'], '.2f')}x cpu" for mode, _ in STIME_MODES)
    return line


def med(rounds, server, key):
    vals = [r[key] for r in rounds if r["server"] == server and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarise(scenario, rounds, connections, duration, threads):
    medians = {}
    for name in ("weir", "before", "nginx", "h2o", "floor", "floor2"):
        if any(r["server"] == name for r in rounds):
            medians[name] = {k: med(rounds, name, k) for k in
                             ("req_s", "p50_ms", "p99_ms", "transfer_Bps", "us_per_req",
                              "server_cpu_s", "wrk_cpu_s", "errors", "backend_us_per_req",
                              "bytes_per_resp")}
    ratio = {}
    if "weir" in medians and "nginx" in medians:
        w, n = medians["weir"], medians["nginx"]
        ratio["req_s"] = w["req_s"] / n["req_s"] if n["req_s"] else None
        ratio["cpu"] = (n["us_per_req"] / w["us_per_req"]
                        if w["us_per_req"] and n["us_per_req"] else None)
        ratio["p99"] = w["p99_ms"] / n["p99_ms"] if n["p99_ms"] else None
    if "weir" in medians and "h2o" in medians:
        w, h = medians["weir"], medians["h2o"]
        ratio["cpu_h2o"] = (h["us_per_req"] / w["us_per_req"]
                            if w["us_per_req"] and h["us_per_req"] else None)
    if "weir" in medians and "floor" in medians:
        w, f = medians["weir"], medians["floor"]
        ratio["cpu_floor"] = (w["us_per_req"] / f["us_per_req"]
                              if w["us_per_req"] and f["us_per_req"] else None)
    if "weir" in medians and "before" in medians:
        w, b = medians["weir"], medians["before"]
        ratio["before_cpu"] = (w["us_per_req"] / b["us_per_req"]
                               if w["us_per_req"] and b["us_per_req"] else None)
        ratio["before_req_s"] = w["req_s"] / b["req_s"] if b["req_s"] else None
        ratio["before_p99"] = w["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None
    if "weir" in medians and "floor2" in medians:
        w, f = medians["weir"], medians["floor2"]
        ratio["cpu_floor2"] = (w["us_per_req"] / f["us_per_req"]
                               if w["us_per_req"] and f["us_per_req"] else None)
    return {"name": scenario.name, "path": scenario.path, "note": scenario.note,
            "accept_encoding": scenario.accept_encoding,
            "connections": connections, "threads": threads, "duration_s": duration,
            "rounds": rounds, "median": medians, "ratio": ratio}


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def fmt_ms(ms):
    if ms is None:
        return "-"
    return f"{ms * 1e3:.0f}us" if ms < 1 else f"{ms:.2f}ms" if ms < 1000 else f"{ms / 1e3:.2f}s"


def fmt_num(x, spec):
    return "-" if x is None else format(x, spec)


def format_round(r):
    backend = (f"  (backend {fmt_num(r['backend_us_per_req'], '.1f')} us/req)"
               if "backend_us_per_req" in r else "")
    return (f"round {r['round']} {r['server']:<5}  {r['req_s']:>10.0f} req/s  "
            f"p99 {fmt_ms(r['p99_ms']):>8}  {r['transfer_Bps'] / 1048576:>7.1f} MiB/s  "
            f"{fmt_num(r['us_per_req'], '.1f'):>6} us/req  errors {r['errors']}{backend}")


def print_table(res):
    if res.get("kind") == "handshakes":
        print_handshakes_table(res)
        return
    if res.get("kind") == "idle":
        print(f"\n{res['name']}  {res['connections']} idle keep-alive connections")
        for name, d in res["median"].items():
            print(f"median {name:<6} {d['kib_per_conn']:.2f} KiB per idle connection, "
                  f"{d['idle_cpu_ms_per_s']:.1f} ms CPU per second while they sit, "
                  f"new client answered in {d['new_client_ms']:.1f} ms")
        if res["ratio"]:
            print(f"weir/nginx: memory (nginx KiB / weir KiB) "
                  f"{fmt_num(res['ratio']['memory'], '.2f')}x  (> 1 is better for weir)")
        return
    print(f"\n{res['name']}  GET {res['path']}  c={res['connections']} t={res['threads']} "
          f"d={res['duration_s']}s")
    head = (f"{'round':<7}{'server':<7}{'req/s':>10}{'p50':>10}{'p99':>10}{'MiB/s':>9}"
            f"{'us/req':>9}{'srv cpu s':>11}{'wrk cpu s':>11}{'errors':>8}")
    print(head)
    print("-" * len(head))

    def row(label, name, d):
        print(f"{label:<7}{name:<7}{fmt_num(d['req_s'], '.0f'):>10}{fmt_ms(d['p50_ms']):>10}"
              f"{fmt_ms(d['p99_ms']):>10}{fmt_num(d['transfer_Bps'] / 1048576, '.1f'):>9}"
              f"{fmt_num(d['us_per_req'], '.2f'):>9}{fmt_num(d['server_cpu_s'], '.2f'):>11}"
              f"{fmt_num(d['wrk_cpu_s'], '.2f'):>11}{fmt_num(d['errors'], '.0f'):>8}")
    for r in res["rounds"]:
        row(str(r["round"]), r["server"], r)
    print("-" * len(head))
    for name, d in res["median"].items():
        row("median", name, d)
    for name, d in res["median"].items():
        if d.get("backend_us_per_req") is not None:
            print(f"backend behind {name}: {d['backend_us_per_req']:.2f} us/req (median; not "
                  f"counted in {name}'s us/req)")
    if res.get("accept_encoding"):
        for name, d in res["median"].items():
            print(f"bytes per response ({res['accept_encoding']}), {name}: "
                  f"{fmt_num(d.get('bytes_per_resp'), '.0f')} (head included)")
    q = res["ratio"]
    if q.get("req_s") is not None or q.get("cpu") is not None:
        print(f"weir/nginx: req/s {fmt_num(q['req_s'], '.2f')}x   "
              f"cpu (nginx us/req / weir us/req) {fmt_num(q['cpu'], '.2f')}x   "
              f"p99 (weir/nginx) {fmt_num(q['p99'], '.2f')}x   (> 1 is better for weir, "
              f"except p99)")
    if q.get("cpu_h2o") is not None:
        print(f"weir/h2o: cpu (h2o us/req / weir us/req) {fmt_num(q['cpu_h2o'], '.2f')}x")
    if q.get("cpu_floor") is not None:
        print(f"weir/floor: cpu (weir us/req / no-work server us/req) "
              f"{fmt_num(q['cpu_floor'], '.2f')}x (1.00x would be no work at all)")
    if q.get("before_cpu") is not None:
        print(f"weir/before: cpu (weir us/req / before us/req) {fmt_num(q['before_cpu'], '.2f')}x"
              f"   req/s {fmt_num(q['before_req_s'], '.2f')}x   p99 "
              f"{fmt_num(q['before_p99'], '.2f')}x   (< 1 cpu is an improvement)")
    if q.get("cpu_floor2") is not None:
        print(f"weir/floor2: cpu (weir us/req / 2-thread no-work server us/req) "
              f"{fmt_num(q['cpu_floor2'], '.2f')}x (the floor at weir's worker count)")


def summary_line(res):
    if res.get("kind") == "handshakes":
        return handshakes_summary_line(res)
    if res.get("kind") == "idle":
        parts = [f"{name} {d['kib_per_conn']:.2f} KiB/idle conn "
                 f"{d['idle_cpu_ms_per_s']:.1f} ms/s CPU"
                 for name, d in res["median"].items()]
        line = f"{res['name']}: " + " | ".join(parts)
        if res["ratio"]:
            line += f" | ratio {fmt_num(res['ratio']['memory'], '.2f')}x memory"
        return line
    parts = []
    for name, d in res["median"].items():
        backend = (f" (backend {d['backend_us_per_req']:.1f} µs/req)"
                   if d.get("backend_us_per_req") is not None else "")
        size = (f" {fmt_num(d.get('bytes_per_resp'), '.0f')} B/resp"
                if res.get("accept_encoding") else "")
        parts.append(f"{name} {d['req_s']:.0f} req/s {fmt_num(d['us_per_req'], '.1f')} µs/req "
                     f"p99 {fmt_ms(d['p99_ms'])}{size}{backend}")
    line = f"{res['name']}: " + " | ".join(parts)
    q = res["ratio"]
    if "req_s" in q:
        line += (f" | ratio {fmt_num(q['req_s'], '.2f')}x req/s, "
                 f"{fmt_num(q['cpu'], '.2f')}x cpu")
    if q.get("cpu_h2o") is not None:
        line += f" | {fmt_num(q['cpu_h2o'], '.2f')}x cpu vs h2o"
    if q.get("cpu_floor") is not None:
        line += f" | weir {fmt_num(q['cpu_floor'], '.2f')}x the floor's cpu"
    if q.get("before_cpu") is not None:
        line += f" | {fmt_num(q['before_cpu'], '.2f')}x the before build's cpu"
    if q.get("cpu_floor2") is not None:
        line += f", {fmt_num(q['cpu_floor2'], '.2f')}x the 2-thread floor's"
    errs = sum(r["errors"] for r in res["rounds"])
    if errs:
        line += f"  [!] {errs} wrk errors"
    return line


# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="weir vs nginx benchmark (see bench/README.md)")
    p.add_argument("--weir", default="build/release/weir", help="weir binary")
    p.add_argument("--no-weir", action="store_true", help="skip weir (harness check)")
    p.add_argument("--weir-before", metavar="BINARY",
                   help="another weir build (say, main before a change) measured as "
                        "\"before\" in the same interleaved rounds: the before/after ratio "
                        "a hot-path change states")
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx",
                   help="nginx binary")
    p.add_argument("--no-nginx", action="store_true", help="skip nginx")
    p.add_argument("--h2o", default=shutil.which("h2o") or "/usr/bin/h2o",
                   help="h2o binary, for scenarios that name h2o paths (skipped when missing)")
    p.add_argument("--no-h2o", action="store_true", help="skip h2o")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the no-work reference server (weir-bench-backend) in static_1k")
    p.add_argument("--backend", help="weir-bench-backend binary for proxy scenarios "
                   "(default: next to --weir)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="wrk binary")
    p.add_argument("--openssl", default=shutil.which("openssl") or "openssl",
                   help="openssl binary (TLS certificates, s_time, s_client)")
    p.add_argument("--only", metavar="NAME", action="append",
                   help="run only this scenario (repeatable; also runs non-default ones)")
    p.add_argument("--list", action="store_true", help="list scenarios and exit")
    p.add_argument("--rounds", type=int, default=5, help="measured rounds per server (5)")
    p.add_argument("--duration", type=int, help="seconds per wrk round (scenario's, else 5)")
    p.add_argument("--connections", type=int, help="wrk connections (scenario's, else 64)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds per server (2)")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results", "last.json"),
                   help="JSON results file (bench/results/last.json)")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs")
    a = p.parse_args(argv)
    if a.no_weir and a.no_nginx:
        p.error("--no-weir and --no-nginx leave nothing to run")
    if a.rounds < 1:
        p.error("--rounds must be >= 1")
    if a.backend is None:
        a.backend = os.path.join(os.path.dirname(a.weir) or ".", "weir-bench-backend")
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.list:
        for s in SCENARIOS:
            print(f"{s.name:<14} {'default' if s.default else 'opt-in ':<8} GET {s.path:<8} "
                  f"c={s.connections:<4} {s.note}")
        return 0
    by_name = {s.name: s for s in SCENARIOS}
    if a.only:
        unknown = [n for n in a.only if n not in by_name]
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)}; have: {', '.join(by_name)}",
                  file=sys.stderr)
            return 2
        scenarios = [by_name[n] for n in a.only]
    else:
        scenarios = [s for s in SCENARIOS if s.default]

    missing = []
    if any(not s.idle and not s.handshakes for s in scenarios) and not shutil.which(a.wrk):
        missing.append(f"wrk ({a.wrk})")
    if any(s.tls for s in scenarios) and not shutil.which(a.openssl):
        missing.append(f"openssl ({a.openssl})")
    if not a.no_nginx and not shutil.which(a.nginx):
        missing.append(f"nginx ({a.nginx}); or --no-nginx")
    if not a.no_weir and not os.access(a.weir, os.X_OK):
        missing.append(f"weir ({a.weir}): `make build-release`, or --no-weir")
    if any(s.backend for s in scenarios) and not os.access(a.backend, os.X_OK):
        missing.append(f"weir-bench-backend ({a.backend}): `make build-release`, or --backend")
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 2

    # SIGTERM/SIGHUP to us: unwind through the finally blocks that stop servers.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "wrk": version_of([a.wrk, "--version"]),
        "openssl": version_of([a.openssl, "version"]),
        "nginx": None if a.no_nginx else version_of([a.nginx, "-v"]),
        "weir": None if a.no_weir else version_of([os.path.abspath(a.weir), "-V"]),
        "weir_path": None if a.no_weir else os.path.abspath(a.weir),
        "args": vars(a),
    }
    print(f"weir bench: {meta['cpus']} CPUs shared by wrk and the servers; "
          f"wrk: {meta['wrk']}; nginx: {meta['nginx']}; weir: {meta['weir']}")

    if any(sc.idle for sc in scenarios):
        # the servers inherit it: weir raises its own to the hard limit,
        # nginx workers keep it
        need = max(sc.idle for sc in scenarios) + 1024
        if raise_nofile(need) < need:
            print(f"RLIMIT_NOFILE hard limit too low for {need} descriptors; "
                  f"skipping idle scenarios", file=sys.stderr)
            scenarios = [sc for sc in scenarios if not sc.idle]

    bench = Bench(a)
    results = []
    t_start = time.monotonic()
    try:
        for sc in scenarios:
            res = bench.run_scenario(sc)
            results.append(res)
            print_table(res)
    except BenchError as e:
        print(f"\nbench: FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        for s in bench.servers:
            s.stop()

    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
    print("\nsummary (medians):")
    for res in results:
        print(summary_line(res))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "scenarios": results}, f, indent=2)
        f.write("\n")
    print(f"\nwrote {a.out} ({meta['elapsed_s']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
