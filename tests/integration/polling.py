"""Waiting for weir's observable state instead of sleeping (STYLE.md
section 10): the [admin] endpoint's /status and /metrics, and log lines.

A fixed sleep is either too short on a loaded machine (the test flakes) or
too long everywhere else; these poll until the state is there. Every wait
is bounded in count and time, and a timeout fails with what was last seen.
"""

import json
import re
import time

from weirtest import HOST, Client, request_bytes

TIMEOUT = 5.0   # seconds: generous; the states waited for come in milliseconds
INTERVAL = 0.02


def wait_until(probe, what, timeout=TIMEOUT):
    """Calls probe() until it returns a true value (returned), at most
    timeout seconds; fails naming what and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / INTERVAL) + 10):
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(INTERVAL)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                         % (timeout, what, last))


def admin_get(port, target):
    """GET target on the admin endpoint at 127.0.0.1:port; the body as text."""
    with Client((HOST, port)) as c:
        c.send(request_bytes("GET", target))
        r = c.read_response()
    if r.status != 200:
        raise AssertionError("admin %s: status %d" % (target, r.status))
    return r.body.decode("utf-8")


def metric(port, name):
    """The value of an unlabelled metric in /metrics, as an int."""
    m = re.search(r"^%s (\d+)$" % re.escape(name), admin_get(port, "/metrics"), re.M)
    if m is None:
        raise AssertionError("%s not in /metrics" % name)
    return int(m.group(1))


def status(port):
    """/status as a dict."""
    return json.loads(admin_get(port, "/status"))


def wait_status(port, pred, what, timeout=TIMEOUT):
    """Polls /status until pred(status) holds; returns that status."""
    seen = []

    def probe():
        s = status(port)
        seen[:] = [s]
        return s if pred(s) else None
    try:
        return wait_until(probe, what, timeout)
    except AssertionError:
        raise AssertionError("timed out after %.1fs waiting for %s; /status: %r"
                             % (timeout, what, seen[0] if seen else None)) from None


def wait_open_connections(port, n, timeout=TIMEOUT):
    """Waits until weir holds exactly n client connections (/status
    connections.open; the admin endpoint's own are not counted)."""
    return wait_status(port, lambda s: s["connections"]["open"] == n,
                       "%d open client connections" % n, timeout)


def wait_log(weir, pattern, count=1, timeout=TIMEOUT):
    """Polls weir's stderr until regex pattern matches at least count lines;
    returns the matching lines."""
    rx = re.compile(pattern)

    def probe():
        lines = [l for l in weir.stderr().splitlines() if rx.search(l)]
        return lines if len(lines) >= count else None
    return wait_until(probe, "%d error-log lines matching %r" % (count, pattern), timeout)


def count_log(weir, pattern):
    """How many lines of weir's stderr match regex pattern now."""
    rx = re.compile(pattern)
    return sum(1 for l in weir.stderr().splitlines() if rx.search(l))
