#!/usr/bin/env python3
"""Issue 19 point 3: upstream server names re-resolved in the background.

A small DNS responder (dnstest.DnsServer, on 127.0.0.1) is weir's
`[server] resolver`; the upstream's name `app.weir.test` resolves to
loopback addresses (all of 127.0.0.0/8 is local on Linux), with a backend
listening on each, same port. `resolve = 1s` and TTLs of 1 s make weir
look again every second. Checked:
- an address added to the name joins the balancer (both get requests),
  one removed gets no new request (from new connections, nor from a
  keep-alive connection made before the change) while a request in flight
  on it (an event stream held open) completes, and a log line says what
  changed;
- an edit of weir.ini that was not reloaded is not picked up by a DNS
  change; a reload resolves afresh and the schedule goes on after it;
- a failing resolver (SERVFAIL, then no answer at all) keeps the last good
  set serving, with one WARN per failing spell and an INFO when it
  recovers, and the failures counted;
- health is kept per address: a server taken out (passive health) stays
  out after an unrelated change of the set;
- /metrics shows the current set (weir_upstream_server_up);
- a name in /etc/hosts takes its address from there, not from DNS;
- `weir -t` fails on a name the resolver does not know, and on bad keys.
Everything waits on /metrics or the log, never on a fixed sleep.
"""

import sys
sys.dont_write_bytecode = True

import json
import os
import re
import signal
import subprocess
import tempfile
import unittest

import weirtest
from dnstest import DnsServer
from polling import admin_get, count_log, metric, wait_log, wait_until
from upstreams import Backend
from weirtest import Weir, free_port, request_bytes

NAME = "app.weir.test"
# Long enough for a lookup that gets no answer: 2 tries of 2 s, then the
# next one 1 s later.
DNS_TIMEOUT = 20.0

INI = weirtest.SERVER + """resolver = @DNS@

[admin]
listen = 127.0.0.1:@ADMIN@

[upstream app]
server = @SERVER@
resolve = 1s
max_fails = @MAX_FAILS@
fail_timeout = 60s

[route app]
match = prefix:/
proxy = app
"""


def backends_on(hosts, tries=20):
    """Backends on each of hosts, all on one port (bounded retries when a
    port is taken on one of them)."""
    for _ in range(tries):
        first = Backend(hosts[0], host=hosts[0])
        made = [first]
        try:
            for h in hosts[1:]:
                made.append(Backend(h, host=h, port=first.port))
            return made
        except OSError:
            for b in made:
                b.stop()
    raise AssertionError("no port free on all of %r" % (hosts,))


def server_up(admin_port):
    """{address: 0 or 1} of weir_upstream_server_up for upstream app."""
    text = admin_get(admin_port, "/metrics")
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^weir_upstream_server_up\{upstream="app",server="([^"]+)"\} (\d)$', text, re.M)}


def server_failures(admin_port, addr):
    text = admin_get(admin_port, "/metrics")
    m = re.search(r'^weir_upstream_failures_total\{upstream="app",server="%s"\} (\d+)$'
                  % re.escape(addr), text, re.M)
    return int(m.group(1)) if m else 0


class DnsCase(unittest.TestCase):
    def start(self, hosts, answer, server=None, max_fails=0):
        self.dns = DnsServer()
        self.addCleanup(self.dns.stop)
        self.dns.set(NAME, a=answer, ttl=1)
        self.backends = backends_on(hosts)
        for b in self.backends:
            self.addCleanup(b.stop)
        self.port = self.backends[0].port
        self.admin = free_port()
        self.weir = Weir(INI, subst={"DNS": self.dns.addr, "ADMIN": self.admin,
                                     "SERVER": server or "%s:%d" % (NAME, self.port),
                                     "MAX_FAILS": max_fails})
        self.addCleanup(self.weir.cleanup)
        self.addCleanup(self.weir.stop)

    def addr(self, host):
        return "%s:%d" % (host, self.port)

    def wait_set(self, hosts, timeout=weirtest.START_TIMEOUT):
        want = {self.addr(h) for h in hosts}
        wait_until(lambda: set(server_up(self.admin)) == want,
                   "the set %r in /metrics" % sorted(want), timeout)

    def names(self, n):
        """The backends that answered n fresh-connection requests."""
        got = []
        for _ in range(n):
            r = self.weir.get("/echo")
            self.assertEqual(r.status, 200)
            got.append(json.loads(r.body)["name"])
        return got


