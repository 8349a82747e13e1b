#!/usr/bin/env python3
"""Issue 13.11: HTTP -> HTTPS in one process.

One weir with a plain and a TLS listener shares one route table. Before
`scheme`, a catch-all `redirect = 301 https://...` answered on the TLS
listener too, so the browser looped. With `scheme = http` on the redirect
route it answers only plain requests; the TLS listener reaches the site's
routes. `curl -L` lands on HTTPS after exactly one redirect. A 405 from the
TLS listener lists no method of the plain-only route."""

import sys
sys.dont_write_bytecode = True

import os
import shutil
import subprocess
import unittest

import tlstest
import weirtest
from weirtest import request_bytes

NAME = "site.test"

INI = """[server]
listen = 127.0.0.1:@PORT@
listen = 127.0.0.1:@TLSPORT@ tls
workers = 1
access_log = off
error_log = stderr

[tls]
cert = @CRT@
key = @KEY@

; the usual one-file setup: everything over plain HTTP goes to HTTPS
[route to-https]
scheme = http
match = prefix:/
redirect = 301 https://$host:@TLSPORT@$request_uri

[route upload]
scheme = https
match = prefix:/upload/
methods = PUT
return = 201 stored

[route site]
scheme = https
match = prefix:/
methods = GET
return = 200 secure
"""


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class HttpsRedirectTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.crt, key = tlstest.make_cert(tmp, "site", NAME)
        cls.tls_port = weirtest.free_port()
        return {"TLSPORT": cls.tls_port, "CRT": cls.crt, "KEY": key}

    def curl(self, url, *extra):
        """Runs curl -L on url with site.test resolving to 127.0.0.1 on both
        ports; returns (status, redirects, final url, body)."""
        marker = "\n@@curl@@"
        args = ["curl", "-sS", "-L", "--max-redirs", "5", "--max-time", "20",
                "--cacert", self.crt,
                "--resolve", "%s:%d:127.0.0.1" % (NAME, self.weir.port),
                "--resolve", "%s:%d:127.0.0.1" % (NAME, self.tls_port),
                "-w", marker + "%{http_code} %{num_redirects} %{url_effective}"]
        proc = subprocess.run(args + list(extra) + [url], capture_output=True, timeout=30)
        out = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, "curl failed: %s\n%s" % (proc.stderr, out))
        body, _, tail = out.rpartition(marker)
        code, redirects, final = tail.split(" ", 2)
        return int(code), int(redirects), final, body

    def test_curl_lands_on_https_in_one_hop(self):
        url = "http://%s:%d/a/b?x=1&y=%%2F" % (NAME, self.weir.port)
        code, redirects, final, body = self.curl(url)
        self.assertEqual((code, redirects, body), (200, 1, "secure"))
        self.assertEqual(final, "https://%s:%d/a/b?x=1&y=%%2F" % (NAME, self.tls_port))

    def test_https_is_not_redirected(self):
        url = "https://%s:%d/" % (NAME, self.tls_port)
        self.assertEqual(self.curl(url), (200, 0, url, "secure"))

    def test_plain_answer_is_the_redirect(self):
        r = self.get("/p?q", host="%s:%d" % (NAME, self.weir.port))
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"),
                         "https://%s:%d/p?q" % (NAME, self.tls_port))
        # A method the TLS routes refuse is still just redirected on plain HTTP.
        r = self.get("/upload/f", method="DELETE", host=NAME)
        self.assertEqual(r.status, 301)

    def test_405_allow_ignores_plain_only_routes(self):
        with tlstest.tls_client(self.tls_port, sni=NAME) as c:
            c.send(request_bytes("DELETE", "/upload/f", host=NAME))
            r = c.read_response()
            self.assertEqual(r.status, 405)
            self.assertEqual(r.header("Allow"), "PUT, GET, HEAD")
            c.send(request_bytes("PUT", "/upload/f", host=NAME, body=b"x"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (201, b"stored"))


if __name__ == "__main__":
    weirtest.main()
