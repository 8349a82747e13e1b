#!/usr/bin/env python3
"""A client pipelining 10,000 requests without reading the answers cannot
make weir's memory grow: weir stops reading while its answers cannot be
written (the kernel's socket buffers hold the rest), and serves the whole
sequence, in order, as the client reads."""

import sys
sys.dont_write_bytecode = True

import threading
import time

import weirtest
from weirtest import request_bytes, rss_kib

N = 10000
BODY = b"x" * 1024

INI = weirtest.SERVER + """
[limits]
max_requests_per_connection = 0

[route k]
match = prefix:/k/
return = 200 """ + BODY.decode() + """
"""

RSS_BOUND_KIB = 8 * 1024  # growth allowed while the client does not read


class PipelineMemoryTest(weirtest.WeirCase):
    INI = INI

    def test_ten_thousand_unread(self):
        pid = self.weir.pid()
        self.assertServes("/k/warm", body=BODY)
        before = rss_kib(pid)
        data = b"".join(request_bytes("GET", "/k/%d" % i) for i in range(N))
        c = self.client(timeout=30)
        sent = threading.Event()
        errors = []

        def send_all():
            try:
                c.send(data)  # blocks once weir stops reading
            except OSError as e:
                errors.append(e)
            sent.set()

        t = threading.Thread(target=send_all, daemon=True)
        t.start()
        peak = before
        for _ in range(20):  # 2 s without reading a byte: the stall under test
            time.sleep(0.1)
            peak = max(peak, rss_kib(pid))
        try:
            for i in range(N):
                r = c.read_response()
                self.assertEqual(r.status, 200, "response %d" % i)
                if i % 1000 == 0:
                    peak = max(peak, rss_kib(pid))
            t.join(10)
            self.assertTrue(sent.is_set(), "the sender never finished")
            self.assertEqual(errors, [])
            self.assertTrue(c.nothing_within(0.2), "extra bytes after %d responses" % N)
        finally:
            c.close()
        print("pipelined %d requests, %d KiB of them: weir RSS %d KiB before, peak %d KiB "
              "(+%d KiB)" % (N, len(data) // 1024, before, peak, peak - before))
        self.assertLess(peak - before, RSS_BOUND_KIB)
        self.assertServes("/k/after", body=BODY)


if __name__ == "__main__":
    weirtest.main()