class SetChangeTest(DnsCase):
    def test_added_joins_removed_drains(self):
        self.start(["127.0.0.2", "127.0.0.3", "127.0.0.4"], ["127.0.0.2"])
        b2 = self.backends[0]
        self.wait_set(["127.0.0.2"])
        self.assertEqual(set(self.names(3)), {"127.0.0.2"})

        # A request in flight on 127.0.0.2: an event stream whose second
        # event waits for the test.
        held = weirtest.Client((weirtest.HOST, self.weir.port), timeout=15)
        self.addCleanup(held.close)
        held.send(request_bytes("GET", "/drip?n=2"))
        got = b""
        for _ in range(200):
            got += held.sock.recv(4096)
            if b"event 0" in got:
                break
        self.assertIn(b"event 0", got)

        self.dns.set(NAME, a=["127.0.0.2", "127.0.0.3"], ttl=1)
        self.wait_set(["127.0.0.2", "127.0.0.3"])
        wait_log(self.weir, r"\[info\].*upstream app: %s changed: added %s; removed none"
                 % (re.escape(NAME), re.escape(self.addr("127.0.0.3"))))
        self.assertEqual(set(self.names(6)), {"127.0.0.2", "127.0.0.3"})
        # A keep-alive client connection made under the {2, 3} snapshot
        # keeps it; the removal must reach its requests too.
        kept = weirtest.Client((weirtest.HOST, self.weir.port), timeout=10)
        self.addCleanup(kept.close)
        kept.send(request_bytes("GET", "/echo"))
        self.assertEqual(kept.read_response().status, 200)

        # Two changes after it was made: {2, 3, 4}, then {3, 4}.
        self.dns.set(NAME, a=["127.0.0.2", "127.0.0.3", "127.0.0.4"], ttl=1)
        self.wait_set(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        self.dns.set(NAME, a=["127.0.0.3", "127.0.0.4"], ttl=1)
        self.wait_set(["127.0.0.3", "127.0.0.4"])
        wait_log(self.weir, r"changed: added none; removed %s" % re.escape(self.addr("127.0.0.2")))
        before = len(b2.requests)
        self.assertEqual(set(self.names(6)), {"127.0.0.3", "127.0.0.4"})
        self.assertEqual(len(b2.requests), before, "a new request went to the removed address")
        for _ in range(4):
            kept.send(request_bytes("GET", "/echo"))
            r = kept.read_response()
            self.assertEqual(json.loads(r.body)["name"], "127.0.0.3",
                             "a keep-alive connection's request went to the removed address")

        # The held request was not cut: it ends normally once released.
        self.assertNotIn(b"0\r\n\r\n", got)
        b2.drip_go.set()
        for _ in range(200):
            if got.endswith(b"0\r\n\r\n"):
                break
            chunk = held.sock.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertIn(b"event 1", got)
        self.assertTrue(got.endswith(b"0\r\n\r\n"), got)
        self.assertGreaterEqual(metric(self.admin, "weir_upstream_resolution_changes_total"), 2)


class FailureTest(DnsCase):
    def test_failing_resolver_keeps_last_good_set(self):
        self.start(["127.0.0.2"], ["127.0.0.2"])
        self.wait_set(["127.0.0.2"])
        warn = r"\[warn\].*upstream app: resolving %s failed" % re.escape(NAME)

        self.dns.mode = "servfail"
        fails = metric(self.admin, "weir_upstream_resolution_failures_total")
        wait_until(lambda: metric(self.admin, "weir_upstream_resolution_failures_total")
                   >= fails + 3, "three failed lookups", DNS_TIMEOUT)
        self.assertEqual(count_log(self.weir, warn), 1, "logged once per failing spell")
        self.assertEqual(set(self.names(3)), {"127.0.0.2"})
        self.assertEqual(set(server_up(self.admin)), {self.addr("127.0.0.2")})

        self.dns.mode = "answer"
        wait_log(self.weir, r"\[info\].*upstream app: resolving %s works again"
                 % re.escape(NAME), timeout=DNS_TIMEOUT)

        # No answer at all (timeouts), and NXDOMAIN: the same.
        self.dns.mode = "drop"
        wait_log(self.weir, warn, count=2, timeout=DNS_TIMEOUT)
        self.assertEqual(set(self.names(2)), {"127.0.0.2"})
        self.dns.mode = "answer"
        wait_log(self.weir, r"works again", count=2, timeout=DNS_TIMEOUT)
        self.dns.remove(NAME)
        wait_log(self.weir, warn + r".*NXDOMAIN", timeout=DNS_TIMEOUT)
        self.assertEqual(set(self.names(2)), {"127.0.0.2"})
        self.assertEqual(set(server_up(self.admin)), {self.addr("127.0.0.2")})


class HealthKeptTest(DnsCase):
    def test_down_server_stays_down_after_unrelated_change(self):
        # Nothing listens on 127.0.0.3: a request there fails and, with
        # max_fails = 1, takes it out for 60 s (passive health).
        self.start(["127.0.0.2", "127.0.0.4"], ["127.0.0.2", "127.0.0.3"], max_fails=1)
        self.wait_set(["127.0.0.2", "127.0.0.3"])
        down = self.addr("127.0.0.3")
        for _ in range(4):
            self.names(1)
        wait_until(lambda: server_up(self.admin).get(down) == 0, "127.0.0.3 down")
        fails = server_failures(self.admin, down)

        self.dns.set(NAME, a=["127.0.0.2", "127.0.0.3", "127.0.0.4"], ttl=1)
        self.wait_set(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        self.assertEqual(server_up(self.admin)[down], 0, "the new snapshot forgot the verdict")
        self.assertEqual(set(self.names(8)), {"127.0.0.2", "127.0.0.4"})
        self.assertEqual(server_failures(self.admin, down), fails,
                         "a request tried the server that was down")


class ReloadTest(DnsCase):
    def test_no_unreloaded_edit_and_reload_restarts(self):
        self.start(["127.0.0.2", "127.0.0.3"], ["127.0.0.2"])
        self.wait_set(["127.0.0.2"])
        # An edit of weir.ini that is not reloaded: a DNS change must not
        # pick it up (the derived snapshot re-reads nothing).
        with open(self.weir.ini_path) as f:
            good = f.read()
        with open(self.weir.ini_path, "w") as f:
            f.write(good.replace("proxy = app", "return = 418 edited"))
        self.dns.set(NAME, a=["127.0.0.2", "127.0.0.3"], ttl=1)
        self.wait_set(["127.0.0.2", "127.0.0.3"])
        self.assertEqual(set(self.names(4)), {"127.0.0.2", "127.0.0.3"})

        # A reload resolves afresh (with the resolver key's nameserver) and
        # the background schedule goes on from the new snapshot.
        with open(self.weir.ini_path, "w") as f:
            f.write(good)
        self.dns.set(NAME, a=["127.0.0.3"], ttl=1)
        self.weir.signal(signal.SIGHUP)
        wait_until(lambda: metric(self.admin, "weir_config_reloads_total") == 1, "the reload")
        self.wait_set(["127.0.0.3"])
        self.assertEqual(set(self.names(3)), {"127.0.0.3"})
        self.dns.set(NAME, a=["127.0.0.2"], ttl=1)
        self.wait_set(["127.0.0.2"])
        self.assertEqual(set(self.names(3)), {"127.0.0.2"})


def hosts_name():
    """A name /etc/hosts gives a 127.0.0.0/8 address (not localhost), and
    that address; None when there is none."""
    try:
        with open("/etc/hosts") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split("#")[0].split()
        if len(words) >= 2 and words[0].startswith("127."):
            for w in words[1:]:
                if w != "localhost" and "." not in w and w.isalnum():
                    return w, words[0]
    return None


class HostsFile(DnsCase):
    def test_hosts_entry_wins_over_dns(self):
        found = hosts_name()
        if found is None:
            self.skipTest("no 127.x name besides localhost in /etc/hosts")
        name, address = found
        b = backends_on([address])[0]
        self.addCleanup(b.stop)
        self.dns = DnsServer()
        self.addCleanup(self.dns.stop)
        self.dns.set(name, a=["127.0.0.9"], ttl=1)  # what DNS would say: not taken
        self.port = b.port
        self.admin = free_port()
        self.weir = Weir(INI, subst={"DNS": self.dns.addr, "ADMIN": self.admin,
                                     "SERVER": "%s:%d" % (name, b.port), "MAX_FAILS": 0})
        self.addCleanup(self.weir.cleanup)
        self.addCleanup(self.weir.stop)
        wait_until(lambda: metric(self.admin, "weir_upstream_resolutions_total") >= 2,
                   "two background lookups")
        self.assertEqual(set(server_up(self.admin)), {self.addr(address)})
        self.assertEqual(self.weir.get("/x").status, 200)


class CheckTest(unittest.TestCase):
    def check(self, ini):
        tmp = tempfile.mkdtemp(prefix="weirt-")
        path = os.path.join(tmp, "weir.ini")
        with open(path, "w") as f:
            f.write(ini)
        p = subprocess.run([weirtest.WEIR_BIN, "-t", "-c", path], capture_output=True,
                           text=True, timeout=30, env=weirtest.weir_env())
        return p.returncode, p.stderr, path

    def test_unknown_name_fails_check(self):
        with DnsServer() as dns:
            dns.set(NAME, a=["127.0.0.2"])
            base = ("[server]\nlisten = 127.0.0.1:%d\nresolver = %s\n[upstream app]\n"
                    "server = %%s:80\nresolve = 30s\n[route r]\nmatch = prefix:/\n"
                    "proxy = app\n" % (free_port(), dns.addr))
            rc, err, _ = self.check(base % NAME)
            self.assertEqual(rc, 0, err)
            rc, err, path = self.check(base % "nope.weir.test")
        self.assertEqual(rc, 1)
        self.assertIn('%s:5: [upstream app] server: cannot resolve "nope.weir.test"' % path, err)

    def test_bad_keys_name_file_line_key(self):
        rc, err, path = self.check("[server]\nlisten = 127.0.0.1:%d\nresolver = nowhere\n"
                                   "[upstream app]\nserver = 127.0.0.1:80\nresolve = soon\n"
                                   % free_port())
        self.assertEqual(rc, 1)
        self.assertIn("%s:3: [server] resolver: \"nowhere\"" % path, err)
        self.assertIn("%s:6: [upstream app] resolve: \"soon\"" % path, err)


if __name__ == "__main__":
    weirtest.main(seconds=240)
