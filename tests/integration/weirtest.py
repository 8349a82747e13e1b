"""Shared harness for weir's integration tests (STYLE.md section 10).

Each tests/integration/test_*.py is a standalone python3 script (standard
library only) that starts the real weir binary on a generated ini, talks to it
over 127.0.0.1 (or ::1, or a unix socket) on ephemeral ports, and exits
non-zero on failure. ctest passes WEIR_BIN (the binary) and WEIR_SOURCE_DIR.

Everything here is bounded: every socket has a timeout, every loop a count
and a deadline, every weir process is killed at the end, and a watchdog alarm
ends a script that hangs anyway.

Ini templates use @NAME@ placeholders (never $ or {} which ini values use):
@PORT@ (the main port, always provided), @TMP@ (the instance's temp dir) and
any extra name passed in `subst`.
"""

import ctypes
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WEIR_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
WEIR_BIN = os.environ.get("WEIR_BIN") or os.path.join(SOURCE_DIR, "build", "test", "weir")
# The demo backend (src/demo/), a real upstream for proxy tests: see DemoApp.
DEMO_APP = os.environ.get("WEIR_DEMO_APP") or os.path.join(os.path.dirname(WEIR_BIN),
                                                           "weir-demo-app")

HOST = "127.0.0.1"
START_TIMEOUT = 5.0     # seconds for weir to accept on its port
STOP_TIMEOUT = 10.0     # seconds for weir to exit after SIGTERM
IO_TIMEOUT = 5.0        # default per-operation socket timeout
WATCHDOG_SECONDS = 120  # a whole script never runs longer than this
PORT_RETRIES = 5        # Weir.start picks a fresh @PORT@ this often when it lost it

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "ThreadSanitizer", "runtime error")

# The [server] section most tests start from; access_log is explicit because
# its default may be a path that does not exist here.
SERVER = """[server]
listen = 127.0.0.1:@PORT@
workers = 1
access_log = off
error_log = stderr
"""

IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d{2}:\d{2}:\d{2} GMT$")


# --------------------------------------------------------------------------
# Process management

def weir_env():
    """Environment for weir: sanitizer options unless the caller set them."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:disable_coredump=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def _die_with_parent():
    """preexec_fn: weir gets SIGKILL if this script dies (e.g. ctest timeout)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def sanitizer_report(text):
    """The first sanitizer marker found in text, or None."""
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


def run_weir(args, timeout=10.0, cwd=None):
    """Runs weir to completion (for -t, -V, -h). Returns CompletedProcess
    with text stdout/stderr; fails the test if it sanitizer-reports."""
    proc = subprocess.run([WEIR_BIN] + list(args), cwd=cwd, env=weir_env(),
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, preexec_fn=_die_with_parent)
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    marker = sanitizer_report(proc.stderr)
    if marker:
        raise AssertionError("weir %s: sanitizer report (%s):\n%s" % (" ".join(args), marker,
                                                                      proc.stderr))
    return proc


