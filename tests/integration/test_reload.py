#!/usr/bin/env python3
"""SIGHUP reload: a valid file changes what new requests get, connections
already open keep working, an invalid file (or a change that needs a
restart) keeps the running configuration, and weir never stops serving.
Listener changes on reload are in test_reload_listeners.py."""

import sys
sys.dont_write_bytecode = True

import signal
import time
import unittest

import weirtest
from polling import wait_log
from weirtest import HOST, SERVER, Client, Weir, request_bytes

INI = SERVER + """
[route answer]
match = exact:/answer
return = 200 @ANSWER@
"""


def answer(w):
    r = w.get("/answer")
    return r.status, r.body


def wait_for_answer(w, want, seconds=3.0):
    """Polls until /answer gives want (bounded); returns the last body."""
    deadline = time.monotonic() + seconds
    body = None
    while time.monotonic() < deadline:
        status, body = answer(w)
        if status == 200 and body == want:
            return body
        time.sleep(0.05)
    return body


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.w = Weir(INI, subst={"ANSWER": "one"})
        self.addCleanup(self.w.cleanup)

    def rewrite(self, text):
        with open(self.w.ini_path, "w") as f:
            f.write(text.replace("@PORT@", str(self.w.port)))

    def test_valid_reload_changes_answer_keeps_connections(self):
        w = self.w
        self.assertEqual(answer(w), (200, b"one"))
        with w.client() as old:
            old.send(request_bytes("GET", "/answer"))
            self.assertEqual(old.read_response().body, b"one")
            self.rewrite(INI.replace("@ANSWER@", "two"))
            w.signal(signal.SIGHUP)
            self.assertEqual(wait_for_answer(w, b"two"), b"two")
            # The connection opened before the reload still works, on the
            # snapshot it started with.
            old.send(request_bytes("GET", "/answer"))
            r = old.read_response()
            self.assertEqual((r.status, r.body), (200, b"one"))
        w.assert_alive()
        # Main logs the reload after publishing it, so the new answer may come first.
        wait_log(w, "configuration reloaded")

    def test_invalid_file_keeps_running_config(self):
        w = self.w
        self.rewrite(INI.replace("@ANSWER@", "two") + "\n[route broken]\nmatch = nope:/x\n")
        w.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while "reload failed" not in w.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("reload failed", w.stderr())
        self.assertIn("weir.ini:", w.stderr())  # the file:line error is logged
        self.assertEqual(answer(w), (200, b"one"))
        w.assert_alive()

    def test_workers_change_needs_restart(self):
        w = self.w
        self.rewrite(INI.replace("@ANSWER@", "two").replace("workers = 1", "workers = 2"))
        w.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while "needs a restart" not in w.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("changing [server] workers needs a restart", w.stderr())
        self.assertEqual(answer(w), (200, b"one"))

    def test_twenty_reloads_under_traffic(self):
        """20 reloads while a client keeps asking: no error, every answer 200."""
        w = self.w
        answers = set()
        with w.client() as c:
            for i in range(20):
                self.rewrite(INI.replace("@ANSWER@", "v%d" % i))
                w.signal(signal.SIGHUP)
                for _ in range(5):
                    c.send(request_bytes("GET", "/answer"))
                    r = c.read_response()
                    self.assertEqual(r.status, 200)
                    status, body = answer(w)  # a new connection each time
                    self.assertEqual(status, 200)
                    answers.add(body)
        self.assertEqual(wait_for_answer(w, b"v19"), b"v19")
        w.assert_alive()


if __name__ == "__main__":
    weirtest.main() if hasattr(weirtest, "main") else unittest.main(verbosity=2)
