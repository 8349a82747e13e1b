#!/usr/bin/env python3
"""Request smuggling: the classic desync vectors sent through a proxy route
to a raw recording upstream (upstreams.RawBackend keeps the exact bytes it
received). Each vector is either

  rejected:  400/501 (or 413), Connection: close, weir closes, and the
             upstream received nothing of it (nor of what followed it), or
  forwarded: every message the upstream received parses strictly, with at
             most one framing field (Content-Length or chunked, never both),
             its body re-framed by weir, nothing after its end, and a
             following request arrives as its own message only when it was
             a valid separate request.

Vectors whose fault is in the body (chunk lines) may reach the upstream as
a head and a body prefix: then the upstream connection must be closed by
weir with that message incomplete, so nothing can be read as a request.

The upstream side: a backend answering CL+TE, two CLs, a bad chunked body,
or extra bytes after its Content-Length body (at once or later) gets 502 or
a truncated answer, its connection is never reused, and the extra bytes
never reach another client."""

import sys
sys.dont_write_bytecode = True

import re
import socket
import time
import unittest

import weirtest
from polling import wait_until
from weirtest import SERVER, ProtocolError
from upstreams import RawBackend

INI = SERVER + """
[limits]
max_body_size = 1k
max_header_size = 4k

[upstream raw]
server = @RAW@
keepalive = 4
connect_timeout = 1s
read_timeout = 2s
retries = 0

[route raw]
match = prefix:/
proxy = raw
"""

TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
H = b"Host: a.test\r\n"
FOLLOW = b"GET /follow HTTP/1.1\r\nHost: a.test\r\n\r\n"
# Seconds given to bytes that must NOT reach the upstream (a smuggled
# request, the rest of a rejected body) to show up before that is checked.
# A wait before a negative check can only hide a failure, never cause one;
# what must arrive is polled for instead (wait_forwarded).
SETTLE = 0.3


class Message:
    def __init__(self, method, target, headers, body, is_complete):
        self.method, self.target, self.headers = method, target, headers
        self.body, self.is_complete = body, is_complete

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


def read_chunked(data, pos):
    """Strict chunked body at data[pos:]: (body, end) or (body, None) when
    data ends first. Raises AssertionError on anything but clean framing."""
    body = b""
    for _ in range(100000):
        j = data.find(b"\r\n", pos)
        if j < 0:
            return body, None
        m = re.match(rb"^([0-9a-fA-F]{1,16})$", data[pos:j])
        assert m, "forwarded chunk-size line %r" % data[pos:j]
        size = int(m.group(1), 16)
        pos = j + 2
        if size == 0:
            for _ in range(100):  # trailer section
                j = data.find(b"\r\n", pos)
                if j < 0:
                    return body, None
                line, pos = data[pos:j], j + 2
                if not line:
                    return body, pos
                assert b":" in line and TOKEN.match(line.split(b":")[0]), line
            raise AssertionError("trailer too long")
        if len(data) < pos + size + 2:
            return body + data[pos:pos + size], None
        body += data[pos:pos + size]
        assert data[pos + size:pos + size + 2] == b"\r\n", "chunk data not followed by CRLF"
        pos += size + 2
    raise AssertionError("too many chunks")


def parse_forwarded(data):
    """The messages in the bytes one upstream connection received, read
    strictly; the last may be incomplete (is_complete False)."""
    out = []
    pos = 0
    for _ in range(1000):
        if pos >= len(data):
            return out
        i = data.find(b"\r\n\r\n", pos)
        if i < 0:
            out.append(Message(None, None, [], b"", False))
            return out
        lines = data[pos:i].split(b"\r\n")
        for line in lines:
            assert b"\n" not in line and b"\r" not in line, "bare CR/LF in %r" % line
        parts = lines[0].split(b" ")
        assert len(parts) == 3 and parts[2] == b"HTTP/1.1", "request line %r" % lines[0]
        assert TOKEN.match(parts[0]) and parts[1][:1] == b"/", "request line %r" % lines[0]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            assert sep and TOKEN.match(name), "forwarded field %r" % line
            assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value), "CTL in %r" % line
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        msg = Message(parts[0].decode(), parts[1].decode("latin-1"), headers, b"", True)
        cls, tes = msg.all("Content-Length"), msg.all("Transfer-Encoding")
        assert len(cls) + len(tes) <= 1, "more than one framing field: %r" % headers
        pos = i + 4
        if tes:
            assert tes[0] == "chunked", "forwarded Transfer-Encoding %r" % tes[0]
            msg.body, end = read_chunked(data, pos)
            if end is None:
                msg.is_complete = False
                out.append(msg)
                return out
            pos = end
        elif cls:
            assert re.match(r"^\d+$", cls[0]), "forwarded Content-Length %r" % cls[0]
            n = int(cls[0])
            msg.body = data[pos:pos + n]
            msg.is_complete = len(data) >= pos + n
            pos += n
        out.append(msg)
    raise AssertionError("too many messages")


class SmugglingTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def setUpClass(cls):
        cls.raw = RawBackend(respond=cls.respond)
        cls.SUBST = {"RAW": cls.raw.addr}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.raw.stop()

    @staticmethod
    def respond(target, n):
        """Upstream-side vectors, chosen by the forwarded target."""
        bodies = {
            "/up/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "/up/te-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Length: 5\r\n\r\n0\r\n\r\n",
            "/up/two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                          b"hello!",
            "/up/te-unknown": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n"
                              b"5\r\nhello\r\n0\r\n\r\n",
            "/up/cl-plus": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
            "/up/bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhelloXX0\r\n\r\n",
            "/up/bad-chunk-late": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"5\r\nhello\r\n", b"zz\r\nGET /x\r\n\r\n"),
            "/up/bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
            "/up/extra": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED",
            "/up/extra-late": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                               b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"),
        }
        return bodies.get(target)

    # -- helpers -----------------------------------------------------------

    def exchange(self, raw, n_responses=1, split=None, want=None):
        """Sends raw on a fresh connection (in two writes at split, when
        given), reads up to n_responses answers, waits for the close when
        weir announced one, and for the upstream to have received want
        (see wait_forwarded) when given. Returns (responses, how_closed,
        upstream bytes received meanwhile by connection)."""
        mark = self.raw.mark()
        resps = []
        how = None
        with self.client() as c:
            if split is None:
                c.send(raw)
            else:
                c.send(raw[:split])
                time.sleep(0.1)  # two reads on weir's side: the split is under test
                c.send(raw[split:])
            for _ in range(n_responses):
                try:
                    r = c.read_response()
                except ProtocolError:
                    break
                resps.append(r)
                if r.has_token("Connection", "close"):
                    break
            if resps and resps[-1].has_token("Connection", "close") or len(resps) < n_responses:
                how, _, _ = c.wait_closed(3.0)
        if want is not None:
            self.wait_forwarded(mark, want)
        time.sleep(SETTLE)  # see SETTLE
        return resps, how, self.raw.received(mark)

    def wait_forwarded(self, mark, want, seconds=3.0):
        """Polls (bounded) until the upstream has received the complete
        messages want [(target, body)] since mark; the caller's assertions
        say what is wrong when it never does."""
        deadline = time.monotonic() + seconds
        for _ in range(500):
            try:
                msgs = self.forwarded(self.raw.received(mark))
                if [(m.target, m.body) for m in msgs if m.is_complete] == want:
                    return
            except AssertionError:
                pass  # a message still arriving
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)

    def assertRejected(self, raw, statuses=(400,), split=None):
        resps, how, got = self.exchange(raw + FOLLOW, n_responses=2, split=split)
        self.assertEqual(len(resps), 1, "one answer, then the close: %r" % resps)
        self.assertIn(resps[0].status, statuses, raw)
        self.assertTrue(resps[0].has_token("Connection", "close"), resps[0])
        self.assertIsNotNone(how, "weir did not close after %d" % resps[0].status)
        self.assertEqual(got, {}, "the upstream received a rejected request")
        self.assertServes("/fresh", body=b"raw /fresh")

    def assertBodyRejected(self, raw, good_prefix=b""):
        """A fault in the body: 400 (or just the close when the head went up
        already), and whatever the upstream saw is one incomplete message
        whose body is a prefix of good_prefix, on a connection weir closed."""
        resps, how, got = self.exchange(raw + FOLLOW, n_responses=2)
        self.assertLessEqual(len(resps), 1, resps)
        if resps:
            self.assertIn(resps[0].status, (400, 502), raw)
            self.assertTrue(resps[0].has_token("Connection", "close"), resps[0])
        self.assertIsNotNone(how, "weir did not close")
        for i, data in got.items():
            msgs = parse_forwarded(data)
            self.assertEqual(len(msgs), 1, data)
            self.assertFalse(msgs[0].is_complete, "a broken body forwarded whole: %r" % data)
            self.assertTrue(good_prefix.startswith(msgs[0].body), data)
            self.assertTrue(self.wait_upstream_closed(i), "upstream connection kept open")
        self.assertServes("/fresh", body=b"raw /fresh")

    def wait_upstream_closed(self, i, seconds=3.0):
        deadline = time.monotonic() + seconds
        for _ in range(200):
            with self.raw.lock:
                if self.raw.closed[i]:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return False

    def forwarded(self, got):
        """Every message the upstream received, connection by connection."""
        msgs = []
        for data in got.values():
            msgs += parse_forwarded(data)
        return msgs

    def assertForwarded(self, raw, want, split=None):
        """want: [(target, body)] the upstream must receive, complete and
        unambiguously framed, nothing else; the client gets one answer each."""
        resps, how, got = self.exchange(raw, n_responses=len(want), split=split, want=want)
        self.assertEqual([r.status for r in resps], [200] * len(want), resps)
        self.assertEqual([r.body for r in resps], [("raw " + t).encode() for t, _ in want])
        msgs = self.forwarded(got)
        self.assertEqual([(m.target, m.body) for m in msgs], want, got)
        for m in msgs:
            self.assertTrue(m.is_complete, got)
            if m.body:
                self.assertEqual(len(m.all("Content-Length")) + len(m.all("Transfer-Encoding")),
                                 1, m.headers)
        return msgs

    # -- CL / TE conflicts -------------------------------------------------

    def test_cl_te(self):
        self.assertRejected(b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")

    def test_te_cl(self):
        self.assertRejected(b"POST /a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                            b"Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n")

    def test_te_obfuscated_rejected(self):
        # name -> (Transfer-Encoding lines, statuses)
        cases = {
            "xchunked": (b"Transfer-Encoding: xchunked\r\n", (501,)),
            "chunkedx": (b"Transfer-Encoding: chunkedx\r\n", (501,)),
            "quoted": (b'Transfer-Encoding: "chunked"\r\n', (400, 501)),
            "space_before_colon": (b"Transfer-Encoding : chunked\r\n", (400,)),
            "tab_before_colon": (b"Transfer-Encoding\t: chunked\r\n", (400,)),
            "leading_space_line": (b" Transfer-Encoding: chunked\r\n", (400,)),
            "folded": (b"Transfer-Encoding:\r\n chunked\r\n", (400,)),
            "vtab": (b"Transfer-Encoding:\x0bchunked\r\n", (400, 501)),
            "nul": (b"Transfer-Encoding: chunked\x00\r\n", (400,)),
            "chunked_identity": (b"Transfer-Encoding: chunked, identity\r\n", (400, 501)),
            "chunked_chunked": (b"Transfer-Encoding: chunked, chunked\r\n", (400,)),
            "two_fields_chunked_first": (b"Transfer-Encoding: chunked\r\n"
                                         b"Transfer-Encoding: identity\r\n", (400, 501)),
            "two_fields_identity_first": (b"Transfer-Encoding: identity\r\n"
                                          b"Transfer-Encoding: chunked\r\n", (400, 501)),
            "two_fields_chunked": (b"Transfer-Encoding: chunked\r\n"
                                   b"Transfer-Encoding: chunked\r\n", (400,)),
            "gzip_chunked": (b"Transfer-Encoding: gzip, chunked\r\n", (501,)),
            "empty": (b"Transfer-Encoding: \r\n", (400,)),
            "empty_element": (b"Transfer-Encoding: , chunked\r\n", (400, 501)),
            "with_cl_xchunked": (b"Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n",
                                 (400, 501)),
            "with_cl_space_colon": (b"Content-Length: 4\r\nTransfer-Encoding : chunked\r\n",
                                    (400,)),
        }
        for name, (te, statuses) in cases.items():
            with self.subTest(name):
                self.assertRejected(b"POST /te HTTP/1.1\r\n" + H + te + b"\r\n"
                                    b"5\r\nhello\r\n0\r\n\r\n", statuses)

    def test_te_ows_forwarded(self):
        """Whitespace around a field value is OWS (RFC 9110 §5.5): these are
        plain chunked, forwarded as such."""
        for name, te in {"leading_space": b"Transfer-Encoding:  chunked\r\n",
                         "no_space": b"Transfer-Encoding:chunked\r\n",
                         "trailing_tab": b"Transfer-Encoding: chunked\t\r\n",
                         "upper": b"Transfer-Encoding: CHUNKED\r\n"}.items():
            with self.subTest(name):
                self.assertForwarded(b"POST /ows HTTP/1.1\r\n" + H + te + b"\r\n"
                                     b"5\r\nhello\r\n0\r\n\r\n" + FOLLOW,
                                     [("/ows", b"hello"), ("/follow", b"")])

    # -- Content-Length ----------------------------------------------------

    def test_content_length_rejected(self):
        for name, cl in {"different": b"Content-Length: 5\r\nContent-Length: 6\r\n",
                         "list_different": b"Content-Length: 5, 6\r\n",
                         "plus": b"Content-Length: +5\r\n",
                         "inner_space": b"Content-Length: 5 0\r\n",
                         "hex": b"Content-Length: 0x5\r\n",
                         "negative": b"Content-Length: -5\r\n",
                         "trailing_junk": b"Content-Length: 5x\r\n",
                         "empty": b"Content-Length: \r\n",
                         "overflow": b"Content-Length: 184467440737095516160\r\n",
                         "space_before_colon": b"Content-Length : 5\r\n"}.items():
            with self.subTest(name):
                self.assertRejected(b"POST /cl HTTP/1.1\r\n" + H + cl + b"\r\nhello")

    def test_content_length_duplicate_same(self):
        """Identical values are one length (RFC 9110 §8.6): forwarded with a
        single Content-Length of weir's own."""
        for name, cl in {"two_fields": b"Content-Length: 5\r\nContent-Length: 5\r\n",
                         "list": b"Content-Length: 5, 5\r\n"}.items():
            with self.subTest(name):
                msgs = self.assertForwarded(b"POST /dup HTTP/1.1\r\n" + H + cl + b"\r\nhello" +
                                            FOLLOW, [("/dup", b"hello"), ("/follow", b"")])
                self.assertEqual(msgs[0].all("Content-Length"), ["5"])

    def test_content_length_ows_forwarded(self):
        msgs = self.assertForwarded(b"POST /ows HTTP/1.1\r\n" + H + b"Content-Length:\t 5 \r\n"
                                    b"\r\nhello" + FOLLOW, [("/ows", b"hello"), ("/follow", b"")])
        self.assertEqual(msgs[0].all("Content-Length"), ["5"])

    # -- chunked bodies ----------------------------------------------------

    def test_chunk_faults(self):
        cases = {
            "size_17_digits": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
            "size_overflow": b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            "size_leading_space": b" 5\r\nhello\r\n0\r\n\r\n",
            "size_leading_tab": b"\t5\r\nhello\r\n0\r\n\r\n",
            "size_negative": b"-5\r\nhello\r\n0\r\n\r\n",
            "size_0x": b"0x5\r\nhello\r\n0\r\n\r\n",
            "size_empty": b"\r\nhello\r\n0\r\n\r\n",
            "ext_no_name": b"5;\r\nhello\r\n0\r\n\r\n",
            "ext_bad_char": b"5;a\x00=b\r\nhello\r\n0\r\n\r\n",
            "ext_unterminated_quote": b'5;a="b\r\nhello\r\n0\r\n\r\n',
            "ext_bare_lf": b"5;a=b\nhello\r\n0\r\n\r\n",
            "missing_crlf_after_data": b"5\r\nhelloXX0\r\n\r\n",
            "data_longer_than_size": b"3\r\nhello\r\n0\r\n\r\n",
            "bare_lf_size_line": b"5\nhello\r\n0\r\n\r\n",
            "bare_lf_after_data": b"5\r\nhello\n0\r\n\r\n",
            "bare_lf_last_chunk": b"5\r\nhello\r\n0\n\r\n",
            "bare_cr_after_data": b"5\r\nhello\r0\r\n\r\n",
            "trailer_fold": b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
            "trailer_nul": b"5\r\nhello\r\n0\r\nX\x00: a\r\n\r\n",
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.assertBodyRejected(b"POST /chunk HTTP/1.1\r\n" + H +
                                        b"Transfer-Encoding: chunked\r\n\r\n" + body,
                                        good_prefix=b"hello")

    def test_chunked_reframed(self):
        """Extensions and odd chunk sizes are dropped by the re-framing; the
        trailer section does not smuggle a request."""
        body = (b"2;name=value\r\nhe\r\n003;q=\"x;y\"\r\nllo\r\n0\r\nX-T: 1\r\n\r\n")
        self.assertForwarded(b"POST /rf HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                             b"\r\n" + body + FOLLOW, [("/rf", b"hello"), ("/follow", b"")])

    # -- head syntax -------------------------------------------------------

    def test_head_faults(self):
        cases = {
            "bare_lf": b"GET /a HTTP/1.1\nHost: a.test\n\n",
            "bare_lf_one_line": b"GET /a HTTP/1.1\r\nHost: a.test\nX: y\r\n\r\n",
            "bare_cr": b"GET /a HTTP/1.1\r\nHost: a.test\rX: y\r\n\r\n",
            "nul_in_name": b"GET /a HTTP/1.1\r\n" + H + b"X-\x00Foo: a\r\n\r\n",
            "nul_in_value": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo: a\x00b\r\n\r\n",
            "ctl_in_name": b"GET /a HTTP/1.1\r\n" + H + b"X-\x01Foo: a\r\n\r\n",
            "ctl_in_value": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo: a\x1bb\r\n\r\n",
            "del_in_value": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo: a\x7fb\r\n\r\n",
            "space_in_name": b"GET /a HTTP/1.1\r\n" + H + b"X Foo: a\r\n\r\n",
            "space_before_colon": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo : a\r\n\r\n",
            "no_colon": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo a\r\n\r\n",
            "empty_name": b"GET /a HTTP/1.1\r\n" + H + b": a\r\n\r\n",
            "obs_fold": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo: a\r\n b\r\n\r\n",
            "obs_fold_tab": b"GET /a HTTP/1.1\r\n" + H + b"X-Foo: a\r\n\tb\r\n\r\n",
            "space_after_start_line": b"GET /a HTTP/1.1\r\n Host: a.test\r\n\r\n",
            "two_hosts": b"GET /a HTTP/1.1\r\n" + H + b"Host: b.test\r\n\r\n",
            "http10_te": b"POST /a HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n0\r\n\r\n",
            "http10_te_cl": b"POST /a HTTP/1.0\r\n" + H + b"Content-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "target_with_space": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
            "target_with_ctl": b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n",
            "target_with_nul": b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n",
        }
        for name, raw in cases.items():
            with self.subTest(name):
                self.assertRejected(raw)

    def test_split_head(self):
        """A vector split across reads gives the same verdict."""
        raw = (b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")
        self.assertRejected(raw, split=len(b"POST /a HTTP/1.1\r\n" + H) + 10)

    # -- forwarded cases ---------------------------------------------------

    def test_absolute_form_other_host(self):
        """RFC 9112 §3.2.2: the target's authority wins over Host; the
        upstream gets origin-form and exactly one Host, the target's."""
        msgs = self.assertForwarded(b"GET http://other.test/abs?q=1 HTTP/1.1\r\n" + H + b"\r\n",
                                    [("/abs?q=1", b"")])
        self.assertEqual(msgs[0].all("Host"), ["other.test"])

    def test_get_with_body_pipelined(self):
        """A body on GET is framed by its Content-Length, even when it looks
        like a request; the request after it is a request of its own."""
        inner = b"GET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n"
        raw = (b"GET /g HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(inner) + inner +
               FOLLOW)
        self.assertForwarded(raw, [("/g", inner), ("/follow", b"")])
        # the same split so that the body arrives in a second read
        self.assertForwarded(raw, [("/g", inner), ("/follow", b"")], split=30)

    def test_get_without_body_pipelined(self):
        """Without a framing field the message ends at its head: the next
        bytes are the next request (and it is one), never a body."""
        raw = b"GET /n HTTP/1.1\r\n" + H + b"\r\n" + FOLLOW
        self.assertForwarded(raw, [("/n", b""), ("/follow", b"")])

    def test_pipelined_after_cl_body_bad_request(self):
        """A valid request, then garbage: the first goes up, the garbage is
        answered 400 and never reaches the upstream."""
        raw = (b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello" +
               b"GET /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + FOLLOW)
        resps, how, got = self.exchange(raw, n_responses=3, want=[("/p", b"hello")])
        self.assertEqual([r.status for r in resps], [200, 400], resps)
        self.assertIsNotNone(how)
        msgs = self.forwarded(got)
        self.assertEqual([(m.target, m.body) for m in msgs], [("/p", b"hello")])

    def test_expect_continue_oversized(self):
        """Expect: 100-continue with a Content-Length beyond max_body_size:
        413 at once, no 100 Continue, nothing forwarded."""
        mark = self.raw.mark()
        with self.client() as c:
            c.send(b"POST /big HTTP/1.1\r\n" + H + b"Content-Length: 100000\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertTrue(r.has_token("Connection", "close"), r)
            c.send(b"x" * 2000 + FOLLOW)
            how, _, _ = c.wait_closed(3.0)
            self.assertIsNotNone(how)
        time.sleep(SETTLE)  # see SETTLE
        self.assertEqual(self.raw.received(mark), {})
        self.assertServes("/fresh", body=b"raw /fresh")

    # -- upstream side -----------------------------------------------------

    def upstream_fault(self, target, statuses=(502,)):
        """One request to a misbehaving upstream: 502 (or a truncated answer
        and the close); the upstream connection that carried it is closed.
        Returns the status, or None for a truncated answer."""
        mark = self.raw.mark()
        with self.client() as c:
            c.send(b"GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n" % target.encode())
            try:
                r = c.read_response()
                status = r.status
            except ProtocolError:
                status = None  # the head went out, then the close
            if status is None or status not in statuses:
                self.assertIsNotNone(c.wait_closed(3.0)[0], "truncated answer without close")
        used = list(self.raw.received(mark))
        self.assertEqual(len(used), 1)
        self.assertTrue(self.wait_upstream_closed(used[0]), "faulty connection kept")
        return status

    def test_upstream_framing_faults(self):
        for target in ("/up/cl-te", "/up/te-cl", "/up/two-cl", "/up/te-unknown", "/up/cl-plus",
                       "/up/bare-lf"):
            with self.subTest(target):
                self.assertEqual(self.upstream_fault(target), 502)
                self.assertServes("/fresh", body=b"raw /fresh")

    def test_upstream_bad_chunked(self):
        """A chunked body broken in the bytes that came with the head: 502
        (the head was not sent yet). Broken later: the client sees the cut
        (no last chunk, then the close), never a forged end."""
        self.assertEqual(self.upstream_fault("/up/bad-chunk"), 502)
        self.assertServes("/fresh", body=b"raw /fresh")
        self.assertIsNone(self.upstream_fault("/up/bad-chunk-late"))
        self.assertServes("/fresh", body=b"raw /fresh")

    def test_upstream_extra_bytes(self):
        """Bytes after a Content-Length body are never a response to anyone:
        the connection that carried them is not reused."""
        for target in ("/up/extra", "/up/extra-late"):
            with self.subTest(target):
                mark = self.raw.mark()
                n_late = self.raw.n_late_sent()
                r = self.get(target)
                self.assertEqual((r.status, r.body), (200, b"hello"))
                if target == "/up/extra-late":
                    # the extra bytes reach the idle pooled connection
                    wait_until(lambda: self.raw.n_late_sent() > n_late,
                               "the backend to send its late bytes")
                used = set(self.raw.received(mark))
                self.assertEqual(len(used), 1)
                dirty = used.pop()
                self.assertTrue(self.wait_upstream_closed(dirty), "dirty connection kept")
                # several clients, keep-alive and fresh: none sees SMUGGLED
                with self.client() as c:
                    for k in range(4):
                        c.send(b"GET /after%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % k)
                        r = c.read_response()
                        self.assertEqual(r.body, b"raw /after%d" % k)
                for k in range(4):
                    self.assertServes("/fresh%d" % k, body=b"raw /fresh%d" % k)
                got = self.raw.received(mark)
                self.assertNotIn(dirty, [i for i, d in got.items() if b"/after" in d
                                         or b"/fresh" in d])


if __name__ == "__main__":
    weirtest.main()
