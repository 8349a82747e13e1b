#!/usr/bin/env python3
"""Upstream servers by name and active health checks, seen from outside:
main probes each server of an [upstream] with health_check (request line,
Host, User-Agent, Connection: close), logs a server failing its check and
coming back, keeps that state across a SIGHUP reload, and a server name
that does not resolve is a config error naming file:line (weir -t, start,
and a reload, which keeps the running configuration)."""

import sys
sys.dont_write_bytecode = True

import http.server
import os
import signal
import socket
import threading
import time
import unittest

import weirtest
from weirtest import SERVER, Weir, run_weir

INI = SERVER + """
[upstream app]
server = localhost:@BPORT@
health_check = GET /hc?probe=1
health_interval = 100ms
health_timeout = 1s

[route ping]
match = exact:/healthz
return = 200 ok
"""

TAKEN_OUT = "upstream app: server 127.0.0.1:%d failed its health check (status 500): taken out"
BACK_IN = "upstream app: server 127.0.0.1:%d passed its health check: back in"


class Backend:
    """A threaded HTTP server answering every request with self.status and
    keeping the last request's line and headers (bounded: only the last)."""

    def __init__(self):
        backend = self
        self.status = 200
        self.count = 0
        self.last = None
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with backend.lock:
                    backend.count += 1
                    backend.last = (self.requestline, dict(self.headers.items()))
                    status = backend.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait_until(pred, seconds=5.0):
    deadline = time.monotonic() + seconds
    for _ in range(1000):
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return pred()


class HealthCheckTest(unittest.TestCase):
    def setUp(self):
        self.backend = Backend()
        self.addCleanup(self.backend.stop)
        self.w = Weir(INI, subst={"BPORT": self.backend.port})
        self.addCleanup(self.w.cleanup)

    def test_probe_request(self):
        self.assertTrue(wait_until(lambda: self.backend.count >= 2), "no health checks seen")
        line, headers = self.backend.last
        self.assertEqual(line, "GET /hc?probe=1 HTTP/1.1")
        self.assertEqual(headers.get("Host"), "localhost:%d" % self.backend.port)
        self.assertEqual(headers.get("User-Agent"), "weir-health")
        self.assertEqual(headers.get("Connection"), "close")
        self.w.stop()

    def test_down_up_and_reload(self):
        port = self.backend.port
        self.assertTrue(wait_until(lambda: self.backend.count >= 1))
        self.backend.status = 500
        self.assertTrue(wait_until(lambda: TAKEN_OUT % port in self.w.stderr()),
                        self.w.stderr())
        # Logged once, not at every check.
        n_before = self.backend.count
        self.assertTrue(wait_until(lambda: self.backend.count >= n_before + 3))
        self.assertEqual(self.w.stderr().count(TAKEN_OUT % port), 1)
        self.backend.status = 200
        self.assertTrue(wait_until(lambda: BACK_IN % port in self.w.stderr()), self.w.stderr())
        # A reload restarts the checker with the health carried over: no
        # new transition is logged, and checks go on.
        self.w.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "configuration reloaded" in self.w.stderr()))
        n_before = self.backend.count
        self.assertTrue(wait_until(lambda: self.backend.count >= n_before + 3))
        self.assertEqual(self.w.stderr().count(BACK_IN % port), 1)
        self.assertEqual(self.w.get("/healthz").status, 200)
        self.w.stop()

    def test_reload_with_unresolvable_name_is_refused(self):
        with open(self.w.ini_path, "w") as f:
            f.write(self.w.ini_text.replace("server = localhost:%d" % self.backend.port,
                                            "server = no-such-host.invalid:80"))
        self.w.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "reload failed" in self.w.stderr()), self.w.stderr())
        self.assertIn('weir.ini:8: [upstream app] server: cannot resolve "no-such-host.invalid": ',
                      self.w.stderr())
        self.assertEqual(self.w.get("/healthz").status, 200)
        self.w.stop()


class NameResolutionTest(unittest.TestCase):
    def test_check_names_the_line(self):
        w = Weir(INI.replace("localhost:@BPORT@", "no-such-host.invalid:@BPORT@"),
                 subst={"BPORT": 9}, start=False)
        self.addCleanup(w.cleanup)
        proc = run_weir(["-t", "-c", w.ini_path])
        self.assertEqual(proc.returncode, 1)
        self.assertIn('weir.ini:8: [upstream app] server: cannot resolve "no-such-host.invalid": ',
                      proc.stderr)

    def test_name_resolved(self):
        """localhost is taken as 127.0.0.1 without a lookup; this machine's
        own name goes through the resolver: both load."""
        name = socket.gethostname()
        try:
            socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        except OSError as e:
            self.skipTest("this machine does not resolve its own name %r: %s" % (name, e))
        w = Weir(INI.replace("localhost:@BPORT@", "localhost:@BPORT@\nserver = @NAME@:@BPORT@"),
                 subst={"BPORT": 9, "NAME": name}, start=False)
        self.addCleanup(w.cleanup)
        proc = run_weir(["-t", "-c", w.ini_path])
        self.assertEqual(proc.returncode, 0, proc.stderr)

if __name__ == "__main__":
    weirtest.main()
