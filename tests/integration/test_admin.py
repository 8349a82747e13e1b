#!/usr/bin/env python3
"""The [admin] endpoint: GET /metrics in the Prometheus text format 0.0.4
(checked by a strict parser written here: names, HELP/TYPE before samples,
label escaping, counters ending _total, histograms with cumulative buckets
and +Inf equal to _count), counters that grow with requests and reloads,
GET /status as JSON, 404/405/400, and the endpoint moving on reload."""

import sys
sys.dont_write_bytecode = True

import json
import math
import re
import signal
import time
import unittest

import weirtest
from weirtest import HOST, Client, Weir, free_port, request_bytes

INI = weirtest.SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[route ping]
match = exact:/healthz
return = 200 ok

[route moved]
match = exact:/old
redirect = 301 /new
"""

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ExpositionError(AssertionError):
    pass


def parse_labels(text, pos, line):
    """Parses '{a="x",b="y"}' from text[pos] == '{'. Returns (dict, pos after '}')."""
    labels = {}
    pos += 1
    while True:
        if text[pos:pos + 1] == "}":
            return labels, pos + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, pos)
        if not m or text[m.end():m.end() + 2] != '="':
            raise ExpositionError("bad label name in %r" % line)
        name = m.group(0)
        pos = m.end() + 2
        value = []
        while True:
            if pos >= len(text):
                raise ExpositionError("unterminated label value in %r" % line)
            ch = text[pos]
            if ch == "\\":
                esc = text[pos + 1:pos + 2]
                if esc not in ("\\", '"', "n"):
                    raise ExpositionError("bad escape \\%s in %r" % (esc, line))
                value.append({"\\": "\\", '"': '"', "n": "\n"}[esc])
                pos += 2
            elif ch == '"':
                pos += 1
                break
            elif ch == "\n":
                raise ExpositionError("raw newline in label value %r" % line)
            else:
                value.append(ch)
                pos += 1
        if name in labels:
            raise ExpositionError("label %s twice in %r" % (name, line))
        labels[name] = "".join(value)
        if text[pos:pos + 1] == ",":
            pos += 1
        elif text[pos:pos + 1] != "}":
            raise ExpositionError("expected , or } in %r" % line)


def parse_value(s, line):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", s):
        raise ExpositionError("bad value %r in %r" % (s, line))
    return float(s)


def parse_exposition(text):
    """Strict text format 0.0.4. Returns {family: {"type", "help", "samples":
    [(name, labels, value)]}}; raises ExpositionError on any deviation."""
    if not text.endswith("\n"):
        raise ExpositionError("exposition does not end with a newline")
    families = {}
    current = None
    seen_done = set()
    for line in text[:-1].split("\n"):
        if line == "":
            raise ExpositionError("empty line")
        if line.startswith("# HELP "):
            parts = line[7:].split(" ", 1)
            if not NAME.match(parts[0]):
                raise ExpositionError("bad HELP name %r" % line)
            fam = families.setdefault(parts[0], {"type": None, "help": None, "samples": []})
            if fam["help"] is not None:
                raise ExpositionError("second HELP for %s" % parts[0])
            fam["help"] = parts[1] if len(parts) > 1 else ""
            continue
        if line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or not NAME.match(parts[0]) or parts[1] not in TYPES:
                raise ExpositionError("bad TYPE line %r" % line)
            fam = families.setdefault(parts[0], {"type": None, "help": None, "samples": []})
            if fam["type"] is not None or fam["samples"]:
                raise ExpositionError("TYPE for %s repeated or after its samples" % parts[0])
            if current is not None:
                seen_done.add(current)
            if parts[0] in seen_done:
                raise ExpositionError("family %s is not contiguous" % parts[0])
            fam["type"] = parts[1]
            current = parts[0]
            continue
        if line.startswith("#"):
            continue
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        if not m:
            raise ExpositionError("bad sample line %r" % line)
        name = m.group(0)
        pos = m.end()
        labels = {}
        if line[pos:pos + 1] == "{":
            labels, pos = parse_labels(line, pos, line)
        if line[pos:pos + 1] != " ":
            raise ExpositionError("no space before value in %r" % line)
        value = parse_value(line[pos + 1:].split(" ")[0], line)
        fam_name = name
        if current is not None and families[current]["type"] == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                if name == current + suffix:
                    fam_name = current
        if fam_name != current:
            raise ExpositionError("sample %s outside its family's block (TYPE first)" % name)
        if families[current]["type"] == "counter" and not name.endswith("_total"):
            raise ExpositionError("counter %s does not end in _total" % name)
        if families[current]["type"] == "histogram" and fam_name == name:
            raise ExpositionError("histogram sample %s without suffix" % name)
        families[current]["samples"].append((name, labels, value))
    for fam, body in families.items():
        if body["type"] is None:
            raise ExpositionError("family %s has no TYPE" % fam)
        if body["type"] == "histogram":
            check_histogram(fam, body["samples"])
    return families


def check_histogram(fam, samples):
    series = {}
    for name, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            if "le" not in labels:
                raise ExpositionError("%s bucket without le" % fam)
            s["buckets"].append((parse_value(labels["le"], name), value))
        elif name.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for key, s in series.items():
        les = [le for le, _ in s["buckets"]]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ExpositionError("%s%s: le not increasing" % (fam, key))
        if not les or not math.isinf(les[-1]):
            raise ExpositionError("%s%s: no +Inf bucket" % (fam, key))
        counts = [v for _, v in s["buckets"]]
        if counts != sorted(counts):
            raise ExpositionError("%s%s: buckets not cumulative" % (fam, key))
        if s["count"] is None or s["sum"] is None or s["count"] != counts[-1]:
            raise ExpositionError("%s%s: _count missing or not the +Inf bucket" % (fam, key))


def value_of(families, fam, name=None, **labels):
    for n, l, v in families[fam]["samples"]:
        if n == (name or fam) and all(l.get(k) == val for k, val in labels.items()):
            return v
    raise AssertionError("no sample %s %r" % (name or fam, labels))


class ParserSelfTest(unittest.TestCase):
    """The parser itself refuses what it should (so a pass means something)."""

    def test_rejects(self):
        bad = [
            "x 1\n",                                            # no TYPE
            "# TYPE x counter\nx 1\n",                          # counter without _total
            "# TYPE x_total counter\nx_total{a=\"\\q\"} 1\n",   # bad escape
            "# TYPE x_total counter\nx_total{a=\"b} 1\n",       # unterminated
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
            "h_sum 0\nh_count 1\n",                             # not cumulative
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 3\n",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",  # not contiguous
            "# TYPE a gauge\na 1",                              # no final newline
        ]
        for text in bad:
            with self.assertRaises(ExpositionError, msg=text):
                parse_exposition(text)
        fams = parse_exposition('# TYPE x_total counter\nx_total{a="q\\"\\\\\\n"} 1\n')
        self.assertEqual(fams["x_total"]["samples"][0][1], {"a": 'q"\\\n'})


class AdminTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = free_port()
        return {"ADMIN": cls.admin_port}

    def admin(self, target, method="GET", port=None):
        with Client((HOST, port or self.admin_port)) as c:
            c.send(request_bytes(method, target))
            r = c.read_response(method=method)
            self.assertIn(c.wait_closed()[0], ("eof", "reset"))
        return r

    def scrape(self):
        r = self.admin("/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        return parse_exposition(r.body.decode("utf-8"))

    def test_metrics_strict_and_counting(self):
        before = self.scrape()
        for fam in ("weir_http_requests_total", "weir_http_request_duration_seconds",
                    "weir_http_received_bytes_total", "weir_http_sent_bytes_total",
                    "weir_connections_open", "weir_connections_idle",
                    "weir_config_reloads_total", "weir_config_reload_failures_total",
                    "weir_tls_handshakes_total", "weir_tls_resumptions_total",
                    "weir_upstream_requests_total", "weir_upstream_request_duration_seconds",
                    "weir_upstream_pool_hits_total", "weir_upstream_pool_misses_total",
                    "weir_upstream_server_up"):
            self.assertIn(fam, before)
        ok0 = value_of(before, "weir_http_requests_total", route="ping", **{"class": "2xx"})
        nf0 = value_of(before, "weir_http_requests_total", route="", **{"class": "4xx"})
        rd0 = value_of(before, "weir_http_requests_total", route="moved", **{"class": "3xx"})
        count0 = value_of(before, "weir_http_request_duration_seconds",
                          "weir_http_request_duration_seconds_count")
        out0 = value_of(before, "weir_http_sent_bytes_total")
        with self.client() as c:
            for _ in range(3):
                c.send(request_bytes("GET", "/healthz"))
                self.assertEqual(c.read_response().status, 200)
            c.send(request_bytes("GET", "/nowhere"))
            self.assertEqual(c.read_response().status, 404)
            c.send(request_bytes("GET", "/old"))
            self.assertEqual(c.read_response().status, 301)
            # This connection is open and idle now (the gauge follows per tick).
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                mid = self.scrape()
                if value_of(mid, "weir_connections_idle") >= 1:
                    break
                time.sleep(0.05)
            self.assertGreaterEqual(value_of(mid, "weir_connections_open"), 1)
            self.assertGreaterEqual(value_of(mid, "weir_connections_idle"), 1)
        after = self.scrape()
        self.assertEqual(value_of(after, "weir_http_requests_total", route="ping",
                                  **{"class": "2xx"}), ok0 + 3)
        self.assertEqual(value_of(after, "weir_http_requests_total", route="",
                                  **{"class": "4xx"}), nf0 + 1)
        self.assertEqual(value_of(after, "weir_http_requests_total", route="moved",
                                  **{"class": "3xx"}), rd0 + 1)
        self.assertEqual(value_of(after, "weir_http_request_duration_seconds",
                                  "weir_http_request_duration_seconds_count"), count0 + 5)
        self.assertGreater(value_of(after, "weir_http_sent_bytes_total"), out0)

    def test_status_json(self):
        self.get("/healthz")
        r = self.admin("/status")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")
        st = json.loads(r.body)
        self.assertEqual(st["workers"], 1)
        self.assertGreaterEqual(st["requests"]["total"], 1)
        self.assertGreaterEqual(st["requests"]["2xx"], 1)
        for key in ("version", "uptime_seconds", "connections", "bytes", "reloads",
                    "upstream_servers"):
            self.assertIn(key, st)
        self.assertIsInstance(st["requests"]["per_second"], (int, float))

    def test_head_404_405_400(self):
        r = self.admin("/metrics", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertGreater(int(r.header("Content-Length")), 100)
        self.assertEqual(self.admin("/nope").status, 404)
        self.assertEqual(self.admin("/metrics?x=1").status, 200)
        r = self.admin("/metrics", method="POST")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        with Client((HOST, self.admin_port)) as c:
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        with Client((HOST, self.admin_port)) as c:
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
            self.assertEqual(c.read_response().status, 431)

    def test_admin_never_serves_routes(self):
        self.assertEqual(self.admin("/healthz").status, 404)
        self.assertEqual(self.get("/metrics").status, 404)


class AdminReloadTest(unittest.TestCase):
    def setUp(self):
        self.admin_port = free_port()
        self.w = Weir(INI, subst={"ADMIN": self.admin_port})
        self.addCleanup(self.w.cleanup)

    def rewrite(self, text):
        with open(self.w.ini_path, "w") as f:
            f.write(text)

    def scrape(self, port):
        with Client((HOST, port)) as c:
            c.send(request_bytes("GET", "/metrics"))
            return parse_exposition(c.read_response().body.decode())

    def wait_log(self, text, seconds=3.0):
        deadline = time.monotonic() + seconds
        while text not in self.w.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(text, self.w.stderr())

    def test_reload_counters_and_moving_endpoint(self):
        w = self.w
        base = w.ini_text
        w.signal(signal.SIGHUP)  # same file: a successful reload
        self.wait_log("configuration reloaded")
        self.rewrite(base + "\n[route broken]\nmatch = nope:/x\n")
        w.signal(signal.SIGHUP)
        self.wait_log("reload failed")
        fams = self.scrape(self.admin_port)
        self.assertEqual(value_of(fams, "weir_config_reloads_total"), 1)
        self.assertEqual(value_of(fams, "weir_config_reload_failures_total"), 1)
        # Move the endpoint: the new port answers, the old one is closed.
        new_port = free_port()
        self.rewrite(base.replace("listen = 127.0.0.1:%d" % self.admin_port,
                                  "listen = 127.0.0.1:%d" % new_port))
        w.signal(signal.SIGHUP)
        self.wait_log("admin endpoint on 127.0.0.1:%d" % new_port)
        fams = self.scrape(new_port)
        self.assertEqual(value_of(fams, "weir_config_reloads_total"), 2)
        self.assertFalse(weirtest.port_is_listening(self.admin_port))
        # Remove it altogether.
        self.rewrite(re.sub(r"\[admin\]\nlisten = [^\n]*\n", "", base))
        w.signal(signal.SIGHUP)
        self.wait_log("admin endpoint off")
        self.assertFalse(weirtest.port_is_listening(new_port))
        self.assertEqual(w.get("/healthz").status, 200)
        w.stop()


if __name__ == "__main__":
    weirtest.main()
