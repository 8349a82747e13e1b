#!/usr/bin/env python3
"""Issue 17.7: `weir route [-c FILE] [--listen ADDR] [--header 'N: v']...
METHOD URL` names the route that answers a request with its file:line,
says why each route before it did not (scheme, host, method, path), and
what the route would do: the file it opens (strip_prefix, index,
precompressed variant) and the head it sends, the target and server of a
proxy route, a redirect's Location, a return's body. Exit status: 0 a route
answers, 3 404, 4 405, 5 weir answers without a route, 2 usage, 1 config
errors.

A table of requests over one config (hosts and wildcards, methods and a
405's union of Allow, regex captures into a rewrite, strip_prefix, index,
precompressed, a hash-balanced upstream, redirect, return, scheme with a
TLS listener, OPTIONS *, 501, a path that does not normalise) checks the
output and exit status; then the same requests go to weir started on the
same file, and what it answers (status, the route in its json access log,
the Location, the upstream server and target the backend saw) must be what
`weir route` said."""

import sys
sys.dont_write_bytecode = True

import json
import os
import re
import shutil
import tempfile
import time
import unittest

import weirtest
import tlstest
from weirtest import HOST, Client, free_port, request_bytes, run_weir
from upstreams import Backend
from test_access_log import wait_lines

INI = """[server]
listen = 127.0.0.1:@PORT@
listen = 127.0.0.1:@TLSPORT@ tls
workers = 1
access_log = @LOG@
access_log_format = json

[tls]
cert = @CERT@
key = @KEY@

[upstream app]
server = @ONE@
server = @TWO@
balance = hash
hash_key = uri

[route www]
host = www.example.org
match = prefix:/
return = 200 www

[route wild]
host = *.example.org
match = prefix:/
methods = GET
return = 200 wild

[route wildpost]
host = *.example.org
match = prefix:/
methods = POST PUT
return = 201 wildpost

[route secure]
scheme = https
match = prefix:/secure/
return = 200 secure

[route insecure]
scheme = http
match = prefix:/secure/
redirect = 301 https://$host/secure/

[route api]
match = regex:^/api/(\\w+)/(.*)$
proxy = app
rewrite = /echo/$1/$2

[route files]
match = prefix:/static/
root = @ROOT@
strip_prefix = /static
index = home.html
precompressed = on

[route old]
match = exact:/old
redirect = 301 https://example.org/new

[route getonly]
match = exact:/g
methods = GET
return = 200 g
"""

