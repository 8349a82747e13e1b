#!/usr/bin/env python3
"""[limits] max_headers: a request with that many fields is served; one
more gets 431 with Connection: close."""

import sys
sys.dont_write_bytecode = True

import weirtest
from weirtest import request_bytes

INI = weirtest.SERVER + """
[limits]
max_headers = 10

[route ping]
match = exact:/healthz
return = 200 ok
"""


class MaxHeadersTest(weirtest.WeirCase):
    INI = INI

    def fields(self, n):
        return [("X-F%d" % i, "v") for i in range(n)]

    def test_at_limit_served(self):
        r = self.get("/healthz", headers=self.fields(9))  # + Host = 10
        self.assertEqual(r.status, 200)

    def test_over_limit_431(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz", headers=self.fields(10)))
            r = c.read_response()
            self.assertEqual(r.status, 431)
            self.assertTrue(r.has_token("Connection", "close"))
            self.assertClosedByWeir(c, 3.0)
        self.assertServes("/healthz", body=b"ok")


if __name__ == "__main__":
    weirtest.main()