def free_port(family=socket.AF_INET, host=HOST):
    """An ephemeral port: bind port 0, read it, close."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pid_listens_on(pid, port):
    """True when a TCP socket listening on port is one of pid's descriptors,
    False when none is, None when /proc cannot tell (then callers fall back
    to connecting, which any holder of the port would answer)."""
    inodes = set()
    try:
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(name) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    # local_address is HEXADDR:HEXPORT; state 0A is LISTEN
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % fields[9])
        fds = os.listdir("/proc/%d/fd" % pid)
    except (OSError, IndexError, ValueError):
        return None
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                return True
        except OSError:
            continue
    return False


def port_is_listening(port, host=HOST, timeout=0.5):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


class Weir:
    """One weir process on a generated ini.

    ini: text with @PORT@, @TMP@ and @NAME@ placeholders (subst values).
    ready: how to tell it is up: ("tcp", host, port), ("unix", path), or None
    for the main port on 127.0.0.1.
    """

    def __init__(self, ini, subst=None, tmpdir=None, ready=None, start=True, port=None):
        self.own_tmp = tmpdir is None
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="weirt-")
        self._template, self._subst = ini, subst
        self._is_port_ours = port is None  # picked here: start() may pick another
        self.port = port if port is not None else free_port()
        self.ini_path = os.path.join(self.tmp, "weir.ini")
        self._write_ini()
        self.ready = ready or ("tcp", HOST, self.port)
        self.proc = None
        # Command put in front of weir (e.g. setpriv, systemd-socket-activate);
        # it must exec weir so that the pid stays weir's.
        self.argv_prefix = []
        self.stderr_path = os.path.join(self.tmp, "weir.stderr")
        self.stdout_path = os.path.join(self.tmp, "weir.stdout")
        self._stopped = False
        if start:
            self.start()

    def _write_ini(self):
        # subst first, so its values may themselves use @PORT@ and @TMP@
        values = {k: str(v) for k, v in (self._subst or {}).items()}
        values["PORT"] = str(self.port)
        values["TMP"] = self.tmp
        text = self._template
        for k, v in values.items():
            text = text.replace("@%s@" % k, v)
        leftover = re.search(r"@[A-Z0-9_]+@", text)
        if leftover:
            raise ValueError("unreplaced placeholder %s in ini" % leftover.group(0))
        self.ini_text = text
        with open(self.ini_path, "w") as f:
            f.write(text)

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        """Starts weir and waits until it accepts. weir refuses a port another
        process holds (issue 13.10), so when tests run in parallel and two
        pick the same free port, the one that loses the race exits with
        "address already in use": then, if this object picked @PORT@, it
        picks another and starts again (PORT_RETRIES times at most)."""
        for attempt in range(PORT_RETRIES + 1):
            self._err = open(self.stderr_path, "wb")
            self._out = open(self.stdout_path, "wb")
            self.proc = subprocess.Popen(self.argv_prefix + [WEIR_BIN, "-c", self.ini_path],
                                         cwd=self.tmp,
                                         env=weir_env(), stdin=subprocess.DEVNULL,
                                         stdout=self._out, stderr=self._err,
                                         preexec_fn=_die_with_parent)
            try:
                self.wait_ready()
                return self
            except BaseException:
                lost = attempt < PORT_RETRIES and self._lost_port_race()
                self.kill()
                if not lost:
                    raise
            self._stopped = False
            old, self.port = self.port, free_port()
            if self.ready == ("tcp", HOST, old):
                self.ready = ("tcp", HOST, self.port)
            self._write_ini()
        raise AssertionError("unreachable")

    def _lost_port_race(self):
        """True when weir exited because @PORT@, which this object picked,
        was taken meanwhile."""
        if not self._is_port_ours or self.proc.poll() is None:
            return False
        return any(":%d:" % self.port in line and "address already in use" in line.lower()
                   for line in self.stderr().splitlines())

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("weir exited with %s before listening; stderr:\n%s"
                                     % (rc, self.stderr()))
            if self._probe():
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise AssertionError("weir did not accept on %r within %.1fs; stderr:\n%s"
                             % (self.ready, timeout, self.stderr()))

    def _probe(self):
        kind = self.ready[0]
        try:
            if kind == "unix":
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(0.5)
                try:
                    s.connect(self.ready[1])
                except OSError:
                    s.close()
                    raise
            else:
                # Whoever else holds the port would accept too: ready means
                # this process listens there.
                if pid_listens_on(self.proc.pid, self.ready[2]) is False:
                    return False
                s = socket.create_connection((self.ready[1], self.ready[2]), timeout=0.5)
        except OSError:
            return False
        s.close()
        return True

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError("weir died with %s; stderr:\n%s" % (self.proc.returncode,
                                                                     self.stderr()))

    def wait_exit(self, timeout):
        """Waits up to timeout for weir to exit; returns its code or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def check_clean_exit(self, rc):
        """Asserts an exit code of 0 and a stderr free of sanitizer reports."""
        err = self.stderr()
        marker = sanitizer_report(err)
        if marker:
            raise AssertionError("weir stderr has a sanitizer report (%s):\n%s" % (marker, err))
        if rc is None:
            raise AssertionError("weir did not exit in time; stderr:\n%s" % err)
        if rc != 0:
            raise AssertionError("weir exited with %s (want 0); stderr:\n%s" % (rc, err))

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, and check exit code 0 and no sanitizer report.
        Always leaves the process dead. Returns weir's stderr."""
        if self._stopped:
            return self.stderr()
        self._stopped = True
        try:
            early = self.proc.poll()
            if early is not None:
                raise AssertionError("weir had already exited with %s; stderr:\n%s"
                                     % (early, self.stderr()))
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait_exit(timeout)
            self.check_clean_exit(rc)
            return self.stderr()
        finally:
            self.kill()

    def kill(self):
        """Kills weir if it still runs (used in finally blocks); never raises."""
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except Exception:
                pass
        for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
            if f is not None:
                try:
                    f.close()
                except Exception:
                    pass

    def cleanup(self):
        self.kill()
        if self.own_tmp and not os.environ.get("WEIR_KEEP_TMP"):
            import shutil
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- clients -----------------------------------------------------------

    def client(self, timeout=IO_TIMEOUT):
        return Client((HOST, self.port), timeout=timeout)

    def get(self, target, host="localhost", headers=(), method="GET", body=b"",
            version="HTTP/1.1"):
        """One request on a fresh connection; returns the Response."""
        with self.client() as c:
            c.send(request_bytes(method, target, host=host, headers=headers, body=body,
                                 version=version))
            return c.read_response(method=method)


