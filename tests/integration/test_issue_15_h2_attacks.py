#!/usr/bin/env python3
"""Issue 15, point 6: HTTP/2 attack defences (RFC 9113 §10.5), raw frames.

Each test mounts one attack on its own h2c connection and shows it cut
(GOAWAY with the right code, then close, or the stream reset), a second
client still served by the same (single) worker, and the cut counted in
/metrics (weir_http2_goaway_total / weir_http2_stream_errors_total by
reason). Budgets are scaled by [http2] max_concurrent_streams = 10 here:
rapid reset 20 streams at once, PING/SETTINGS, empty DATA and
WINDOW_UPDATE 100 frames, PRIORITY 40 (+1 per stream)."""

import sys
sys.dont_write_bytecode = True

import os
import re
import socket
import time
import unittest

import upstreams
import weirtest
from h2test import HAVE_H2, RawH2, get
from polling import admin_get, wait_until

if HAVE_H2:
    import hpack
    import hyperframe.frame as hf
    from h2.settings import SettingCodes

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[limits]
send_timeout = 1s

[http2]
max_concurrent_streams = 10

[upstream hang]
server = @HANG@
connect_timeout = 30s
read_timeout = 60s

[upstream big]
server = @BIG@
read_timeout = 60s

[route hang]
match = prefix:/hang/
proxy = hang

[route big]
match = prefix:/bigproxy/
proxy = big

[route ret]
match = exact:/ret
return = 200 ok

[route files]
match = prefix:/
root = @TMP@/root

[admin]
listen = 127.0.0.1:@ADMINPORT@
"""

ENHANCE_YOUR_CALM = 0xb
CANCEL = 0x8
REFUSED_STREAM = 0x7
BIG = 4 * 1024 * 1024
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"



def big_answer(target, n):
    """A 4 MiB proxied response: more than any window lets through."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG + b"b" * BIG


class RawFrames:
    """An h2c connection written frame by frame (hyperframe), for what no
    well-behaved client library sends; reads the server's frames back."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.sock.sendall(PREFACE + hf.SettingsFrame(0).serialize())

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() if hasattr(f, "serialize") else f
                                   for f in frames))

    def send_quietly(self, data):
        """Sends data; a connection the server already cut is fine."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def headers(self, sid, path, end_stream=True, end_headers=True):
        f = hf.HeadersFrame(sid, self.enc.encode(get(path)))
        f.flags.add("END_HEADERS") if end_headers else None
        f.flags.add("END_STREAM") if end_stream else None
        return f

    def next_frame(self, deadline):
        """The server's next frame, or None at EOF / reset / deadline."""
        while True:
            if len(self.buf) >= 9:
                f, length = hf.Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    f.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return f
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return None
            if not data:
                return None
            self.buf += data

    def wait_goaway(self, timeout=5.0):
        """(GOAWAY error code, closed after it) or (None, closed)."""
        deadline = time.monotonic() + timeout
        code = None
        for _ in range(100000):
            f = self.next_frame(deadline)
            if f is None:
                return code, time.monotonic() < deadline
            if isinstance(f, hf.GoAwayFrame):
                code = f.error_code

    def frames_until(self, pred, timeout=5.0):
        """Frames read until pred(frame) is true (that one included)."""
        deadline = time.monotonic() + timeout
        got = []
        for _ in range(100000):
            f = self.next_frame(deadline)
            if f is None:
                break
            got.append(f)
            if pred(f):
                break
        return got

    def close(self):
        self.sock.close()


