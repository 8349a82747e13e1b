#!/usr/bin/env python3
"""Issue 13.19: the access log to a FIFO or a socket.

Two workers serve a burst of requests whose access lines are near the 8 KiB
cap (longer than PIPE_BUF) while the log's reader reads nothing: every
request is still answered promptly, the lines past weir's bounded buffering
are dropped and counted in /metrics, and once the reader reads, every line
it gets is whole (parsed, each request at most once) and read + dropped
adds up to the burst. Then a slow reader: the same, with lines flowing. The
same over a unix stream socket on weir's stdout (access_log = /dev/stdout,
as systemd's journal would be). A FIFO nobody reads is an error at start
naming the path, not a hang."""

import sys
sys.dont_write_bytecode = True

import os
import re
import socket
import threading
import time
import unittest

import weirtest
from weirtest import HOST, Client, Weir, free_port, request_bytes

INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 2
access_log = @LOG@
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[route all]
match = prefix:/
return = 200 ok
"""

PAD = 7900          # target length: the line is just under the 8 KiB cap
ANSWER_BOUND = 2.0  # seconds: generous; a worker blocked on the log never answers
BURST = 400         # ~3.2 MB of lines: far past every buffer on the way

LINE = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /r/(?P<id>\d{5})\?pad=(?P<pad>a*) '
                  r'HTTP/1\.1" 200 2 "-" "-"$')


def metric(port, name):
    with Client((HOST, port)) as c:
        c.send(request_bytes("GET", "/metrics"))
        r = c.read_response()
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
    if not m:
        raise AssertionError("no %s in /metrics" % name)
    return int(m.group(1))


def dropped(port):
    return metric(port, "weir_access_log_dropped_lines_total")


class Lines:
    """Bytes read from the log, split into parsed lines."""

    def __init__(self):
        self.buf = b""
        self.ids = []

    def feed(self, data):
        self.buf += data
        *whole, self.buf = self.buf.split(b"\n")
        for raw in whole:
            m = LINE.match(raw.decode("latin-1"))
            if not m or len(m.group("pad")) != PAD:
                raise AssertionError("mangled access line (%d bytes): %r...%r"
                                     % (len(raw), raw[:120], raw[-80:]))
            self.ids.append(int(m.group("id")))


def burst(case, port, first_id, n):
    """n requests, one connection each (spread over both workers); each must
    be answered within ANSWER_BOUND."""
    worst = 0.0
    for i in range(first_id, first_id + n):
        target = "/r/%05d?pad=%s" % (i, "a" * PAD)
        start = time.monotonic()
        with Client((HOST, port), timeout=ANSWER_BOUND + 3) as c:
            c.send(request_bytes("GET", target, host="localhost"))
            r = c.read_response()
        worst = max(worst, time.monotonic() - start)
        case.assertEqual(r.status, 200)
    case.assertLess(worst, ANSWER_BOUND, "a request waited on the stalled log reader")


def wait_dropped(case, admin_port, timeout=5.0):
    """Polls /metrics until lines were dropped (worker buffers flush every
    100 ms); returns the count."""
    deadline = time.monotonic() + timeout
    for _ in range(500):
        n = dropped(admin_port)
        if n > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    case.assertGreater(n, 0, "no dropped lines counted while the reader was stalled")
    return n


def read_all_lines(case, read, lines, admin_port, want, drops_before=0, timeout=15.0):
    """Reads (read(): bytes, b"" when nothing now) until every request is
    either read or counted as dropped."""
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        data = read()
        if data:
            lines.feed(data)
            continue
        got = len(lines.ids) + dropped(admin_port) - drops_before
        if got >= want or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    case.assertEqual(len(lines.ids) + dropped(admin_port) - drops_before, want,
                     "lines read + dropped != requests")
    case.assertEqual(len(set(lines.ids)), len(lines.ids), "a line was written twice")


class FifoTest(unittest.TestCase):
    def setUp(self):
        self.admin = free_port()
        self.weir = Weir(INI, subst={"LOG": "@TMP@/access.fifo", "ADMIN": self.admin},
                         start=False)
        self.fifo = os.path.join(self.weir.tmp, "access.fifo")
        os.mkfifo(self.fifo)

    def tearDown(self):
        self.weir.cleanup()

    def test_no_reader_is_an_error_at_start(self):
        proc = weirtest.run_weir(["-c", self.weir.ini_path], timeout=10)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(self.fifo, proc.stderr)
        self.assertIn("FIFO", proc.stderr)

    def test_stalled_then_slow_reader(self):
        rfd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            self.weir.start()
            self.stalled_then_slow(rfd)
            self.weir.stop()
        finally:
            self.weir.kill()
            os.close(rfd)

    def stalled_then_slow(self, rfd):
        def read(size=1 << 16):
            try:
                return os.read(rfd, size)
            except BlockingIOError:
                return b""

        burst(self, self.weir.port, 0, BURST)  # the reader reads nothing meanwhile
        wait_dropped(self, self.admin)
        lines = Lines()
        read_all_lines(self, read, lines, self.admin, BURST)
        self.assertTrue(lines.ids, "no line reached the reader")

        # A slow reader: 4 KiB every 5 ms (the sleep is the slowness under test).
        slow = Lines()
        stop = threading.Event()
        got = []

        def reader():
            while not stop.is_set():
                data = read(4096)
                if data:
                    got.append(data)
                time.sleep(0.005)

        before = dropped(self.admin)
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            burst(self, self.weir.port, 10000, 200)

            def take():
                return got.pop(0) if got else b""
            read_all_lines(self, take, slow, self.admin, 200, drops_before=before)
        finally:
            stop.set()
            t.join(5)


class SocketTest(unittest.TestCase):
    """weir's stdout is a unix stream socket the test holds (as systemd's
    journal would); access_log = /dev/stdout."""

    def test_stalled_socket_reader(self):
        admin = free_port()
        w = Weir(INI, subst={"LOG": "/dev/stdout", "ADMIN": admin}, start=False)
        path = os.path.join(w.tmp, "log.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(10)
        w.argv_prefix = [sys.executable, "-c",
                         "import os, socket, sys\n"
                         "s = socket.socket(socket.AF_UNIX)\n"
                         "s.connect(sys.argv[1])\n"
                         "os.dup2(s.fileno(), 1)\n"
                         "os.execv(sys.argv[2], sys.argv[2:])\n", path]
        conn = None
        try:
            w.start()
            conn, _ = srv.accept()
            conn.setblocking(False)

            def read():
                try:
                    return conn.recv(1 << 16)
                except BlockingIOError:
                    return b""

            burst(self, w.port, 0, BURST)
            wait_dropped(self, admin)
            lines = Lines()
            read_all_lines(self, read, lines, admin, BURST)
            self.assertTrue(lines.ids, "no line reached the reader")
            w.stop()
        finally:
            w.kill()
            if conn:
                conn.close()
            srv.close()
            w.cleanup()


if __name__ == "__main__":
    weirtest.main()
