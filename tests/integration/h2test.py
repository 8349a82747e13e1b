"""python3-h2 helpers for the HTTP/2 integration tests (issue 15): a raw
client whose own checks are off, so malformed requests reach weir as
written. python3-h2 is a Debian package: when ctest found another python3
first (pyenv, a venv), the importing script re-runs under Debian's."""

import os
import socket
import sys
import time

try:
    import h2  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and not os.environ.get("WEIR_H2_REEXEC"):
        os.environ["WEIR_H2_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    HAVE_H2 = True
except ImportError:
    HAVE_H2 = False


def get(path, authority=b"h2.test"):
    """The fields of a GET for path (bytes), as RawH2.request takes them."""
    return [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", authority),
            (b":path", path)]


def post(path, length, authority=b"h2.test"):
    """The fields of a POST for path with a content-length of length."""
    return [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", authority),
            (b":path", path), (b"content-length", b"%d" % length)]


class RawH2:
    """One h2c connection speaking frames through python3-h2 with outbound
    validation off, so malformed requests reach the server as written.
    streams[sid] = {"status", "body", "end", "reset", "headers"}; DATA of a stream in
    `stalled` is not acknowledged (its window closes: a client that stops
    reading it), other DATA is."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.stalled = set()
        self.goaway = None      # (error code, last stream id) once GOAWAY came
        self.got_settings = False  # the server's first SETTINGS arrived
        self.is_closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def request(self, headers, body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=body is None and end)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def stream(self, sid):
        return self.streams.setdefault(sid, {"status": None, "body": b"", "end": False,
                                             "reset": None, "headers": {}})

    def _on_event(self, ev):
        if isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
            return
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.got_settings = True
            return
        sid = getattr(ev, "stream_id", None)
        if not sid:
            return
        st = self.stream(sid)
        if isinstance(ev, h2.events.ResponseReceived):
            st["headers"] = dict(ev.headers)
            st["header_list"] = list(ev.headers)  # duplicates kept
            st["status"] = int(st["headers"][b":status"])
        elif isinstance(ev, h2.events.DataReceived):
            st["body"] += ev.data
            if sid not in self.stalled:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif ev.flow_controlled_length:
                self.conn.increment_flow_control_window(ev.flow_controlled_length)
        elif isinstance(ev, h2.events.StreamEnded):
            st["end"] = True
        elif isinstance(ev, h2.events.StreamReset):
            st["reset"] = ev.error_code

    def pump(self):
        """One read from the socket, its events applied. False at EOF."""
        data = self.sock.recv(65536)
        if not data:
            self.is_closed = True
            return False
        for ev in self.conn.receive_data(data):
            self._on_event(ev)
        self.flush()
        return True

    def wait(self, pred, timeout=5.0, what="a condition"):
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            if pred():
                return
            if time.monotonic() > deadline or self.is_closed or not self.pump():
                break
        if not pred():
            raise AssertionError("h2: no %s within %.1fs" % (what, timeout))

    def wait_stream(self, sid, timeout=5.0):
        """('reset', error code), ('response', status, body) or ('closed',)."""
        st = self.stream(sid)
        try:
            self.wait(lambda: st["end"] or st["reset"] is not None, timeout,
                      "end of stream %d" % sid)
        except AssertionError:
            if self.is_closed:
                return ("closed",)
            raise
        if st["reset"] is not None:
            return ("reset", st["reset"])
        return ("response", st["status"], st["body"])
