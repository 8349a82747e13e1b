#!/usr/bin/env python3
"""Issue 15 point 9: WebSockets over HTTP/2 (RFC 8441 extended CONNECT).

weir offers SETTINGS_ENABLE_CONNECT_PROTOCOL when a proxy route has
websocket = on (and not otherwise). A CONNECT with :protocol websocket to
such a route goes upstream as HTTP/1.1's Upgrade GET with a key of weir's;
the upstream's 101 (its Sec-WebSocket-Accept checked) becomes 200 on the
stream, then DATA frames and the upstream socket carry the tunnel's bytes
both ways under HTTP/2 flow control. Covered: echo of several messages, a
2 MiB message each way with the reader stalled for a while, subprotocol
forwarded, an upstream that refuses (its status relayed) or answers a wrong
accept (502), routes that do not tunnel and unknown protocols (501), the
client's END_STREAM (half-close: the echo still comes back, then the end),
the client's RST_STREAM (upstream connection closed), the upstream's close
(END_STREAM), websocket_timeout, and other streams served meanwhile. The
route has compress = on: tunnel bytes are never compressed."""

import sys
sys.dont_write_bytecode = True

import hashlib
import os
import unittest

import upstreams
import weirtest
from h2test import HAVE_H2, RawH2, get
from polling import wait_until

if HAVE_H2:
    import h2.errors
    import h2.settings

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = @TMP@/access.log
error_log = stderr

[upstream app]
server = @APP@

[route ws]
match = prefix:/ws
proxy = app
websocket = on
websocket_timeout = 2s
compress = on

[route plain]
match = prefix:/plain/
proxy = app

[route ret]
match = exact:/ret
return = 200 ok

[route files]
match = prefix:/files/
root = @TMP@/root
"""

NO_WS_INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
error_log = stderr

[route ret]
match = exact:/ret
return = 200 ok
"""

ENABLE_CONNECT_PROTOCOL = 8  # RFC 8441 §3


def ws_connect(path, protocol=b"websocket", extra=()):
    return [(b":method", b"CONNECT"), (b":protocol", protocol), (b":scheme", b"http"),
            (b":authority", b"h2.test"), (b":path", path),
            (b"sec-websocket-version", b"13")] + list(extra)


