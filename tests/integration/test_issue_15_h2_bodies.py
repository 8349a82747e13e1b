#!/usr/bin/env python3
"""Issue 15: request bodies over HTTP/2.

- An upload of 100 MiB through a proxied stream reaches the backend whole
  (SHA-256 at the backend), and weir's RSS does not grow with it: the
  client's window opens only as the upstream takes the bytes.
- [limits] body_timeout: a stream that announced a body and stopped sending
  it gets 408 (then RST_STREAM NO_ERROR) when nothing was answered yet, its
  upstream connection is let go, other streams on the connection are
  served, and the reason is counted (weir_http2_stream_errors_total
  {reason="body_timeout"})."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

import upstreams
import weirtest
from h2test import HAVE_H2, RawH2, get, post

if HAVE_H2:
    import h2.settings
from polling import wait_until, admin_get

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[limits]
body_timeout = 1s
max_body_size = 200m

[upstream app]
server = @APP@

[route up]
match = prefix:/up/
proxy = app

[upstream lazy]
server = @LAZY@

[route lazy]
match = prefix:/lazy/
proxy = lazy

[route ret]
match = exact:/ret
return = 200 ok

[route files]
match = prefix:/files/
root = @TMP@/root
"""

UPLOAD = 100 * 1024 * 1024
BIG_FILE = 16 * 1024 * 1024  # more than loopback's socket buffers hold (~10 MiB)
RSS_GROWTH_KIB = 48 * 1024  # far below the upload: bodies are never held whole


class LazyReader:
    """A server that reads a request head, then does not read for `pause`
    seconds (weir's upload backs up: the stream's window stays shut), then
    reads the Content-Length body and answers its SHA-256."""

    def __init__(self, pause):
        self.pause = pause
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            s, _ = self.sock.accept()
        except OSError:
            return
        s.settimeout(30)
        with s:
            data = b""
            for _ in range(1000):
                if b"\r\n\r\n" in data:
                    break
                data += s.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            self.stop_event.wait(self.pause)  # a slow server, not a wait for state
            h = hashlib.sha256(body)
            got = len(body)
            for _ in range(100000):
                if got >= length:
                    break
                chunk = s.recv(262144)
                if not chunk:
                    return
                h.update(chunk)
                got += len(chunk)
            answer = h.hexdigest().encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)

    def stop(self):
        self.stop_event.set()
        self.sock.close()
        self.thread.join(5)




class BodiesTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def setUpClass(cls):
        # A small ASan quarantine: freed memory is reused, so RSS tracks what
        # weir holds rather than what ASan keeps (as the soak test does).
        opts = os.environ.get("ASAN_OPTIONS",
                              "detect_leaks=1:abort_on_error=1:disable_coredump=1")
        os.environ["ASAN_OPTIONS"] = opts + ":quarantine_size_mb=1"
        super().setUpClass()

    @classmethod
    def make_subst(cls, tmp):
        cls.app = upstreams.Backend("app", keep_body=False)
        cls.lazy = LazyReader(pause=2.5)  # longer than body_timeout (1s)
        os.makedirs(os.path.join(tmp, "root", "files"))
        weirtest.write_random_file(os.path.join(tmp, "root", "files", "big.bin"), BIG_FILE)
        cls.admin_port = weirtest.free_port()
        return {"APP": cls.app.addr, "LAZY": cls.lazy.addr, "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()
            cls.lazy.stop()

    def stream_errors(self, reason):
        text = admin_get(self.admin_port, "/metrics")
        m = re.search(r'^weir_http2_stream_errors_total\{reason="%s"\} (\d+)$' % reason,
                      text, re.M)
        return int(m.group(1)) if m else 0

    @unittest.skipUnless(shutil.which("curl"), "curl is needed")
    def test_upload_100_mib_through_a_proxied_stream(self):
        path = os.path.join(self.tmp, "upload.bin")
        weirtest.write_random_file(path, UPLOAD)
        want = weirtest.sha256_file(path)
        pid = self.weir.pid()
        rss_before = weirtest.rss_kib(pid)
        peak = [rss_before]
        done = threading.Event()

        def sample():
            for _ in range(6000):  # 60 s at most
                if done.wait(0.01):
                    return
                peak[0] = max(peak[0], weirtest.rss_kib(pid))

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            p = subprocess.run(["curl", "-sS", "--max-time", "60", "--http2-prior-knowledge",
                                "-X", "POST", "-T", path,
                                "http://127.0.0.1:%d/up/echo" % self.weir.port],
                               capture_output=True, timeout=90)
        finally:
            done.set()
            t.join(5)
            os.unlink(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["body_len"], UPLOAD)
        self.assertEqual(doc["body_sha256"], want)
        print("\n  100 MiB up: weir RSS %d -> peak %d KiB" % (rss_before, peak[0]))
        self.assertLess(peak[0] - rss_before, RSS_GROWTH_KIB)

    def buffer_bytes(self):
        text = admin_get(self.admin_port, "/metrics")
        return int(re.search(r"^weir_conn_buffer_bytes (\d+)$", text, re.M).group(1))

    @unittest.skipUnless(HAVE_H2, "python3-h2 is needed")
    def test_output_buffer_only_while_frames_wait(self):
        """An HTTP/2 connection takes its output buffer while frames wait to
        be written (counted in weir_conn_buffer_bytes) and gives it back once
        they are: open and idle, it holds none."""
        c = RawH2(self.weir.port, timeout=10)
        try:
            # Windows wide open, then not reading: weir's frames back up.
            c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
            c.conn.increment_flow_control_window(2 ** 30)
            c.flush()
            sid = c.request(get(b"/files/big.bin"))
            wait_until(lambda: self.buffer_bytes() >= 64 * 1024,
                       "the output buffer held while the client does not read")
            # Cancel the stream, then take what weir had queued as raw bytes
            # (fast, unlike decoding 16 MiB of frames in Python), until weir
            # holds no buffer; the connection stays open.
            c.conn.reset_stream(sid)
            c.flush()
            c.sock.settimeout(0.05)
            deadline = time.monotonic() + 30
            for i in range(100000):
                try:
                    if c.sock.recv(1 << 20) == b"":
                        self.fail("weir closed the connection")
                except socket.timeout:
                    pass
                if i % 8 == 0 and self.buffer_bytes() == 0:
                    break
                self.assertLess(time.monotonic(), deadline, "the queue never drained")
            self.assertEqual(self.buffer_bytes(), 0)
            c.sock.setblocking(False)
            try:
                self.assertNotEqual(c.sock.recv(1 << 20), b"", "the connection stays open")
            except BlockingIOError:
                pass  # open, nothing more to read
        finally:
            c.close()

    @unittest.skipUnless(shutil.which("curl"), "curl is needed")
    def test_body_timeout_spares_an_upload_the_server_holds_back(self):
        """The body clock runs only while weir takes the body: an upload
        whose server does not read for 2.5 s (body_timeout 1s) is held back
        by weir's window, not cut, and arrives whole."""
        path = os.path.join(self.tmp, "lazy.bin")
        weirtest.write_random_file(path, 8 * 1024 * 1024)
        want = weirtest.sha256_file(path)
        before = self.stream_errors("body_timeout")
        p = subprocess.run(["curl", "-sS", "--max-time", "30", "--http2-prior-knowledge",
                            "-X", "POST", "-T", path,
                            "http://127.0.0.1:%d/lazy/x" % self.weir.port],
                           capture_output=True, timeout=60)
        os.unlink(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode(), want)
        self.assertEqual(self.stream_errors("body_timeout"), before)

    @unittest.skipUnless(HAVE_H2, "python3-h2 is needed")
    def test_body_timeout_408_and_others_served(self):
        before = self.stream_errors("body_timeout")
        c = RawH2(self.weir.port, timeout=10)
        try:
            # A proxied upload that stops after 100 of its 1000 bytes.
            late = c.request(post(b"/up/echo", 1000), body=b"x" * 100, end=False)
            wait_until(lambda: self.app.n_open >= 1, "the upstream connection open")
            # A stream that sends its body in time is not touched.
            ok = c.request(post(b"/up/echo", 10), body=b"0123456789")
            self.assertEqual(c.wait_stream(ok)[1], 200)
            st = c.stream(late)
            c.wait(lambda: st["reset"] is not None, 10, "RST_STREAM after the 408")
            # The whole 408 first (HEADERS, the page, END_STREAM), then
            # RST_STREAM NO_ERROR ending the client's half.
            self.assertEqual((st["status"], st["end"], st["reset"]), (408, True, 0), st)
            # The same connection goes on.
            again = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(again), ("response", 200, b"ok"))
            self.assertIsNone(c.goaway)
        finally:
            c.close()
        wait_until(lambda: self.stream_errors("body_timeout") == before + 1,
                   "stream error body_timeout counted")
        # The stopped exchange let its upstream connection go.
        wait_until(lambda: self.app.n_open <= 1, "the late upload's upstream connection closed")


if __name__ == "__main__":
    weirtest.main()
