#!/usr/bin/env python3
"""Router: exact / prefix / regex, host (exact, wildcard, port and case
ignored), first match in file order, 404 page, methods and 405 with Allow,
and matching on the normalised path."""

import sys
sys.dont_write_bytecode = True


import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER + """
[route abs]
host = example.org
match = exact:/abs
return = 200 host-example.org

[route exact]
match = exact:/healthz
return = 200 exact

[route api]
match = prefix:/api/
return = 200 api

[route item]
match = regex:^/item/([0-9]+)$
return = 200 item

[route hostexact]
host = example.org
match = prefix:/h/
return = 200 host-exact

[route hostwild]
host = *.example.net
match = prefix:/h/
return = 200 host-wild

[route hostmulti]
host = a.test b.test c.test
match = prefix:/h/
return = 200 host-multi

[route first]
match = prefix:/order/
return = 200 first

[route second]
match = prefix:/order/
return = 200 second

[route getonly]
match = exact:/getonly
methods = GET
return = 200 getonly

[route postput]
match = exact:/write
methods = POST PUT
return = 200 write

[route purge]
match = exact:/purge
methods = PURGE
return = 200 purged

[route anymethod]
match = exact:/any
return = 200 any
"""


class RouterTest(weirtest.WeirCase):
    INI = INI

    def expect(self, target, status, want=None, **kw):
        """Request target (kw as for Weir.get, body= is the request body);
        check the status and, when want is given, the response body."""
        r = self.get(target, **kw)
        self.assertEqual(r.status, status, "%s %s -> %r" % (kw.get("method", "GET"), target,
                                                           r))
        if want is not None:
            self.assertEqual(r.body, want, target)
        return r

    def test_exact(self):
        self.expect("/healthz", 200, b"exact")
        self.expect("/healthz?x=1", 200, b"exact")
        self.expect("/healthz/", 404)
        self.expect("/healthzz", 404)
        self.expect("/HEALTHZ", 404)

    def test_prefix(self):
        self.expect("/api", 404)
        self.expect("/api/", 200, b"api")
        self.expect("/api/v1/x?y", 200, b"api")
        self.expect("/apix", 404)

    def test_regex(self):
        self.expect("/item/42", 200, b"item")
        self.expect("/item/x", 404)
        self.expect("/item/42/", 404)

    def test_host_exact(self):
        self.expect("/h/1", 200, b"host-exact", host="example.org")
        self.expect("/h/1", 200, b"host-exact", host="EXAMPLE.Org:8080")
        self.expect("/h/1", 404, host="sub.example.org")
        self.expect("/h/1", 404, host="example.org.evil")

    def test_host_wildcard(self):
        self.expect("/h/1", 200, b"host-wild", host="a.example.net")
        self.expect("/h/1", 200, b"host-wild", host="A.B.Example.NET:443")
        self.expect("/h/1", 404, host="example.net")
        self.expect("/h/1", 404, host="aexample.net")

    def test_host_list(self):
        for h in ("a.test", "b.test", "C.TEST:1"):
            self.expect("/h/x", 200, b"host-multi", host=h)
        self.expect("/h/x", 404, host="d.test")

    def test_host_from_absolute_form(self):
        self.expect("http://example.org/abs", 200, b"host-example.org", host="other.test")
        self.expect("/abs", 404, host="other.test")

    def test_first_match_wins(self):
        self.expect("/order/x", 200, b"first")

    def test_no_route_404_html(self):
        r = self.expect("/nowhere", 404)
        self.assertTrue((r.header("Content-Type") or "").startswith("text/html"),
                        r.header("Content-Type"))
        self.assertTrue(r.body)
        self.assertEqual(int(r.header("Content-Length")), len(r.body))

    def test_methods_405(self):
        self.expect("/getonly", 200, b"getonly")
        r = self.expect("/getonly", 405, method="POST", body=b"x")
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        r = self.expect("/getonly", 405, method="DELETE")
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.expect("/write", 200, b"write", method="PUT", body=b"x")
        r = self.expect("/write", 405)
        self.assertEqual(sorted(t.strip() for t in r.header("Allow").split(",")),
                         ["POST", "PUT"])

    def test_get_implies_head(self):
        with self.client() as c:
            c.send(request_bytes("HEAD", "/getonly") + request_bytes("GET", "/healthz"))
            h = c.read_response("HEAD")
            g = c.read_response("GET")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.header("Content-Length"), "7")
        self.assertEqual(g.body, b"exact")

    def test_extension_method(self):
        self.expect("/purge", 200, b"purged", method="PURGE")
        r = self.expect("/purge", 405)
        self.assertEqual(r.header("Allow"), "PURGE")
        self.expect("/any", 200, b"any", method="PROPFIND")

    def test_normalised_path(self):
        self.expect("/a/%2e%2e/healthz", 200, b"exact")
        self.expect("/a/%2E%2E/healthz", 200, b"exact")
        self.expect("/%68ealthz", 200, b"exact")
        self.expect("/./healthz", 200, b"exact")
        self.expect("//healthz", 200, b"exact")
        self.expect("/x/y/../../healthz", 200, b"exact")
        self.expect("/%69tem/7", 200, b"item")

    def test_dot_segments_above_root(self):
        self.expect("/../x", 400)
        self.expect("/a/../../healthz", 400)
        self.expect("/%2e%2e/healthz", 400)
        self.assertServes("/healthz", body=b"exact")

    def test_bad_escapes(self):
        self.expect("/heal%zzthz", 400)
        self.expect("/healthz%00", 400)
        self.expect("/healthz%", 400)
        self.assertServes("/healthz", body=b"exact")

    def test_encoded_slash_stays_encoded(self):
        # %2F never creates a segment: /api%2Fx is one segment, not /api/x.
        self.expect("/api%2Fx", 404)


if __name__ == "__main__":
    weirtest.main()