# (arguments after METHOD URL's options, expected exit, route name or
# "none:STATUS", regexes the output must contain)
CASES = [
    (["GET", "http://www.example.org/x"], 0, "www", [r"\[route www\] prefix:/: answers",
                                                     r"body: www"]),
    (["GET", "http://A.Example.org:8080/x"], 0, "wild",
     [r'host: "a\.example\.org"',
      r'\[route www\] prefix:/: no: host: "a\.example\.org" is not one of: www\.example\.org']),
    (["DELETE", "http://a.example.org/x"], 4, "none:405",
     [r"\[route wild\] prefix:/: no: method: DELETE is not among its methods \(GET, HEAD\)",
      r"Allow: GET, HEAD, POST, PUT"]),
    (["POST", "http://b.example.org/"], 0, "wildpost", [r"HTTP/1\.1 201 Created"]),
    (["GET", "http://example.org/secure/x"], 0, "insecure",
     [r"\[route secure\] prefix:/secure/: no: scheme: it takes only https requests; this one "
      r"came over http", r"Location: https://example\.org/secure/"]),
    (["GET", "https://example.org/secure/x"], 0, "secure", [r"listener: \S+ \(tls\)"]),
    (["--listen", "127.0.0.1:@TLSPORT@", "GET", "/secure/y"], 0, "secure", []),
    (["GET", "http://example.org/api/users/42?x=1"], 0, "api",
     [r"target sent upstream: /echo/users/42\?x=1", r"balance = hash",
      r"server: 127\.0\.0\.1:\d+ \(server [12] of 2"]),
    (["GET", "http://example.org/api/teams/a%2fb"], 0, "api",
     [r"target sent upstream: /echo/teams/a%2Fb"]),
    (["GET", "http://example.org/static/"], 0, "files",
     [r"strip_prefix: /static leaves \"/\"", r"file: @ROOT@/home\.html \(the directory's index\)",
      r"HTTP/1\.1 200 OK", r"Content-Type: text/html"]),
    (["GET", "http://example.org/static/app.css"], 0, "files",
     [r"file: @ROOT@/app\.css\n", r"Vary: Accept-Encoding"]),
    (["--header", "Accept-Encoding: gzip, br", "GET", "http://example.org/static/app.css"], 0,
     "files", [r"file: @ROOT@/app\.css\.br \(precompressed variant", r"Content-Encoding: br"]),
    (["GET", "http://example.org/static/%61pp.css", "-H", "Accept-Encoding: gzip"], 0, "files",
     [r"path: /static/app\.css ", r"file: @ROOT@/app\.css\.gz", r"Content-Encoding: gzip"]),
    (["GET", "http://example.org/static/sub"], 0, "files",
     [r"HTTP/1\.1 301 Moved Permanently", r"Location: /static/sub/"]),
    (["GET", "http://example.org/static/missing.txt"], 0, "files",
     [r"looks up: @ROOT@/missing\.txt$", r"file: none", r"HTTP/1\.1 404 Not Found"]),
    (["GET", "http://example.org/static/.env"], 0, "files",
     [r"looks up: nothing: the path names a dotfile", r"HTTP/1\.1 404 Not Found"]),
    (["GET", "http://example.org/old"], 0, "old",
     [r"Location: https://example\.org/new"]),
    (["POST", "http://example.org/g"], 4, "none:405", [r"Allow: GET, HEAD$"]),
    (["GET", "http://example.org/nowhere"], 3, "none:404",
     [r"\[route getonly\] exact:/g: no: path: match = exact:/g does not take /nowhere",
      r"no route takes this host and path"]),
    # An unknown method: 405, not 501, since routes without methods take any.
    (["BREW", "http://example.org/g"], 4, "none:405", [r"Allow: GET, HEAD$"]),
    (["GET", "http://example.org/a/../../x"], 5, "none:400",
     [r"the path does not normalise"]),
    (["OPTIONS", "*"], 5, "none:200", [r"weir answers OPTIONS \* itself; Allow: GET, HEAD"]),
]


def parse_output(out):
    """(route name or "none:STATUS", response status or None)."""
    m = re.search(r"(?m)^route: none: (\d+) ", out)
    route = "none:" + m.group(1) if m else None
    m = re.search(r"(?m)^route: (\S+) \(", out)
    if m:
        route = m.group(1)
    m = re.search(r"(?m)^response:\n  HTTP/1\.1 (\d+)", out)
    return route, int(m.group(1)) if m else None


class RouteCommandTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "sub"))
        for name, data in (("home.html", "<p>home</p>\n"), ("app.css", "a{}\n"),
                           ("app.css.br", "br"), ("app.css.gz", "gz"),
                           ("sub/home.html", "sub\n")):
            with open(os.path.join(root, name), "w") as f:
                f.write(data)
        cert, key = tlstest.make_cert(tmp, "site", "example.org", ["*.example.org"])
        cls.one, cls.two = Backend("one"), Backend("two")
        cls.root = root
        cls.log = os.path.join(tmp, "access.log")
        cls.tls_port = free_port()
        return {"ROOT": root, "LOG": cls.log, "CERT": cert, "KEY": key,
                "TLSPORT": cls.tls_port, "ONE": cls.one.addr, "TWO": cls.two.addr}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.one.stop()
        cls.two.stop()

    def ini_path(self):
        return self.weir.ini_path

    def subst(self, s):
        return s.replace("@TLSPORT@", str(self.tls_port)).replace("@ROOT@", self.root)

    def explain(self, args):
        p = run_weir(["route", "-c", self.ini_path()] + [self.subst(a) for a in args])
        self.assertNotRegex(p.stderr, r"(?i)sanitizer|runtime error", p.stderr)
        return p

    def test_table(self):
        for args, code, route, patterns in CASES:
            with self.subTest(args=args):
                p = self.explain(args)
                self.assertEqual(p.returncode, code, p.stdout + p.stderr)
                self.assertEqual(parse_output(p.stdout)[0], route, p.stdout)
                for pat in patterns:
                    self.assertRegex(p.stdout, "(?m)" + re.escape(self.root).join(
                        pat.split("@ROOT@")) if "@ROOT@" in pat else "(?m)" + pat, p.stdout)
                # Every route before the answering one is explained.
                if not route.startswith("none"):
                    self.assertRegex(p.stdout, r"(?m)^  \S+weir\.ini:\d+ \[route %s\] .*: answers$"
                                     % re.escape(route))

    def send(self, args):
        """Sends the request args describe to the running weir, as weir
        route builds it; returns the Response."""
        args = [self.subst(a) for a in args]
        headers, listen, positional = [], None, []
        while args:
            if args[0] == "--listen":
                listen = args[1]
            elif args[0] in ("-H", "--header"):
                headers.append(tuple(x.strip() for x in args[1].split(":", 1)))
            else:
                positional.append(args[0])
                args = args[1:]
                continue
            args = args[2:]
        method, url = positional
        m = re.match(r"(?i)(https?)://([^/?#]+)(.*)$", url)
        scheme, host, target = (m.group(1).lower(), m.group(2), m.group(3) or "/") if m else \
            (None, None, url)
        is_tls = scheme == "https" or listen == "127.0.0.1:%d" % self.tls_port
        port = self.tls_port if is_tls else self.weir.port
        host = host or (listen or "127.0.0.1:%d" % port)
        raw = request_bytes(method, target, host=host, headers=headers)
        sni = host.split(":")[0]
        with (tlstest.tls_client(port, sni=sni) if is_tls else Client((HOST, port))) as c:
            c.send(raw)
            return c.read_response(method=method)

    def test_agrees_with_the_server(self):
        n0 = len(wait_lines(self.log, 0, 0))
        results = []
        for args, code, route, patterns in CASES:
            p = self.explain(args)
            said_route, said_status = parse_output(p.stdout)
            r = self.send(args)
            results.append((args, p.stdout, said_route, said_status, r))
        lines = wait_lines(self.log, n0 + len(CASES))[n0:]
        self.assertEqual(len(lines), len(CASES), lines)
        for (args, out, said_route, said_status, r), line in zip(results, lines):
            with self.subTest(args=args):
                logged = json.loads(line)
                if said_route.startswith("none:"):
                    self.assertEqual(r.status, int(said_route[5:]), out)
                    self.assertEqual(logged["route"], "", out)
                    continue
                self.assertEqual(logged["route"], said_route, out)
                if said_status is not None:
                    self.assertEqual(r.status, said_status, out)
                loc = re.search(r"(?m)^  Location: (.*)$", out)
                if loc:
                    self.assertEqual(r.header("Location"), loc.group(1))
                enc = re.search(r"(?m)^  Content-Encoding: (.*)$", out)
                self.assertEqual(r.header("Content-Encoding"), enc.group(1) if enc else None)
                if said_route == "api":
                    echo = json.loads(r.body)
                    target = re.search(r"(?m)^target sent upstream: (.*)$", out).group(1)
                    server = re.search(r"(?m)^server: (\S+)", out).group(1)
                    self.assertEqual(echo["target"], target)
                    want = {self.one.addr: "one", self.two.addr: "two"}[server]
                    self.assertEqual(echo["name"], want, "the backend hash picks")


class RouteCommandErrorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-route-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_usage_and_config_errors(self):
        good = os.path.join(self.tmp, "good.ini")
        with open(good, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1\n[route a]\nmatch = prefix:/\n"
                    "return = 200 a\n")
        bad = os.path.join(self.tmp, "bad.ini")
        with open(bad, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1\nnope = 1\n")
        for args in (["GET"], ["GET", "ftp://x/"], ["GET", "x"], ["GET", "http:///x"],
                     ["--listen", "127.0.0.1:2", "GET", "/"], ["--bogus", "GET", "/"]):
            p = run_weir(["route", "-c", good] + args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stdout + p.stderr))
        p = run_weir(["route", "-c", bad, "GET", "/"])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("bad.ini:3: [server] nope", p.stderr)
        p = run_weir(["route", "-h"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: weir route", p.stdout)


if __name__ == "__main__":
    weirtest.main()
