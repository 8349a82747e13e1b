#!/usr/bin/env python3
"""Pipelining: many requests in one write (or split at odd byte boundaries)
are all answered, in order."""

import sys
sys.dont_write_bytecode = True

import socket
import time

import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER + """
[route ping]
match = exact:/healthz
return = 200 ok

[route api]
match = prefix:/api/
return = 200 api

[route old]
match = exact:/old
redirect = 301 /new
"""

# (method, target, status, body)
SEQUENCE = [
    ("GET", "/healthz", 200, b"ok"),
    ("GET", "/nope", 404, None),
    ("GET", "/api/1", 200, b"api"),
    ("HEAD", "/healthz", 200, b""),
    ("GET", "/old", 301, None),
    ("GET", "/api/2?x=y", 200, b"api"),
    ("GET", "/missing/too", 404, None),
    ("POST", "/api/3", 200, b"api"),
    ("HEAD", "/nope", 404, b""),
    ("GET", "/healthz", 200, b"ok"),
]


def sequence_bytes(seq, last_close=False):
    out = b""
    for i, (method, target, _, _) in enumerate(seq):
        headers = [("X-Seq", str(i))]
        if last_close and i == len(seq) - 1:
            headers.append(("Connection", "close"))
        body = b"body-%d" % i if method == "POST" else b""
        out += request_bytes(method, target, headers=headers, body=body)
    return out


class PipeliningTest(weirtest.WeirCase):
    INI = INI

    def check_responses(self, c, seq):
        for i, (method, target, status, body) in enumerate(seq):
            r = c.read_response(method)
            self.assertEqual(r.status, status, "response %d (%s %s): %r" % (i, method, target, r))
            if body is not None:
                self.assertEqual(r.body, body, "response %d" % i)
            if status == 301:
                self.assertEqual(r.header("Location"), "/new")

    def test_ten_in_one_write(self):
        with self.client() as c:
            c.send(sequence_bytes(SEQUENCE))
            self.check_responses(c, SEQUENCE)
            self.assertTrue(c.nothing_within(0.3), "no extra bytes, connection open")
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().body, b"ok")

    def test_ten_then_close(self):
        with self.client() as c:
            c.send(sequence_bytes(SEQUENCE, last_close=True))
            self.check_responses(c, SEQUENCE)
            self.assertClosedByWeir(c, 3.0)

    def test_split_at_odd_boundaries(self):
        data = sequence_bytes(SEQUENCE)
        with self.client() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            step = 7
            for off in range(0, len(data), step):
                c.send(data[off:off + step])
                time.sleep(0.002)  # separate segments, separate reads: under test
            self.check_responses(c, SEQUENCE)

    def test_two_hundred_in_one_write(self):
        seq = [SEQUENCE[i % len(SEQUENCE)] for i in range(200)]
        with self.client(timeout=10) as c:
            c.send(sequence_bytes(seq))
            self.check_responses(c, seq)
            # More than one read event's share (32) came with the accept:
            # the connection is still watched for what comes next.
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().body, b"ok")
        self.assertServes("/healthz", body=b"ok")

    def test_many_clients_pipelining(self):
        clients = [self.client() for _ in range(8)]
        try:
            for c in clients:
                c.send(sequence_bytes(SEQUENCE))
            for c in clients:
                self.check_responses(c, SEQUENCE)
        finally:
            for c in clients:
                c.close()


if __name__ == "__main__":
    weirtest.main()
