#!/usr/bin/env python3
"""weir-bench-backend (bench/fixed_backend.c), the upstream of the proxy_100
benchmark: a fixed 100-byte 200 per request, keep-alive, requests split
anywhere or pipelined, requests counted at exit, clean SIGTERM; -t THREADS
loops on one port (bench/run.py's floor2)."""

import sys
sys.dont_write_bytecode = True

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import weirtest
from weirtest import Client, HOST, request_bytes

BACKEND = os.environ.get("WEIR_BENCH_BACKEND") or os.path.join(
    os.path.dirname(weirtest.WEIR_BIN), "weir-bench-backend")


class BenchBackendTest(unittest.TestCase):
    ARGS = ["0"]

    def setUp(self):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([BACKEND] + self.ARGS, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err,
                                     env=weirtest.weir_env())
        deadline = time.monotonic() + weirtest.START_TIMEOUT
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", self.stderr().encode())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)
        self.assertIsNotNone(self.port, self.stderr())

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.err.close()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def test_fixed_answers(self):
        with Client((HOST, self.port)) as c:
            for _ in range(3):  # keep-alive
                c.send(request_bytes("GET", "/x"))
                r = c.read_response()
                self.assertEqual((r.status, len(r.body)), (200, 100))
            # pipelined, and a request split inside its "\r\n\r\n"
            c.send(request_bytes("GET", "/a") * 5 + b"GET /b HTTP/1.1\r\nHost: x\r\n\r")
            rs = c.read_responses(["GET"] * 5)
            self.assertTrue(all(r.status == 200 and len(r.body) == 100 for r in rs))
            self.assertTrue(c.nothing_within(0.2))
            c.send(b"\n")
            self.assertEqual(len(c.read_response().body), 100)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(10), 0)
        self.assertIn("1 connections, 9 requests", self.stderr())
        self.assertIsNone(weirtest.sanitizer_report(self.stderr()))

    def test_many_pipelined(self):
        # more than one write's worth of responses owed at once
        with Client((HOST, self.port), timeout=10) as c:
            c.send(request_bytes("GET", "/") * 2000)
            rs = c.read_responses(["GET"] * 2000)
        self.assertEqual(len(rs), 2000)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(10), 0)
        self.assertIn("2000 requests", self.stderr())


class ThreadsTest(BenchBackendTest):
    """-t 2: two loops, each with its own SO_REUSEPORT listener on the port."""
    ARGS = ["-t", "2", "0"]

    def test_connections_over_threads(self):
        clients = [Client((HOST, self.port)) for _ in range(8)]
        try:
            for c in clients:
                for _ in range(3):
                    c.send(request_bytes("GET", "/t"))
                    r = c.read_response()
                    self.assertEqual((r.status, len(r.body)), (200, 100))
        finally:
            for c in clients:
                c.close()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(10), 0)
        self.assertIn("8 connections, 24 requests", self.stderr())
        self.assertIsNone(weirtest.sanitizer_report(self.stderr()))

    def test_bad_thread_count(self):
        for bad in ("0", "17"):
            p = subprocess.run([BACKEND, "-t", bad, "0"], capture_output=True, timeout=10,
                               env=weirtest.weir_env())
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn(b"usage", p.stderr)


if __name__ == "__main__":
    weirtest.main()
