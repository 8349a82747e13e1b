#!/usr/bin/python3
"""Writes the seed corpus of fuzz_h2 (tests/fuzz/corpus/h2/): client frame
sequences that follow the connection preface (the target sends the preface
itself), built with python3-h2 so each seed is valid HTTP/2 to start from.
Run from the repository root: /usr/bin/python3 tests/fuzz/make_h2_corpus.py"""

import os

import h2.config
import h2.connection
import hyperframe.frame as hf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def client():
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    return c


def req(path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "fuzz.test"),
            (":path", path)] + list(extra)


def frames(c):
    data = c.data_to_send()
    return data[len(PREFACE):] if data.startswith(PREFACE) else data


def seeds():
    c = client()
    c.send_headers(1, req("/r/a"), end_stream=True)
    yield "get", frames(c)

    c = client()
    c.send_headers(1, req("/r/p", "POST", [("content-length", "5")]))
    c.send_data(1, b"hello", end_stream=True)
    yield "post", frames(c)

    c = client()
    for i in range(5):
        c.send_headers(1 + 2 * i, req("/g/%d" % i), end_stream=True)
    yield "streams", frames(c)

    c = client()
    c.send_headers(1, req("/r/x"), end_stream=True)
    c.reset_stream(1)
    c.ping(b"12345678")
    c.increment_flow_control_window(1000)
    c.close_connection()
    yield "control", frames(c)

    c = client()
    head = frames(c)
    block = h2.connection.Encoder().encode(req("/r/c") + [("x-pad", "a" * 100)])
    head += hf.HeadersFrame(1, block[:20], flags=["END_STREAM"]).serialize()
    head += hf.ContinuationFrame(1, block[20:60]).serialize()
    head += hf.ContinuationFrame(1, block[60:], flags=["END_HEADERS"]).serialize()
    yield "continuation", head

    c = client()
    head = frames(c)
    head += hf.PriorityFrame(3, depends_on=1, stream_weight=16).serialize()
    head += hf.DataFrame(1, b"").serialize()
    head += hf.SettingsFrame(0, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0}).serialize()
    c.send_headers(1, req("/nothing"), end_stream=True)
    yield "odd", head + frames(c)

    # A file body over the first window: DATA waits for WINDOW_UPDATE.
    c = client()
    c.send_headers(1, req("/f/big.bin"), end_stream=True)
    c.send_headers(3, req("/f/small.txt"), end_stream=True)
    c.increment_flow_control_window(65535)
    c.increment_flow_control_window(65535, stream_id=1)
    yield "files", frames(c)

    # A head past the stream's own 2 KiB and then 4 KiB (its fields move
    # to larger buffers twice, under max_header_size = 8k), cookie crumbs
    # joined, and one past max_header_size (431).
    c = client()
    crumbs = [("cookie", "c%d=%s" % (i, "v" * 200)) for i in range(20)]
    c.send_headers(1, req("/r/big", extra=crumbs + [("x-long", "l" * 600)]), end_stream=True)
    c.send_headers(3, req("/r/over", extra=[("x-over", "o" * 9000)]), end_stream=True)
    yield "big_head", frames(c)

    # RFC 8441 extended CONNECT (after our SETTINGS are acknowledged, as a
    # client must wait for them): a WebSocket to the proxy route, one to a
    # route that does not tunnel, an unknown :protocol, then tunnel bytes.
    c = client()
    head = frames(c) + hf.SettingsFrame(0, flags=["ACK"]).serialize()
    enc = h2.connection.Encoder()
    for sid, path, proto in ((1, "/w/chat", "websocket"), (3, "/r/x", "websocket"),
                             (5, "/w/x", "chat")):
        block = enc.encode([(":method", "CONNECT"), (":protocol", proto), (":scheme", "http"),
                            (":authority", "fuzz.test"), (":path", path),
                            ("sec-websocket-version", "13")])
        head += hf.HeadersFrame(sid, block, flags=["END_HEADERS"]).serialize()
    head += hf.DataFrame(1, b"\x81\x02hi").serialize()
    head += hf.DataFrame(1, b"", flags=["END_STREAM"]).serialize()
    yield "websocket", head


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
