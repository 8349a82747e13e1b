#!/usr/bin/env python3
"""Issue 15, point 4: HTTP/2 request validation (RFC 9113 §8), raw frames.

A client built on python3-h2 with its own checks off sends malformed
requests on an h2c connection: each is a stream error (RST_STREAM
PROTOCOL_ERROR) or a 400, never forwarded to the backend (its request
count does not move), and the connection keeps serving other streams."""

import sys
sys.dont_write_bytecode = True

import os
import socket
import time
import unittest

import weirtest

# python3-h2 is a Debian package: when ctest found another python3 first
# (pyenv, a venv), run this script under Debian's, which has it.
try:
    import h2  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and not os.environ.get("WEIR_H2_REEXEC"):
        os.environ["WEIR_H2_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.settings
    HAVE_H2 = True
except ImportError:
    HAVE_H2 = False

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[upstream app]
server = @APP@

[route api]
match = prefix:/api/
proxy = app

[route ret]
match = exact:/ret
return = 200 ok
"""


class RawH2:
    """One h2c connection speaking frames through python3-h2 with outbound
    validation off, so malformed requests reach the server as written."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.events = []

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def request(self, headers, body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=body is None and end)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def wait_stream(self, sid, timeout=5.0):
        """('reset', error code) or ('response', status, body) for sid."""
        deadline = time.monotonic() + timeout
        status, body = None, b""
        for _ in range(1000):
            for ev in self.events:
                if getattr(ev, "stream_id", None) != sid:
                    continue
                if isinstance(ev, h2.events.StreamReset):
                    return ("reset", ev.error_code)
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
                if isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                if isinstance(ev, h2.events.StreamEnded):
                    return ("response", status, body)
            self.events = [e for e in self.events if getattr(e, "stream_id", None) != sid
                           or isinstance(e, (h2.events.ResponseReceived,
                                             h2.events.DataReceived))]
            if time.monotonic() > deadline:
                break
            data = self.sock.recv(65536)
            if not data:
                return ("closed",)
            for ev in self.conn.receive_data(data):
                self.events.append(ev)
                if isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            self.flush()
        raise AssertionError("no end for stream %d" % sid)


def base(path=b"/api/echo/x", method=b"GET"):
    return [(b":method", method), (b":scheme", b"http"), (b":authority", b"v.test"),
            (b":path", path)]


@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class ValidationTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = weirtest.DemoApp(name="app", tmpdir=tmp)
        return {"APP": cls.app.addr}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def assertRefused(self, headers, body=None, what=""):
        """The request is a stream error or a 400, the backend never saw it,
        and the connection still answers a good request."""
        _, before = self.app.stats()
        c = RawH2(self.weir.port)
        try:
            sid = c.request(headers, body)
            got = c.wait_stream(sid)
            self.assertTrue(got == ("reset", h2.errors.ErrorCodes.PROTOCOL_ERROR) or
                            (got[0] == "response" and got[1] == 400),
                            "%s: %r" % (what, got))
            ok = c.request(base(b"/ret"))
            self.assertEqual(c.wait_stream(ok), ("response", 200, b"ok"), what)
        finally:
            c.close()
        _, after = self.app.stats()
        self.assertEqual(after, before + 1, "%s reached the backend" % what)  # +1: stats itself

    def test_good_request_passes(self):
        c = RawH2(self.weir.port)
        try:
            sid = c.request(base(b"/api/echo/ok", b"POST") + [(b"content-length", b"5")],
                            b"hello")
            got = c.wait_stream(sid)
            self.assertEqual(got[:2], ("response", 200))
            self.assertIn(b'"body_length":5', got[2])
        finally:
            c.close()

    def test_pseudo_fields_required(self):
        for drop in (b":method", b":path", b":scheme"):
            self.assertRefused([h for h in base() if h[0] != drop], what="without " + repr(drop))

    def test_pseudo_field_once_and_first(self):
        self.assertRefused(base() + [(b":path", b"/api/echo/twice")], what="two :path")
        h = base()
        self.assertRefused(h[:2] + [(b"accept", b"*/*")] + h[2:], what="pseudo after regular")
        self.assertRefused(base() + [(b":bogus", b"x")], what="unknown pseudo-field")

    def test_connection_specific_fields(self):
        for name, value in ((b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5"),
                            (b"proxy-connection", b"keep-alive"),
                            (b"transfer-encoding", b"chunked"), (b"upgrade", b"websocket"),
                            (b"te", b"gzip")):
            self.assertRefused(base() + [(name, value)], what=name.decode())

    def test_te_trailers_allowed(self):
        c = RawH2(self.weir.port)
        try:
            got = c.wait_stream(c.request(base(b"/ret") + [(b"te", b"trailers")]))
            self.assertEqual(got, ("response", 200, b"ok"))
        finally:
            c.close()

    def test_upper_case_names(self):
        self.assertRefused(base() + [(b"X-Upper", b"1")], what="upper-case name")

    def test_bad_bytes_in_values(self):
        for bad in (b"a\rb", b"a\nb", b"a\x00b"):
            self.assertRefused(base() + [(b"x-bad", bad)], what=repr(bad))

    def test_content_length_must_match_data(self):
        post = base(b"/api/echo/cl", b"POST")
        self.assertRefused(post + [(b"content-length", b"10")], b"short", what="less DATA")
        self.assertRefused(post + [(b"content-length", b"2")], b"longer", what="more DATA")


if __name__ == "__main__":
    weirtest.main()
