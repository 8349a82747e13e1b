#!/usr/bin/env python3
"""Issue 13.1: a timeout before the response head answers 504 whatever
retries happened. The retry after a timeout may find no untried server (a
single-server upstream), or every server down by then (max_fails = 1): the
answer is still the last real failure, 504, not "no server available" 502.
A connect timeout (a listener whose accept queue is full drops our SYN) is
504 too; a refused connect stays 502."""

import sys
sys.dont_write_bytecode = True

import select
import socket

import weirtest
from weirtest import SERVER, free_port
from upstreams import Backend

INI = SERVER + """
[upstream one]
server = @S1@
read_timeout = 300ms
retries = 1

[upstream two]
server = @S1@
server = @S2@
read_timeout = 300ms
retries = 2
max_fails = 0

[upstream down]
server = @S1@
server = @S2@
read_timeout = 300ms
retries = 2
max_fails = 1
fail_timeout = 60s

[upstream full]
server = 127.0.0.1:@FULL@
connect_timeout = 300ms
retries = 1

[upstream refused]
server = 127.0.0.1:@DEAD@
retries = 1

[route one]
host = one.test
match = prefix:/
proxy = one

[route two]
host = two.test
match = prefix:/
proxy = two

[route down]
host = down.test
match = prefix:/
proxy = down

[route full]
host = full.test
match = prefix:/
proxy = full

[route refused]
host = refused.test
match = prefix:/
proxy = refused
"""

SILENT = "/slow?ms=2000"  # the backend answers long after read_timeout


def full_listener():
    """A listener whose accept queue is full: backlog 0 holds one
    connection, never accepted; a further SYN is dropped (Linux, with
    tcp_abort_on_overflow = 0), so connecting to it hangs. Returns the
    listener and the connections filling it (kept open by the caller)."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(lsn.getsockname())
        fillers.append(s)
        _, writable, _ = select.select([], [s], [], 0.3)
        if not writable:
            return lsn, fillers  # this one hangs: the queue is full
    raise AssertionError("the accept queue never filled")


class TimeoutStatusTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.s1 = Backend("s1")
        cls.s2 = Backend("s2")
        cls.full, cls.fillers = full_listener()
        return {"S1": cls.s1.addr, "S2": cls.s2.addr, "FULL": cls.full.getsockname()[1],
                "DEAD": free_port()}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.s1.stop()
        cls.s2.stop()
        for s in cls.fillers + [cls.full]:
            s.close()

    def test_single_server_read_timeout_is_504(self):
        """retries = 1 but no other server: the retry finds none."""
        before = len(self.s1.requests)
        r = self.get(SILENT, host="one.test")
        self.assertEqual(r.status, 504)
        self.assertEqual(len(self.s1.requests) - before, 1)

    def test_two_servers_both_time_out_is_504(self):
        """Both tried (retries = 2 leaves one retry unused)."""
        r = self.get(SILENT, host="two.test")
        self.assertEqual(r.status, 504)

    def test_all_servers_down_after_timeouts_is_504(self):
        """max_fails = 1: each timeout takes its server out; the last retry
        finds every server down. The next request, which tries nothing,
        gets 502 at once."""
        r = self.get(SILENT, host="down.test")
        self.assertEqual(r.status, 504)
        r = self.get(SILENT, host="down.test")
        self.assertEqual(r.status, 502)

    def test_connect_timeout_is_504(self):
        r = self.get("/x", host="full.test")
        self.assertEqual(r.status, 504)

    def test_refused_stays_502(self):
        r = self.get("/x", host="refused.test")
        self.assertEqual(r.status, 502)


if __name__ == "__main__":
    weirtest.main()