class DemoApp:
    """weir-demo-app (src/demo/) as a real backend, e.g. behind a proxy route:

        with DemoApp(name="b1") as app:        # a free port on 127.0.0.1
            ini = "[upstream u]\nserver = %s\n" % app.addr
        DemoApp(port=9000), DemoApp(unix="/tmp/x/app.sock")

    Every answer of the app carries X-Served-By: NAME; GET /api/stats tells
    how many connections it accepted and requests it answered; ANY
    /api/echo... reflects method, target, headers and body digest.
    Readiness is the app's "listening on ..." line (which also gives the
    port when port=0). stop() sends SIGTERM and asserts a clean exit (0, no
    sanitizer report); leaving the with block does that too.
    """

    def __init__(self, port=0, unix=None, name="demo", tmpdir=None, start=True):
        self.name = name
        self.unix = unix
        self.port = port
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="weirt-demo-")
        self.own_tmp = tmpdir is None
        self.stderr_path = os.path.join(self.tmp, "demo-%s.stderr" % name)
        self.proc = None
        self._stopped = False
        if start:
            self.start()

    @property
    def addr(self):
        """The address as an ini `server =` value."""
        return "unix:%s" % self.unix if self.unix else "%s:%d" % (HOST, self.port)

    def start(self, timeout=START_TIMEOUT):
        listen = "unix:%s" % self.unix if self.unix else "%s:%d" % (HOST, self.port)
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([DEMO_APP, "--listen", listen, "--name", self.name],
                                     env=weir_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            m = re.search(r"listening on (\S+)", self.stderr())
            if m:
                if not self.unix:
                    self.port = int(m.group(1).rsplit(":", 1)[1])
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError("weir-demo-app (%s) did not start: rc %s; stderr:\n%s"
                             % (listen, self.proc.poll(), self.stderr()))

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.stop()
        else:
            self.kill()
        self.cleanup()

    def client(self, timeout=IO_TIMEOUT):
        if self.unix:
            return Client.unix(self.unix, timeout=timeout)
        return Client((HOST, self.port), timeout=timeout)

    def get(self, target, host="localhost", headers=(), method="GET", body=b"",
            version="HTTP/1.1"):
        """One request straight to the app on a fresh connection."""
        with self.client() as c:
            c.send(request_bytes(method, target, host=host, headers=headers, body=body,
                                 version=version))
            return c.read_response(method=method)

    def stats(self):
        """(connections_accepted, requests) so far, this request included."""
        import json
        d = json.loads(self.get("/api/stats").body)
        return d["connections_accepted"], d["requests"]

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals the app, waits, asserts exit 0 and no sanitizer report."""
        if self._stopped:
            return self.stderr()
        self._stopped = True
        try:
            if self.proc.poll() is not None:
                raise AssertionError("weir-demo-app had already exited with %s; stderr:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                rc = None
            err = self.stderr()
            marker = sanitizer_report(err)
            if marker or rc != 0:
                raise AssertionError("weir-demo-app exit %s (want 0), sanitizer: %s; stderr:\n%s"
                                     % (rc, marker, err))
            return err
        finally:
            self.kill()

    def kill(self):
        """Kills the app if it still runs; never raises."""
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except Exception:
                pass
        f = getattr(self, "_err", None)
        if f is not None:
            try:
                f.close()
            except Exception:
                pass

    def cleanup(self):
        self.kill()
        if self.own_tmp and not os.environ.get("WEIR_KEEP_TMP"):
            import shutil
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# HTTP/1.1 client pieces

def request_bytes(method, target, host="localhost", headers=(), body=b"",
                  version="HTTP/1.1"):
    """Builds raw request bytes. host=None sends no Host field. A
    Content-Length is added for a non-empty body unless headers carry
    Content-Length or Transfer-Encoding."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = set()
    for name, value in headers:
        lines.append("%s: %s" % (name, value))
        names.add(name.lower())
    if body and not names & {"content-length", "transfer-encoding"}:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces, trailer=b""):
    """Encodes pieces as a chunked body (last-chunk and trailer added)."""
    out = b""
    for p in pieces:
        if isinstance(p, str):
            p = p.encode()
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        """Value of the first field named name (case-insensitive), or None."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_token(self, name, token):
        """True when a comma-separated field has token (case-insensitive)."""
        token = token.lower()
        for v in self.header_all(name):
            if token in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    def __repr__(self):
        return "<Response %s %s %r body=%d bytes>" % (self.status, self.reason, self.headers,
                                                     len(self.body))


class ProtocolError(AssertionError):
    pass


class Client:
    """A raw TCP (or unix) client with a receive buffer and timeouts."""

    def __init__(self, addr=None, timeout=IO_TIMEOUT, family=socket.AF_INET, sock=None,
                 rcvbuf=None):
        self.timeout = timeout
        if sock is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            try:
                sock.connect(addr)
            except BaseException:
                sock.close()
                raise
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = b""
        self.eof = False

    @classmethod
    def unix(cls, path, timeout=IO_TIMEOUT):
        return cls(path, timeout=timeout, family=socket.AF_UNIX)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def request(self, method, target, **kw):
        self.send(request_bytes(method, target, **kw))

    def _fill(self, deadline):
        """Reads more bytes into buf; False on EOF/reset. Raises
        socket.timeout past the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for data")
        self.sock.settimeout(min(left, self.timeout))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = True
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_until(self, marker, deadline, limit=1 << 20):
        for _ in range(1 << 20):
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (marker, limit))
            if not self._fill(deadline):
                raise ProtocolError("connection closed before %r; got %r" % (marker,
                                                                            self.buf[:200]))
        raise ProtocolError("read loop bound exceeded")

    def _read_exact(self, n, deadline):
        for _ in range(1 << 24):
            if len(self.buf) >= n:
                out, self.buf = self.buf[:n], self.buf[n:]
                return out
            if not self._fill(deadline):
                raise ProtocolError("connection closed after %d of %d body bytes"
                                    % (len(self.buf), n))
        raise ProtocolError("read loop bound exceeded")

    def read_response(self, method="GET", timeout=None):
        """Reads one response (a 1xx is returned as is). Body framing:
        none for HEAD/1xx/204/304, else Content-Length, chunked, or until
        close."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        head = self._read_until(b"\r\n\r\n", deadline, limit=64 * 1024)
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise ProtocolError("bad status line %r" % lines[0])
        version, status, reason = m.group(1).decode(), int(m.group(2)), m.group(3).decode(
            "latin-1")
        headers = []
        for line in lines[1:]:
            if b":" not in line or line[:1] in (b" ", b"\t"):
                raise ProtocolError("bad response header line %r" % line)
            name, value = line.split(b":", 1)
            if name != name.strip() or not name:
                raise ProtocolError("bad response header name %r" % line)
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        resp = Response(version, status, reason, headers, b"", head)
        if method == "HEAD" or status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise ProtocolError("unexpected Transfer-Encoding %r" % te)
            if cl:
                raise ProtocolError("response has both Content-Length and Transfer-Encoding")
            resp.body = self._read_chunked(deadline)
        elif cl:
            if len(cl) != 1 or not re.match(r"^\d+$", cl[0]):
                raise ProtocolError("bad response Content-Length %r" % cl)
            resp.body = self._read_exact(int(cl[0]), deadline)
        else:
            for _ in range(1 << 24):
                if not self._fill(deadline):
                    break
            resp.body, self.buf = self.buf, b""
        return resp

    def _read_chunked(self, deadline):
        body = b""
        for _ in range(1 << 20):
            line = self._read_until(b"\r\n", deadline, limit=4096)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                for _ in range(1000):  # trailer
                    if self._read_until(b"\r\n", deadline) == b"\r\n":
                        return body
                raise ProtocolError("trailer too long")
            body += self._read_exact(size, deadline)
            if self._read_exact(2, deadline) != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
        raise ProtocolError("too many chunks")

    def read_responses(self, methods, timeout=None):
        return [self.read_response(m, timeout=timeout) for m in methods]

    def wait_closed(self, timeout=3.0, max_bytes=64 << 20):
        """Waits for weir to close the connection (EOF or reset), draining
        and discarding data. Returns (how, n_bytes_drained, seconds) with how
        'eof', 'reset' or None (still open at the deadline)."""
        start = time.monotonic()
        deadline = start + timeout
        drained = len(self.buf)
        self.buf = b""
        if self.eof:
            return ("eof", drained, 0.0)
        for _ in range(1 << 22):
            left = deadline - time.monotonic()
            if left <= 0 or drained > max_bytes:
                return (None, drained, time.monotonic() - start)
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                self.eof = True
                return ("reset", drained, time.monotonic() - start)
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                self.eof = True
                return ("eof", drained, time.monotonic() - start)
            drained += len(data)
        return (None, drained, time.monotonic() - start)

    def nothing_within(self, seconds):
        """True when no byte arrives and the connection stays open for
        seconds (bytes that do arrive are kept in buf)."""
        deadline = time.monotonic() + seconds
        try:
            for _ in range(1000):
                if self.buf or not self._fill(deadline):
                    return False
        except socket.timeout:
            return not self.buf
        return not self.buf


# --------------------------------------------------------------------------
# unittest glue

class WeirCase(unittest.TestCase):
    """A TestCase whose class shares one weir started from INI (class
    attribute) with SUBST (a dict or a classmethod-produced dict). The
    instance is stopped, and its clean exit checked, in tearDownClass."""

    INI = None
    SUBST = None

    @classmethod
    def make_subst(cls, tmp):
        """Override to create files in tmp and return extra placeholders."""
        return dict(cls.SUBST or {})

    @classmethod
    def setUpClass(cls):
        if cls.INI is None:
            cls.weir = None
            return
        tmp = tempfile.mkdtemp(prefix="weirt-")
        cls.tmp = tmp
        subst = cls.make_subst(tmp)
        cls.weir = Weir(cls.INI, subst=subst, tmpdir=tmp, start=False)
        cls.weir.own_tmp = True
        try:
            cls.weir.start()
        except BaseException:
            cls.weir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.weir is None:
            return
        try:
            cls.weir.stop()
        finally:
            cls.weir.cleanup()

    def setUp(self):
        if self.weir is not None:
            self.weir.assert_alive()

    # helpers -----------------------------------------------------------

    def client(self, timeout=IO_TIMEOUT):
        return self.weir.client(timeout=timeout)

    def get(self, target, **kw):
        return self.weir.get(target, **kw)

    def assertServes(self, target="/healthz", status=200, body=None, **kw):
        """A fresh connection still gets an answer (weir survived)."""
        r = self.get(target, **kw)
        self.assertEqual(r.status, status, "fresh request %s after the previous case" % target)
        if body is not None:
            self.assertEqual(r.body, body)
        return r

    def assertClosedByWeir(self, c, timeout=3.0, what=""):
        how, n, secs = c.wait_closed(timeout)
        self.assertIsNotNone(how, "weir did not close the connection within %.1fs %s"
                             % (timeout, what))
        return how, n, secs


def _watchdog(signum, frame):
    raise TimeoutError("test script exceeded the %ds watchdog" % WATCHDOG_SECONDS)


# Exit status of a script whose every test was skipped: tests/CMakeLists.txt
# gives it to ctest as SKIP_RETURN_CODE, so ctest reports "Skipped" (Not Run)
# instead of "Passed" for a script that checked nothing.
SKIP_RETURN_CODE = 77


def exit_status(result):
    """0 when every test passed and at least one ran, SKIP_RETURN_CODE when
    none failed and none ran (all skipped, including a setUpClass that
    raised SkipTest), 1 otherwise."""
    if not result.wasSuccessful():
        return 1
    # A skipped test counts in testsRun; a class skipped in setUpClass
    # appears in skipped only (not a TestCase).
    n_skipped_tests = sum(1 for t, _ in result.skipped if isinstance(t, unittest.TestCase))
    if result.testsRun - n_skipped_tests == 0:
        return SKIP_RETURN_CODE if result.skipped else 1
    return 0


def main(seconds=WATCHDOG_SECONDS):
    """Entry point for test scripts: a watchdog, then unittest.main; exits
    with exit_status() of the run."""
    if not os.path.exists(WEIR_BIN):
        sys.stderr.write("weirtest: WEIR_BIN %s does not exist\n" % WEIR_BIN)
        sys.exit(1)
    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(seconds)
    prog = unittest.main(verbosity=2, exit=False)
    status = exit_status(prog.result)
    if status == SKIP_RETURN_CODE:
        sys.stderr.write("weirtest: every test was skipped\n")
    sys.exit(status)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random_file(path, size):
    with open(path, "wb") as f:
        left = size
        for _ in range(size // (1 << 20) + 2):
            if left <= 0:
                break
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


# --------------------------------------------------------------------------
# Process resources (limits, idle connections, soak)

def rss_kib(pid):
    """VmRSS of pid in KiB, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def fd_count(pid):
    """Open file descriptors of pid (/proc/PID/fd entries)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE towards want (up to the hard
    limit). Returns the soft limit now in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