@unittest.skipUnless(HAVE_H2, "python3-h2 is needed")
class H2WebSocketTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = upstreams.Backend("app", keep_body=False)
        os.makedirs(os.path.join(tmp, "root", "files"))
        with open(os.path.join(tmp, "root", "files", "a.txt"), "w") as f:
            f.write("file a\n")
        return {"APP": cls.app.addr, "TMP": tmp}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def connect(self):
        c = RawH2(self.weir.port, timeout=10)
        c.wait(lambda: c.got_settings, 5, "the server's SETTINGS")
        return c

    def open_tunnel(self, c, path=b"/ws", extra=()):
        sid = c.request(ws_connect(path, extra=extra), end=False)
        st = c.stream(sid)
        c.wait(lambda: st["status"] is not None or st["reset"] is not None, 5,
               "the answer to the CONNECT")
        self.assertEqual(st["status"], 200, st)
        return sid, st

    def send(self, c, sid, data, end=False):
        """Sends data on sid within the flow-control windows."""
        view = memoryview(data)
        for _ in range(100000):
            if not view:
                break
            room = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
            if room <= 0:
                if not c.pump():
                    raise AssertionError("connection closed while sending")
                continue
            c.conn.send_data(sid, view[:room].tobytes())
            c.flush()
            view = view[room:]
        if end:
            c.conn.end_stream(sid)
            c.flush()

    def upstream_requests(self, path):
        with self.app.lock:
            return [r for r in self.app.requests if r.target.startswith(path)]

    def test_settings_offer_extended_connect(self):
        c = self.connect()
        try:
            self.assertEqual(c.conn.remote_settings[ENABLE_CONNECT_PROTOCOL], 1)
        finally:
            c.close()

    def test_no_offer_without_websocket_routes(self):
        w = weirtest.Weir(NO_WS_INI, tmpdir=self.tmp)
        try:
            c = RawH2(w.port, timeout=5)
            sid = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 200))
            self.assertTrue(c.got_settings)
            self.assertEqual(c.conn.remote_settings.get(ENABLE_CONNECT_PROTOCOL, 0), 0)
            c.close()
        finally:
            w.stop()

    def test_echo_several_messages(self):
        c = self.connect()
        try:
            sid, st = self.open_tunnel(c, b"/ws?t=echo")
            req = self.upstream_requests("/ws?t=echo")[-1]
            self.assertEqual(req.method, "GET")
            self.assertEqual(req.header("Upgrade"), "websocket")
            self.assertIn("upgrade", req.header("Connection").lower())
            self.assertEqual(len(req.header("Sec-WebSocket-Key")), 24)
            self.assertEqual(req.header("Sec-WebSocket-Version"), "13")
            self.assertNotIn(b"sec-websocket-accept", st["headers"])
            self.assertNotIn(b"content-length", st["headers"])
            want = b""
            for i in range(5):
                msg = b"\x81\x05hello %d" % i
                want += msg
                self.send(c, sid, msg)
                c.wait(lambda: st["body"] == want, 5, "echo %d" % i)
            self.assertFalse(st["end"])
            c.conn.reset_stream(sid)
            c.flush()
        finally:
            c.close()

    def test_large_message_with_backpressure(self):
        msg = os.urandom(2 * 1024 * 1024)
        c = self.connect()
        try:
            sid, st = self.open_tunnel(c, b"/ws?t=big")
            c.stalled.add(sid)  # we read nothing for a while: weir must hold back
            self.send(c, sid, msg[:256 * 1024])
            c.wait(lambda: len(st["body"]) >= 65535 - 1024, 5, "the window's worth")
            held = len(st["body"])
            self.assertLessEqual(held, 65535)
            c.stalled.discard(sid)
            c.conn.increment_flow_control_window(held, sid)
            c.flush()
            self.send(c, sid, msg[256 * 1024:])
            c.wait(lambda: len(st["body"]) >= len(msg), 30, "2 MiB echoed")
            self.assertEqual(hashlib.sha256(st["body"]).hexdigest(),
                             hashlib.sha256(msg).hexdigest())
        finally:
            c.close()

    def test_subprotocol_forwarded(self):
        c = self.connect()
        try:
            sid, st = self.open_tunnel(
                c, b"/ws?t=proto", extra=[(b"sec-websocket-protocol", b"chat, superchat")])
            self.assertEqual(st["headers"].get(b"sec-websocket-protocol"), b"chat")
            req = self.upstream_requests("/ws?t=proto")[-1]
            self.assertEqual(req.header("Sec-WebSocket-Protocol"), "chat, superchat")
        finally:
            c.close()

    def test_upstream_refuses(self):
        c = self.connect()
        try:
            sid = c.request(ws_connect(b"/ws?refuse=1"), end=False)
            got = c.wait_stream(sid)
            self.assertEqual(got[:2], ("response", 403))
            self.assertEqual(got[2], b"no websocket here")
        finally:
            c.close()

    def test_wrong_accept_is_502(self):
        c = self.connect()
        try:
            sid = c.request(ws_connect(b"/ws?badaccept=1"), end=False)
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 502))
        finally:
            c.close()

    def test_routes_that_do_not_tunnel(self):
        c = self.connect()
        try:
            for path in (b"/plain/x", b"/ret", b"/files/a.txt"):
                sid = c.request(ws_connect(path), end=False)
                self.assertEqual(c.wait_stream(sid)[:2], ("response", 501), path)
            sid = c.request(ws_connect(b"/ws", protocol=b"chat"), end=False)
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 501))
            # A forward-proxy CONNECT stays refused.
            sid = c.request([(b":method", b"CONNECT"), (b":authority", b"example.com:443")],
                            end=False)
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 405))
            self.assertEqual(self.upstream_requests("/plain/x"), [])
        finally:
            c.close()

    def test_client_end_stream_half_closes(self):
        msg = os.urandom(100 * 1024)
        c = self.connect()
        try:
            sid, st = self.open_tunnel(c, b"/ws?t=half")
            self.send(c, sid, msg, end=True)
            got = c.wait_stream(sid, timeout=10)
            # The echo server closes once it sees our end: everything came
            # back first, then END_STREAM.
            self.assertEqual(got[0], "response")
            self.assertEqual(got[2], msg)
        finally:
            c.close()

    def test_client_reset_closes_upstream(self):
        c = self.connect()
        try:
            before = self.app.n_open
            sid, st = self.open_tunnel(c, b"/ws?t=reset")
            wait_until(lambda: self.app.n_open == before + 1, "the tunnel's upstream connection")
            c.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
            c.flush()
            wait_until(lambda: self.app.n_open == before, "the upstream connection closed")
            sid = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 200))
        finally:
            c.close()

    def test_upstream_close_ends_stream(self):
        c = self.connect()
        try:
            sid = c.request(ws_connect(b"/ws?send=bye&close=1"), end=False)
            got = c.wait_stream(sid)
            self.assertEqual(got, ("response", 200, b"bye"))
        finally:
            c.close()

    def test_idle_tunnel_times_out(self):
        c = self.connect()
        try:
            sid, st = self.open_tunnel(c, b"/ws?t=idle")
            self.send(c, sid, b"ping")
            c.wait(lambda: st["body"] == b"ping", 5, "echo")
            got = c.wait_stream(sid, timeout=8)  # websocket_timeout = 2s
            self.assertEqual(got[0], "reset")
        finally:
            c.close()

    def test_other_streams_served_while_open(self):
        c = self.connect()
        try:
            sid, st = self.open_tunnel(c, b"/ws?t=mixed")
            for _ in range(3):
                for path, body in ((b"/ret", b"ok"), (b"/files/a.txt", b"file a\n")):
                    other = c.request(get(path))
                    self.assertEqual(c.wait_stream(other), ("response", 200, body))
                self.send(c, sid, b"x")
            c.wait(lambda: st["body"] == b"xxx", 5, "echo")
            self.assertFalse(st["end"])
        finally:
            c.close()
        wait_until(lambda: "CONNECT /ws?t=mixed" in open(os.path.join(self.tmp, "access.log")).read(),
                   "the tunnel in the access log")


if __name__ == "__main__":
    weirtest.main()
