"""TLS helpers for weir's integration tests: certificates made at test time
with the openssl CLI, and TLS clients (python ssl) that plug into
weirtest.Client. Not a test itself (no test_ prefix)."""

import os
import socket
import ssl
import subprocess

import weirtest
from weirtest import HOST, IO_TIMEOUT


def make_cert(dir_, stem, cn, sans=(), kind="ec"):
    """Self-signed certificate dir_/stem.crt and key dir_/stem.key for cn
    and sans (DNS names); kind "ec" (P-256) or "rsa" (2048). Returns
    (cert_path, key_path)."""
    crt = os.path.join(dir_, stem + ".crt")
    key = os.path.join(dir_, stem + ".key")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else \
        ["-newkey", "rsa:2048"]
    names = ",".join("DNS:" + n for n in ([cn] + list(sans)))
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=" + names, "-keyout", key, "-out", crt] + newkey,
                   check=True, capture_output=True, timeout=60)
    return crt, key


def cert_der(path):
    """DER bytes of the first certificate in a PEM file."""
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def client_context(minimum=None, maximum=None, alpn=("http/1.1",), ciphers=None):
    """A client context that does not verify (self-signed test certificates)
    but checks everything else."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def tls_socket(port, ctx=None, sni=None, session=None, timeout=IO_TIMEOUT):
    """A connected, handshaken ssl socket to 127.0.0.1:port."""
    ctx = ctx or client_context()
    raw = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except BaseException:
        raw.close()
        raise
    s.settimeout(timeout)
    return s


def tls_client(port, **kw):
    """A weirtest.Client over TLS (read_response, send, wait_closed...)."""
    return weirtest.Client(sock=tls_socket(port, **kw), timeout=kw.get("timeout", IO_TIMEOUT))


def tls_get(port, target, host="localhost", sni=None, headers=(), ctx=None):
    """One GET over a fresh TLS connection; returns the Response."""
    with tls_client(port, sni=sni, ctx=ctx) as c:
        c.send(weirtest.request_bytes("GET", target, host=host, headers=headers))
        return c.read_response()


def s_client(port, args, stdin=b"", timeout=20):
    """Runs openssl s_client against 127.0.0.1:port; returns (rc, output)."""
    proc = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port)] + list(args),
                          input=stdin, capture_output=True, timeout=timeout)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def make_ca(dir_, stem, cn):
    """A test certificate authority dir_/stem.crt + dir_/stem.key (P-256).
    Returns (cert_path, key_path)."""
    crt = os.path.join(dir_, stem + ".crt")
    key = os.path.join(dir_, stem + ".key")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout", key, "-out", crt],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def make_signed_cert(dir_, stem, cn, ca, dns=(), ips=(), eku="serverAuth"):
    """A leaf certificate for cn signed by ca (a make_ca pair), with DNS
    names cn + dns and IP addresses ips, for eku (serverAuth, or
    clientAuth for a client certificate). Returns (cert_path, key_path)."""
    crt = os.path.join(dir_, stem + ".crt")
    key = os.path.join(dir_, stem + ".key")
    csr = os.path.join(dir_, stem + ".csr")
    ext = os.path.join(dir_, stem + ".ext")
    names = ["DNS:" + n for n in [cn] + list(dns)] + ["IP:" + ip for ip in ips]
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=%s\n" % (",".join(names), eku))
    subprocess.run(["openssl", "req", "-new", "-nodes", "-subj", "/CN=" + cn,
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-keyout", key, "-out", csr],
                   check=True, capture_output=True, timeout=60)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                    "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def server_context(cert):
    """A server context for a test backend: cert is a (cert, key) pair;
    ALPN http/1.1; TLS 1.2 and 1.3; tickets on (python's default)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert[0], cert[1])
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
