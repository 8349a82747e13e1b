"""A small UDP DNS responder for the integration tests (issue 19: upstream
names re-resolved), on 127.0.0.1 and an ephemeral port, python3 standard
library only.

It answers A and AAAA questions from a table the test changes while it
runs (DnsServer.set), with the TTL given there; a name not in the table
gets NXDOMAIN, a name without records of the asked type an empty NOERROR
answer. mode "answer" (the default), "drop" (no reply at all: the client
times out) or "servfail" (SERVFAIL). Every socket has a timeout and every
loop is bounded by the running flag.
"""

import socket
import struct
import threading

TYPE_A, TYPE_AAAA = 1, 28
RCODE_NXDOMAIN, RCODE_SERVFAIL = 3, 2


def parse_question(msg):
    """(id, lower-cased name, qtype, end offset of the question) of a query,
    or None when it is not one we answer."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack(">HHH", msg[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, i = [], 12
    for _ in range(128):
        if i >= len(msg):
            return None
        n = msg[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(msg):
            return None
        labels.append(msg[i:i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(msg):
        return None
    qtype = struct.unpack(">H", msg[i:i + 2])[0]
    return qid, ".".join(labels).lower(), qtype, i + 4


def build_reply(msg, qid, end, rcode, rrs):
    """A reply to query msg (question copied as received: 0x20 case
    randomisation must come back unchanged) with rcode and answer records
    rrs, each (qtype, rdata bytes, ttl)."""
    head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(rrs), 0, 0)
    body = msg[12:end]
    for qtype, rdata, ttl in rrs:
        body += struct.pack(">HHHIH", 0xC00C, qtype, 1, ttl, len(rdata)) + rdata
    return head + body


class DnsServer:
    def __init__(self):
        self.lock = threading.Lock()
        self.table = {}     # name -> (list of IPv4 texts, list of IPv6 texts, ttl)
        self.mode = "answer"
        self.n_queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def set(self, name, a=(), aaaa=(), ttl=1):
        with self.lock:
            self.table[name.lower()] = (list(a), list(aaaa), ttl)

    def remove(self, name):
        with self.lock:
            self.table.pop(name.lower(), None)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _answer(self, msg):
        q = parse_question(msg)
        if q is None:
            return None
        qid, name, qtype, end = q
        with self.lock:
            self.n_queries += 1
            mode, entry = self.mode, self.table.get(name)
        if mode == "drop":
            return None
        if mode == "servfail":
            return build_reply(msg, qid, end, RCODE_SERVFAIL, [])
        if entry is None:
            return build_reply(msg, qid, end, RCODE_NXDOMAIN, [])
        a, aaaa, ttl = entry
        if qtype == TYPE_A:
            rrs = [(TYPE_A, socket.inet_pton(socket.AF_INET, x), ttl) for x in a]
        elif qtype == TYPE_AAAA:
            rrs = [(TYPE_AAAA, socket.inet_pton(socket.AF_INET6, x), ttl) for x in aaaa]
        else:
            rrs = []
        return build_reply(msg, qid, end, 0, rrs)

    def _loop(self):
        while self.running:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(msg)
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass
