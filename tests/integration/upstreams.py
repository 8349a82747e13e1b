"""Scriptable HTTP/1.1 backends for the proxy integration tests.

A Backend listens on 127.0.0.1 (an ephemeral port) or a unix socket, serves
each connection in a thread with keep-alive, and records what it received,
so tests can check exactly what weir forwarded. Standard library only, every
socket with a timeout, every loop bounded.

Paths (query parameters in brackets):
  /echo...            JSON: method, target, headers (list of [name, value]),
                      body_len, body_sha256, name, conn (connection number)
  /big[size]          size bytes of a repeatable pattern, Content-Length
  /chunked[size,n]    size bytes in n chunks, Transfer-Encoding: chunked
  /close[size]        size bytes, no framing: the end is the close
                      (these three add Content-Type, Content-Encoding,
                      Cache-Control and ETag fields when the query has type,
                      ce, cc, etag)
  /die[size,send]     announces size bytes, sends `send`, then closes
  /slow[ms]           waits ms before answering "slow"
  /drip[n]            an event stream: n small chunks, the next one when
                      the test sets drip_go
  /bad                a malformed response head
  /status[code]       that status, small body
  /healthz            200 "ok" while healthy, else 503
  /ws[refuse,badaccept,send,close]
                      WebSocket upgrade: 101 with the Sec-WebSocket-Accept of
                      the request's key (and its first subprotocol), then
                      `send`'s bytes, then echoes bytes (or closes: close);
                      refuse: 403; badaccept: a wrong accept value
  /hold[ms]           reads the request, sends nothing for ms, then closes
  /quietclose         answers with keep-alive allowed, then closes anyway
Anything else answers 200 with the path.

With tls=ssl_context (tlstest.server_context) the backend speaks TLS:
each connection's handshake is recorded in tls_log (sni, reused, version,
alpn), a failed handshake counts in tls_failures, and /echo adds "tls".
"""

import hashlib
import json
import os
import socket
import ssl
import struct
import threading
import time
import urllib.parse

IO_TIMEOUT = 10.0
PATTERN = bytes(range(256)) * 256  # 64 KiB


PP_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _recv_exact(s, n):
    data = b""
    for _ in range(10000):
        if len(data) >= n:
            return data
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    raise ValueError("no progress")


def read_proxy_header(s):
    """Reads exactly one PROXY v1 or v2 header off socket s; returns it as a
    dict: v (1, 2), and for v1 proto, src, dst, sport, dport; for v2 cmd
    ("proxy", "local"), fam, and src, dst, dport for TCP4, src for TCP6."""
    first = _recv_exact(s, 12)
    if first == PP_SIG:
        rest = _recv_exact(s, 4)
        cmd, fam, length = rest[0], rest[1], struct.unpack(">H", rest[2:4])[0]
        body = _recv_exact(s, length)
        h = {"v": 2, "cmd": "local" if cmd == 0x20 else "proxy", "fam": fam}
        if fam == 0x11:
            h.update(src=socket.inet_ntoa(body[0:4]), dst=socket.inet_ntoa(body[4:8]),
                     dport=struct.unpack(">H", body[10:12])[0])
        elif fam == 0x21:
            h["src"] = socket.inet_ntop(socket.AF_INET6, body[0:16])
        return h
    line = first
    for _ in range(200):
        if line.endswith(b"\r\n"):
            break
        line += _recv_exact(s, 1)
    parts = line.decode().split()
    h = {"v": 1, "proto": parts[1]}
    if parts[1] in ("TCP4", "TCP6"):
        h.update(src=parts[2], dst=parts[3], sport=int(parts[4]), dport=int(parts[5]))
    return h


def extra_fields(q):
    """Response fields the query asks for: type (Content-Type), ce
    (Content-Encoding), cc (Cache-Control), etag (a strong ETag)."""
    out = ""
    for key, name in (("type", "Content-Type"), ("ce", "Content-Encoding"),
                      ("cc", "Cache-Control")):
        if key in q:
            out += "%s: %s\r\n" % (name, q[key])
    if "etag" in q:
        out += 'ETag: "%s"\r\n' % q["etag"]
    return out


def ws_accept(key):
    """RFC 6455 §4.2.2's Sec-WebSocket-Accept for key."""
    import base64
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def pattern_bytes(size):
    """The body /big, /chunked and /close send for size."""
    reps = size // len(PATTERN) + 1
    return (PATTERN * reps)[:size]


def pattern_sha256(size):
    h = hashlib.sha256()
    left = size
    while left > 0:
        n = min(left, len(PATTERN))
        h.update(PATTERN[:n])
        left -= n
    return h.hexdigest()