@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class AttackTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        weirtest.write_random_file(os.path.join(root, "big.bin"), BIG)
        # A server that never answers: the kernel accepts into the backlog,
        # nobody reads. Every proxied stream to it stays in flight.
        cls.hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.hang.bind(("127.0.0.1", 0))
        cls.hang.listen(1024)
        cls.big = upstreams.RawBackend(respond=big_answer)
        cls.admin_port = weirtest.free_port()
        return {"HANG": "127.0.0.1:%d" % cls.hang.getsockname()[1], "BIG": cls.big.addr,
                "ADMINPORT": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.big.stop()
            cls.hang.close()

    def metric(self, name, reason):
        text = admin_get(self.admin_port, "/metrics")
        m = re.search(r'^%s\{reason="%s"\} (\d+)$' % (name, reason), text, re.M)
        return int(m.group(1)) if m else 0

    def assertOthersServed(self):
        c = RawH2(self.weir.port)
        try:
            sid = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(sid), ("response", 200, b"ok"))
        finally:
            c.close()

    def assertCalmed(self, attack, reason, what):
        """attack(RawFrames) floods; the connection gets GOAWAY
        ENHANCE_YOUR_CALM and is closed, the reason is counted, another
        client is served, no stream is left open."""
        before = self.metric("weir_http2_goaway_total", reason)
        c = RawFrames(self.weir.port)
        try:
            attack(c)
            code, closed = c.wait_goaway()
            self.assertEqual(code, ENHANCE_YOUR_CALM, what)
            self.assertTrue(closed, "%s: not closed after GOAWAY" % what)
        finally:
            c.close()
        wait_until(lambda: self.metric("weir_http2_goaway_total", reason) == before + 1,
                   "goaway{reason=%s} counted" % reason)
        self.assertOthersServed()
        wait_until(lambda: re.search(r"^weir_http2_streams_open 0$",
                                     admin_get(self.admin_port, "/metrics"), re.M),
                   "no HTTP/2 stream left open")

    # ---- rapid reset (CVE-2023-44487) ------------------------------------

    def test_rapid_reset(self):
        """Streams opened (each starting a proxied exchange to a server that
        never answers) and reset at once: cut after 2 x max_concurrent_streams."""
        def attack(c):
            for i in range(200):
                sid = 1 + 2 * i
                if not c.send_quietly(c.headers(sid, b"/hang/x").serialize() +
                                      hf.RstStreamFrame(sid, error_code=CANCEL).serialize()):
                    break
        self.assertCalmed(attack, "rapid_reset", "rapid reset")

    def test_resets_within_budget_are_fine(self):
        """A client cancelling a few streams (a page navigation) is served."""
        c = RawH2(self.weir.port)
        try:
            for _ in range(5):
                sid = c.request(get(b"/hang/y"))
                c.conn.reset_stream(sid)
                c.flush()
            sid = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(sid), ("response", 200, b"ok"))
            self.assertIsNone(c.goaway)
        finally:
            c.close()

    # ---- CONTINUATION flood (CVE-2024-27316) ----------------------------

    def test_continuation_flood(self):
        """HEADERS without END_HEADERS, then CONTINUATION frames without end:
        cut after nghttp2's 8 CONTINUATIONs, the head never buffered past
        max_header_size (16k here: each frame adds 1 KiB of fields)."""
        def attack(c):
            field = hpack.Encoder().encode([(b"x-filler", b"f" * 1000)])
            frames = [c.headers(1, b"/ret", end_headers=False).serialize()]
            frames += [hf.ContinuationFrame(1, field).serialize() for _ in range(64)]
            c.send_quietly(b"".join(frames))
        self.assertCalmed(attack, "continuation_flood", "CONTINUATION flood")

    # ---- control frame floods -------------------------------------------

    def test_ping_flood(self):
        self.assertCalmed(lambda c: c.send_quietly(b"".join(
            hf.PingFrame(0, opaque_data=b"%08d" % i).serialize() for i in range(400))),
            "control_flood", "PING flood")

    def test_settings_flood(self):
        self.assertCalmed(lambda c: c.send_quietly(b"".join(
            hf.SettingsFrame(0, settings={SettingCodes.ENABLE_PUSH: 0}).serialize()
            for _ in range(400))), "control_flood", "SETTINGS flood")

    def test_priority_flood(self):
        def attack(c):
            frames = [hf.PriorityFrame(1 + 2 * (i % 50), depends_on=0, stream_weight=16)
                      .serialize() for i in range(400)]
            c.send_quietly(b"".join(frames))
        self.assertCalmed(attack, "priority_flood", "PRIORITY flood")

    def test_empty_data_flood(self):
        def attack(c):
            frames = [c.headers(1, b"/hang/z", end_stream=False).serialize()]
            frames += [hf.DataFrame(1, b"").serialize() for _ in range(400)]
            c.send_quietly(b"".join(frames))
        self.assertCalmed(attack, "empty_data_flood", "empty DATA flood")

    def test_window_update_flood(self):
        self.assertCalmed(lambda c: c.send_quietly(b"".join(
            hf.WindowUpdateFrame(0, window_increment=1).serialize() for _ in range(400))),
            "window_update_flood", "WINDOW_UPDATE flood")

    def test_zero_window_update_is_a_protocol_error(self):
        """RFC 9113 §6.9: an increment of 0 on the connection is a
        connection error (nghttp2 checks it): GOAWAY PROTOCOL_ERROR."""
        c = RawFrames(self.weir.port)
        try:
            c.send(hf.WindowUpdateFrame(0, window_increment=0))
            code, closed = c.wait_goaway()
            self.assertEqual(code, 0x1)
            self.assertTrue(closed)
        finally:
            c.close()
        self.assertOthersServed()

    # ---- HPACK bomb ------------------------------------------------------

    def test_hpack_bomb(self):
        """One 4000-byte field put in the dynamic table, then referenced
        10000 times in one 10 KiB block (40 MB decoded): 431 or a reset,
        memory bounded by max_header_size, the connection still usable."""
        c = RawFrames(self.weir.port)
        try:
            enc = hpack.Encoder()
            block = enc.encode(get(b"/ret"))
            block += enc.encode([(b"x-bomb", b"a" * 4000)])  # incremental indexing
            block += b"\xbe" * 10000  # indexed: dynamic entry 62, the bomb
            f = hf.HeadersFrame(1, block)
            f.flags.add("END_HEADERS")
            f.flags.add("END_STREAM")
            c.send(f)
            got = c.frames_until(lambda f: f.stream_id == 1 and (
                isinstance(f, hf.RstStreamFrame) or "END_STREAM" in f.flags) or
                isinstance(f, hf.GoAwayFrame))
            self.assertTrue(got, "no answer to the bomb")
            last = got[-1]
            if isinstance(last, hf.HeadersFrame):
                status = hpack.Decoder().decode(last.data)[0]
                self.assertEqual(status, (":status", "431"))
            else:
                self.assertIsInstance(last, (hf.RstStreamFrame, hf.DataFrame))
            # the same connection answers the next request
            f = hf.HeadersFrame(3, enc.encode(get(b"/ret")))
            f.flags.add("END_HEADERS")
            f.flags.add("END_STREAM")
            c.send(f)
            got = c.frames_until(lambda f: f.stream_id == 3 and "END_STREAM" in f.flags)
            self.assertTrue(got and got[-1].stream_id == 3, "stream 3 unanswered: %r" % got)
        finally:
            c.close()
        self.assertOthersServed()

    # ---- concurrent streams ----------------------------------------------

    def test_streams_over_the_limit_are_refused(self):
        """Stream 11 of 10 allowed, sent before our SETTINGS could be
        acknowledged: RST_STREAM REFUSED_STREAM (RFC 9113 §5.1.2); the first
        ten stay in flight."""
        before = self.metric("weir_http2_stream_errors_total", "refused_stream")
        c = RawFrames(self.weir.port)
        try:
            c.send(*[c.headers(1 + 2 * i, b"/hang/s", end_stream=False) for i in range(11)])
            got = c.frames_until(lambda f: isinstance(f, (hf.RstStreamFrame, hf.GoAwayFrame)))
            self.assertTrue(got, "nothing refused")
            self.assertIsInstance(got[-1], hf.RstStreamFrame)
            self.assertEqual((got[-1].stream_id, got[-1].error_code), (21, REFUSED_STREAM))
        finally:
            c.close()
        wait_until(lambda: self.metric("weir_http2_stream_errors_total", "refused_stream") ==
                   before + 1, "stream_errors{reason=refused_stream} counted")
        self.assertOthersServed()

    def test_settings_advertise_the_limits(self):
        c = RawFrames(self.weir.port)
        try:
            got = c.frames_until(lambda f: isinstance(f, hf.SettingsFrame))
            s = got[-1].settings
            self.assertEqual(s.get(SettingCodes.MAX_CONCURRENT_STREAMS), 10)
            self.assertEqual(s.get(SettingCodes.HEADER_TABLE_SIZE), 4096)
            self.assertEqual(s.get(SettingCodes.MAX_HEADER_LIST_SIZE), 16384)
        finally:
            c.close()

    # ---- zero-window stall -----------------------------------------------

    def assertStallReset(self, path):
        """A stream whose window the client never opens again is reset
        (CANCEL) after send_timeout (1s); the connection serves others."""
        before = self.metric("weir_http2_stream_errors_total", "send_timeout")
        c = RawH2(self.weir.port)
        try:
            sid = c.request(get(path))
            c.stalled.add(sid)
            got = c.wait_stream(sid, timeout=10)
            self.assertEqual(got, ("reset", CANCEL))
            self.assertLess(len(c.stream(sid)["body"]), BIG)
            ok = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(ok), ("response", 200, b"ok"))
        finally:
            c.close()
        wait_until(lambda: self.metric("weir_http2_stream_errors_total", "send_timeout") ==
                   before + 1, "stream_errors{reason=send_timeout} counted")

    def test_zero_window_stall_file(self):
        self.assertStallReset(b"/big.bin")

    def test_zero_window_stall_proxy_frees_upstream(self):
        n = len(self.big.conns)
        self.assertStallReset(b"/bigproxy/x")
        wait_until(lambda: len(self.big.closed) > n and self.big.closed[n],
                   "the upstream connection closed")


IDLE_INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[limits]
keepalive_timeout = 75s

[http2]
idle_timeout = 1s

[route ret]
match = exact:/ret
return = 200 ok
"""


@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class IdleTest(weirtest.WeirCase):
    """[http2] idle_timeout, not [limits] keepalive_timeout, closes an HTTP/2
    connection without streams: GOAWAY NO_ERROR, then close."""
    INI = IDLE_INI

    def test_idle_timeout(self):
        c = RawFrames(self.weir.port)
        try:
            start = time.monotonic()
            c.send(c.headers(1, b"/ret"))
            code, closed = c.wait_goaway(timeout=10)
            self.assertEqual(code, 0)
            self.assertTrue(closed)
            self.assertLess(time.monotonic() - start, 10)
        finally:
            c.close()


if __name__ == "__main__":
    weirtest.main()
