"""OCSP helpers for weir's stapling tests (issue 19 point 4): a test CA
whose leaf names a local responder in its Authority Information Access
extension, and `openssl ocsp` run as that responder. Not a test itself
(no test_ prefix)."""

import os
import re
import subprocess

import polling
import tlstest
import weirtest


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                          timeout=60).stdout.decode()


def make_leaf(dir_, stem, ca, ocsp_url, kind="ec"):
    """A leaf for localhost signed by ca whose AIA names ocsp_url (None: no
    AIA). Returns (chain_path, key_path, leaf_path): the chain file holds
    the leaf and then the CA (the issuer weir verifies responses against)."""
    leaf, key = dir_ + "/" + stem + ".crt", dir_ + "/" + stem + ".key"
    csr, ext = dir_ + "/" + stem + ".csr", dir_ + "/" + stem + ".ext"
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
        if ocsp_url:
            f.write("authorityInfoAccess=OCSP;URI:%s\n" % ocsp_url)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else \
        ["-newkey", "rsa:2048"]
    openssl("req", "-new", "-nodes", "-subj", "/CN=localhost", *newkey, "-keyout", key,
            "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", leaf)
    chain = dir_ + "/" + stem + ".chain.crt"
    with open(chain, "w") as out:
        for path in (leaf, ca[0]):
            with open(path) as f:
                out.write(f.read())
    return chain, key, leaf


def serial_of(cert):
    return openssl("x509", "-in", cert, "-noout", "-serial").strip().split("=")[1]


def write_index(dir_, leaves, status="V"):
    """An `openssl ca` index with the serials of leaves (one path or a
    list) as valid (V) or revoked (R)."""
    index = os.path.join(dir_, "index.txt")
    revoked = "260101000000Z" if status == "R" else ""
    with open(index, "w") as f:
        for leaf in [leaves] if isinstance(leaves, str) else leaves:
            f.write("%s\t301231235959Z\t%s\t%s\tunknown\t/CN=localhost\n"
                    % (status, revoked, serial_of(leaf)))
    with open(index + ".attr", "w") as f:
        f.write("unique_subject = no\n")  # two leaves may share /CN=localhost
    return index


class Responder:
    """`openssl ocsp` answering on port (it binds every address; the tests
    reach it on 127.0.0.1) for ca, signing with signer (a (cert, key)
    pair; the CA itself by default)."""

    def __init__(self, dir_, port, ca, index, signer=None):
        self.dir, self.port, self.ca, self.index = dir_, port, ca, index
        self.signer = signer or ca
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "responder.log"), "ab")
        self.proc = subprocess.Popen(
            ["openssl", "ocsp", "-index", self.index, "-CA", self.ca[0],
             "-rsigner", self.signer[0], "-rkey", self.signer[1],
             "-port", str(self.port), "-ndays", "1"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        try:
            # Not by connecting: a connection closed without a request
            # wedges `openssl ocsp` (3.0) for every later one.
            polling.wait_until(lambda: self.proc.poll() is not None or
                               weirtest.pid_listens_on(self.proc.pid, self.port),
                               "the OCSP responder on port %d" % self.port, timeout=20)
            if self.proc.poll() is not None:
                with open(os.path.join(self.dir, "responder.log")) as f:
                    raise AssertionError("openssl ocsp exited: " + f.read())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def s_client_status(port, args=()):
    """openssl s_client -status's output for a handshake with weir."""
    _, out = tlstest.s_client(port, ["-status", "-servername", "localhost"] + list(args))
    return out


def is_stapled_good(port):
    out = s_client_status(port)
    return "OCSP Response Status: successful" in out and \
        re.search(r"Cert Status: good", out) is not None


def fetches(admin_port, result):
    """weir_ocsp_fetches_total{result=...} from /metrics."""
    text = polling.admin_get(admin_port, "/metrics")
    m = re.search(r'^weir_ocsp_fetches_total\{result="%s"\} (\d+)$' % result, text, re.M)
    if m is None:
        raise AssertionError("weir_ocsp_fetches_total{result=%r} not in /metrics" % result)
    return int(m.group(1))


def wait_stapled(port, timeout=20.0):
    """Polls s_client -status until weir staples a good response."""
    try:
        polling.wait_until(lambda: is_stapled_good(port), "a good staple", timeout)
    except AssertionError:
        raise AssertionError("no good staple within %.0fs; last s_client:\n%s"
                             % (timeout, s_client_status(port))) from None


# A TLS listener whose [tls] staples fetched responses (the tests give
# @CRT@, @KEY@, @PORT@ and @ADMIN@).
STAPLING_INI = """[server]
listen = 127.0.0.1:@PORT@ tls
workers = 2
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[tls]
cert = @CRT@
key = @KEY@
ocsp_stapling = on

[route ok]
match = prefix:/
return = 200 ok
"""