class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), as received
        self.body = body

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_until(self, marker, limit=1 << 20):
        for _ in range(100000):
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self.fill()
        raise ValueError("no marker")

    def read_exact(self, n, sink=None):
        """Reads n bytes; into sink (a hash) when given, else returned."""
        out = []
        while n > 0:
            if not self.buf:
                self.fill()
            take = self.buf[:n]
            self.buf = self.buf[n:]
            n -= len(take)
            if sink is not None:
                sink.update(take)
            else:
                out.append(take)
        return b"".join(out)


class Backend:
    def __init__(self, name="b", unix_path=None, keep_body=True, tls=None,
                 proxy_protocol=False, host="127.0.0.1", port=0):
        # host, port: where to listen (any 127.0.0.0/8 address is local on
        # Linux: the DNS tests put backends of one name on several)
        self.name = name
        self.host = host
        self.tls = tls
        # proxy_protocol: every connection starts with a PROXY v1/v2 header
        # (before TLS), parsed into proxy_headers as (conn number, dict) and
        # shown by /echo as "pp"
        self.proxy_protocol = proxy_protocol
        self.proxy_headers = []
        self.tls_log = []            # dicts, one per TLS connection, in handshake order
        self.tls_failures = 0
        self._sni = threading.local()
        if tls is not None:
            tls.sni_callback = self._on_sni
        self.unix_path = unix_path
        self.keep_body = keep_body
        self.requests = []           # Request objects, in arrival order
        self.n_connections = 0
        self.n_open = 0
        self.healthy = True
        self.lock = threading.Lock()
        self.closed_early = 0        # connections closed by the peer mid-request
        self.drip_go = threading.Event()  # /drip: send the next chunk
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if os.path.exists(unix_path):
                os.unlink(unix_path)
            self.sock.bind(unix_path)
            self.port = None
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "unix:" + self.unix_path if self.unix_path else "%s:%d" % (self.host, self.port)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()
        if self.unix_path and os.path.exists(self.unix_path):
            os.unlink(self.unix_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.n_connections += 1
                self.n_open += 1
                number = self.n_connections
            threading.Thread(target=self._serve, args=(s, number), daemon=True).start()

    def _on_sni(self, sslobj, name, ctx):
        self._sni.name = name  # the handshake runs on the connection's thread

    def _handshake(self, s):
        """The TLS socket for s, or None when the handshake failed."""
        self._sni.name = None
        try:
            t = self.tls.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.tls_failures += 1
            return None
        info = {"sni": self._sni.name, "reused": t.session_reused, "version": t.version(),
                "alpn": t.selected_alpn_protocol()}
        with self.lock:
            self.tls_log.append(info)
        t.weir_info = info
        return t

    def _serve(self, s, number):
        s.settimeout(IO_TIMEOUT)
        # Small writes (TLS tickets, then the response) must not wait for
        # weir's delayed ACK: Nagle costs ~40 ms per new connection.
        if not self.unix_path:  # a unix socket has no Nagle (EOPNOTSUPP)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pp = None
        if self.proxy_protocol:
            try:
                pp = read_proxy_header(s)
            except (EOFError, OSError, ValueError, IndexError):
                pp = {"error": True}
            with self.lock:
                self.proxy_headers.append((number, pp))
        if self.tls is not None:
            t = self._handshake(s)
            if t is None:
                with self.lock:
                    self.n_open -= 1
                s.close()
                return
            s = t
        c = _Conn(s)
        c.pp = pp
        try:
            for _ in range(100000):
                if not self.running:
                    return
                req = self._read_request(c)
                if req is None:
                    return
                with self.lock:
                    self.requests.append(req)
                if not self._answer(c, req, number):
                    return
        except (EOFError, ConnectionError, socket.timeout, ValueError, OSError):
            return
        finally:
            with self.lock:
                self.n_open -= 1
            try:
                s.close()
            except OSError:
                pass

    def _read_request(self, c):
        try:
            head = c.read_until(b"\r\n\r\n")
        except EOFError:
            return None
        lines = head[:-4].split(b"\r\n")
        method, target, version = lines[0].decode("latin-1").split(" ", 2)
        headers = []
        for line in lines[1:]:
            n, v = line.decode("latin-1").split(":", 1)
            headers.append((n, v.strip()))
        req = Request(method, target, version, headers, b"")
        h = hashlib.sha256()
        te = req.header("Transfer-Encoding")
        length = 0
        body = []
        if te is not None and te.lower() == "chunked":
            for _ in range(10 ** 7):
                size = int(c.read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while c.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                if self.keep_body:
                    chunk = c.read_exact(size)
                    body.append(chunk)
                    h.update(chunk)
                else:
                    c.read_exact(size, sink=h)
                length += size
                c.read_exact(2)
        elif req.header("Content-Length") is not None:
            length = int(req.header("Content-Length"))
            if self.keep_body:
                data = c.read_exact(length)
                body.append(data)
                h.update(data)
            else:
                c.read_exact(length, sink=h)
        req.body = b"".join(body)
        req.body_len = length
        req.body_sha256 = h.hexdigest()
        return req

    def _send(self, c, status, body=b"", headers=(), close=False):
        head = "HTTP/1.1 %d X\r\nX-Served-By: %s\r\nContent-Length: %d\r\n" % (
            status, self.name, len(body))
        for n, v in headers:
            head += "%s: %s\r\n" % (n, v)
        if close:
            head += "Connection: close\r\n"
        c.sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        return not close

    def _answer(self, c, req, number):
        u = urllib.parse.urlsplit(req.target)
        q = dict(urllib.parse.parse_qsl(u.query))
        path = u.path
        size = int(q.get("size", "1000"))
        if "/echo" in path:
            doc = {"method": req.method, "target": req.target, "version": req.version,
                   "headers": req.headers, "body_len": req.body_len,
                   "body_sha256": req.body_sha256, "name": self.name, "conn": number}
            if self.tls is not None:
                doc["tls"] = c.sock.weir_info
            if self.proxy_protocol:
                doc["pp"] = c.pp
            return self._send(c, 200, json.dumps(doc).encode(),
                              [("Content-Type", "application/json")])
        extra = extra_fields(q)
        if path == "/big":
            head = ("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\n%sContent-Length: %d\r\n\r\n"
                    % (self.name, extra, size))
            c.sock.sendall(head.encode())
            if req.method != "HEAD":
                self._send_pattern(c, size)
            return True
        if path == "/chunked":
            n = max(1, int(q.get("n", "3")))
            data = pattern_bytes(size)
            out = [("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\n%sTransfer-Encoding: chunked\r\n"
                    "Trailer: X-T\r\n\r\n" % (self.name, extra)).encode()]
            step = max(1, (size + n - 1) // n)
            for i in range(0, size, step):
                piece = data[i:i + step]
                out.append(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
            out.append(b"0\r\nX-T: 1\r\n\r\n")
            c.sock.sendall(b"".join(out))
            return True
        if path == "/close":
            c.sock.sendall(("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\n%sConnection: close\r\n\r\n"
                            % (self.name, extra)).encode())
            self._send_pattern(c, size)
            return False
        if path == "/die":
            send = int(q.get("send", "100"))
            c.sock.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size).encode())
            c.sock.sendall(pattern_bytes(send))
            time.sleep(0.05)  # the bytes leave before the close: a cut, not a reset
            return False
        if path == "/drip":
            # An event stream (text/event-stream): n small chunks, each after
            # the first sent once the test sets drip_go (10 s at most).
            c.sock.sendall(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n").encode())
            for i in range(int(q.get("n", "3"))):
                if i:
                    self.drip_go.wait(IO_TIMEOUT)
                    self.drip_go.clear()
                data = b"data: event %d\n\n" % i
                c.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            c.sock.sendall(b"0\r\n\r\n")
            return True
        if path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            return self._send(c, 200, b"slow")
        if path == "/hold":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            return False
        if path == "/quietclose":
            # Keep-alive announced, then closed: the pooled connection is dead.
            self._send(c, 200, b"bye")
            return False
        if path == "/bad":
            c.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
            return False
        if path == "/status":
            code = int(q.get("code", "200"))
            return self._send(c, code, b"status %d" % code)
        if path == "/healthz":
            return self._send(c, 200 if self.healthy else 503, b"ok" if self.healthy else b"down")
        if path == "/ws":
            if "refuse" in q:
                return self._send(c, 403, b"no websocket here", close=True)
            key = req.header("Sec-WebSocket-Key") or ""
            accept = ws_accept(key).encode() if key and "badaccept" not in q else b"x"
            head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n")
            proto = req.header("Sec-WebSocket-Protocol")
            if proto:
                head += b"Sec-WebSocket-Protocol: " + proto.split(",")[0].strip().encode() + b"\r\n"
            c.sock.sendall(head + b"\r\n" + q.get("send", "").encode())
            if "close" in q:
                return False
            for _ in range(100000):
                data = c.buf or c.sock.recv(65536)
                c.buf = b""
                if not data:
                    return False
                c.sock.sendall(data)
            return False
        return self._send(c, 200, ("%s %s" % (self.name, path)).encode())

    def _send_pattern(self, c, size):
        left = size
        while left > 0:
            n = min(left, len(PATTERN))
            c.sock.sendall(PATTERN[:n])
            left -= n


# --------------------------------------------------------------------------
# A raw recording backend, for framing (smuggling) tests

def find_message_end(data):
    """Where the HTTP/1.1 message at the start of data ends, read leniently
    (Content-Length or chunked, else no body), or None while incomplete.
    Only tells RawBackend when to answer; the tests judge the bytes with
    their own strict reader."""
    i = data.find(b"\r\n\r\n")
    if i < 0:
        return None
    end = i + 4
    cl, is_chunked = None, False
    for line in data[:i].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length" and value.isdigit():
            cl = int(value)
        elif name == b"transfer-encoding" and value.endswith(b"chunked"):
            is_chunked = True
    if is_chunked:
        for _ in range(100000):
            j = data.find(b"\r\n", end)
            if j < 0:
                return None
            try:
                size = int(data[end:j].split(b";")[0].strip() or b"x", 16)
            except ValueError:
                return None
            end = j + 2
            if size == 0:
                k = data.find(b"\r\n\r\n", end - 2)
                return None if k < 0 else k + 4
            end += size + 2
            if end > len(data):
                return None
        return None
    if cl is not None:
        return end + cl if len(data) >= end + cl else None
    return end


class RawBackend:
    """Records the exact bytes of every connection it accepts (`conns`, one
    bytearray each, in accept order) and answers each request with what
    respond(target, n) returns (bytes; n counts requests on the connection):
    None gives the default 200 "raw TARGET", b"" closes the connection
    without answering, a (bytes, later_bytes) pair sends later_bytes 0.2 s
    after the first part (n_late_sent() counts those sent). `closed[i]`
    turns true once connection i is closed (by either side)."""

    def __init__(self, respond=None):
        self.respond = respond or (lambda target, n: None)
        self.conns = []
        self.closed = []
        self._n_late_sent = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    def mark(self):
        """A point in the recording: received(mark) gives what came after."""
        with self.lock:
            return [len(c) for c in self.conns]

    def received(self, mark=None):
        """{connection index: bytes received since mark} for every
        connection that received any."""
        mark = mark or []
        with self.lock:
            out = {}
            for i, c in enumerate(self.conns):
                start = mark[i] if i < len(mark) else 0
                if len(c) > start:
                    out[i] = bytes(c[start:])
            return out

    def n_conns(self):
        with self.lock:
            return len(self.conns)

    def n_late_sent(self):
        with self.lock:
            return self._n_late_sent

    def _accept_loop(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                rec = bytearray()
                self.conns.append(rec)
                self.closed.append(False)
                index = len(self.conns) - 1
            threading.Thread(target=self._serve, args=(s, rec, index), daemon=True).start()

    def _serve(self, s, rec, index):
        s.settimeout(IO_TIMEOUT)
        pending = b""
        n = 0
        try:
            for _ in range(100000):
                data = s.recv(65536)
                if not data:
                    return
                with self.lock:
                    rec.extend(data)
                pending += data
                for _ in range(1000):
                    end = find_message_end(pending)
                    if end is None:
                        break
                    first = pending[:end].split(b"\r\n", 1)[0].split(b" ")
                    target = first[1].decode("latin-1") if len(first) > 1 else "?"
                    pending = pending[end:]
                    n += 1
                    if not self._answer(s, target, n):
                        return
        except (ConnectionError, socket.timeout, OSError):
            return
        finally:
            try:
                s.close()
            except OSError:
                pass
            with self.lock:
                self.closed[index] = True

    def _answer(self, s, target, n):
        out = self.respond(target, n)
        if out is None:
            body = ("raw %s" % target).encode("latin-1")
            out = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        if out == b"":
            return False
        if isinstance(out, tuple):
            s.sendall(out[0])
            time.sleep(0.2)  # late: the client has its answer by then (the behaviour)
            s.sendall(out[1])
            with self.lock:
                self._n_late_sent += 1
        else:
            s.sendall(out)
        return True


class RawBackendCase:
    """Mixin for a weirtest.WeirCase whose weir proxies to one RawBackend
    answering respond(target, n) (a staticmethod of the class), started
    before weir and stopped after it; @BACKEND@ is its address and @TMP@/www
    holds WWW_FILES (name -> text) for static routes beside it."""

    WWW_FILES = {}

    @classmethod
    def setUpClass(cls):
        cls.backend = RawBackend(cls.respond)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.backend.stop()

    @classmethod
    def make_subst(cls, tmp):
        os.makedirs(os.path.join(tmp, "www"))
        for name, text in cls.WWW_FILES.items():
            with open(os.path.join(tmp, "www", name), "w") as f:
                f.write(text)
        return {"BACKEND": cls.backend.addr}
