"""One HTTP connection's parser state, driven like the stack drives it, and the seed's tables.

Shared by tests/unit/test_http_server.py and test_http_client.py: `Server`
and `Client` feed chunks to the sans-I/O parsers and check every return
value; `response` and `request` give the exact bytes the tables produce;
`mutated` and `chunked_input` are the fuzz inputs (valid messages with
random edits, cut at random points).
"""
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from nperf.config import load_worker
from nperf.kernels import http_client as hc
from nperf.kernels import http_server as hs
from nperf.kernels.tcp_table import APP_WORDS
from nperf.roles.http_tables import build_request_table, build_response_table

HERE = Path(__file__).resolve().parent            # tests/
SEED = HERE / "seed_configs/memif/test3/s.json"
HTTP = load_worker(str(SEED))[0].http_config
RT = build_response_table(HTTP)
QT = build_request_table(HTTP)
TABLE = RT.arrays()
LINE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-\n"
PATTERN = LINE * 64
SEED_HEAD = b"HTTP/1.1 200 OK\r\nServer: unetbsd\r\nContent-Type: text/plain\r\n"
CLOSE, HEAD, INTERIM = hs.FLAG_CLOSE, hs.FLAG_HEAD, hs.FLAG_INTERIM
IP = (192 << 24) | (168 << 16) | (1 << 8) | 100  # 192.168.1.100

FUZZ = settings(derandomize=True, max_examples=1000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def arr(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8).copy()


def splits(data: bytes, points) -> list[bytes]:
    cuts = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in zip(cuts, cuts[1:])]


def response(table, index, flags) -> bytes:
    n = hs.response_length(table, index, flags)
    out = np.zeros(n, np.uint8)
    assert hs.response_copy(table, index, flags, 0, out, 0, n) == n
    return out.tobytes()


def request(index, close, ip=IP, port=8000, hi=0) -> bytes:
    n = hc.request_length(QT.arrays(), index, close, hi, ip, port)
    out = np.zeros(n, np.uint8)
    assert hc.request_copy(QT.arrays(), index, close, hi, ip, port, 0, out, 0, n) == n
    return out.tobytes()


class Server:
    """One server connection: feeds chunks like a caller would, checking every return value.

    With a `memo` (kernels.head_memo) it parses as the stack does, through
    server_parse_memo, on a row as wide as a connection's (APP_WORDS).
    """

    def __init__(self, table=TABLE, maxev=8, memo=None):
        self.table = table
        self.memo = memo
        self.state = np.zeros(hs.HS_WORDS if memo is None else APP_WORDS, np.int64)
        self.counters = np.zeros(hs.N_COUNTERS, np.int64)
        self.events_array = np.zeros((maxev, len(hs.EVENT_WORDS)), np.int64)
        self.events: list[tuple[int, int]] = []

    def feed(self, *chunks: bytes) -> list[tuple[int, int]]:
        maxev = self.events_array.shape[0]
        for chunk in chunks:
            data, pos = arr(chunk), 0
            while True:
                if self.memo is None:
                    end, nev = hs.server_parse(self.state, data, pos, len(data), self.table,
                                               self.events_array, self.counters)
                else:
                    end, nev = hs.server_parse_memo(self.memo, self.state, data, pos, len(data), self.table,
                                                    self.events_array, self.counters)
                assert pos <= end <= len(data) and 0 <= nev <= maxev
                self.events += [tuple(map(int, e)) for e in self.events_array[:nev]]
                if end == len(data):
                    break
                assert nev == maxev, "stopped early with room for events"
                pos = end
        return self.events

    @property
    def stage(self) -> int:
        return int(self.state[hs.W_STAGE])


class Client:
    """One client connection; records (event, status, body bytes, close requested) per event.

    `head`: the requests were HEAD (no body follows). With a `memo`, as Server.
    """

    def __init__(self, memo=None, head=False):
        self.memo = memo
        self.head = head
        self.state = np.zeros(hc.HC_WORDS if memo is None else APP_WORDS, np.int64)
        self.counters = np.zeros(hc.N_COUNTERS, np.int64)
        self.events: list[tuple[int, int, int, bool]] = []

    def feed(self, *chunks: bytes) -> list[tuple[int, int, int, bool]]:
        for chunk in chunks:
            data, pos = arr(chunk), 0
            while pos < len(data):
                if self.memo is None:
                    end, ev = hc.client_parse(self.state, data, pos, len(data), self.counters, self.head)
                else:
                    end, ev = hc.client_parse_memo(self.memo, self.state, data, pos, len(data), self.counters,
                                                   self.head)
                assert pos < end <= len(data) and ev in (0, 1, 2, 3)
                assert ev != 0 or end == len(data)
                if ev:
                    self._record(ev)
                pos = end
        return self.events

    def eof(self) -> int:
        ev = hc.client_eof(self.state, self.counters)
        if ev:
            self._record(ev)
        return ev

    def _record(self, ev):
        s = self.state
        self.events.append((int(ev), int(hc.client_status(s)), int(hc.client_body_bytes(s)),
                            bool(hc.client_close_requested(s))))

    @property
    def stage(self) -> int:
        return int(self.state[hc.W_STAGE])


COUNT_NAMES = ("requests", "bad", "too_large", "not_found", "not_implemented", "bytes", "not_allowed", "continue")
NONE_COUNTED = dict.fromkeys(COUNT_NAMES, 0)


def counts(server: Server) -> dict[str, int]:
    return dict(zip(COUNT_NAMES, map(int, server.counters)))


@st.composite
def mutated(draw, samples):
    """A valid message (or a few pipelined) with random byte replacements, insertions and deletions."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(samples), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        op, byte = draw(st.integers(0, 2)), draw(st.integers(0, 255))
        if op == 0 and pos < len(data):
            data[pos] = byte
        elif op == 1:
            data.insert(pos, byte)
        elif pos < len(data):
            del data[pos]
    return bytes(data)


@st.composite
def chunked_input(draw, samples):
    data = draw(st.one_of(st.binary(max_size=200), mutated(samples)))
    points = draw(st.lists(st.integers(0, len(data)), max_size=6))
    return data, points
