"""Template tables for the HTTP framing kernels, built once from a worker's http_config.

The kernels never keep message bytes per connection: they regenerate any
byte range of a response or request from these tables (see
nperf.kernels.http_server / http_client for the array layouts).

Response bodies: with ``response_body`` the body is its UTF-8 bytes cycled to
``response_body_size`` bytes (exactly ``response_body`` when the size is 0);
without it (or with an empty one) the body is BODY_PATTERN cycled.  A body
pattern is stored repeated to at least PATTERN_MIN bytes, twice over, so a
copy of up to PATTERN_MIN bytes is one slice.  Status codes 1xx, 204 and 304
have no body and no Content-Length field.
"""
from __future__ import annotations

from http import HTTPStatus

import numpy as np

from nperf.config import HttpConfig, HttpPath
from nperf.kernels import http_client as hc
from nperf.kernels import http_server as hs
from nperf.kernels.bytes_util import fnv64

PATTERN_MIN = 4096
_LINE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-\n"
BODY_PATTERN = _LINE * (PATTERN_MIN // len(_LINE))  # 4096 printable bytes, 64 per line

_TEXT = "Content-Type: text/plain"
_FIXED = (  # in R404.. order; RFC 9110 reason phrases (Python's vary by version)
    (404, "Not Found", [_TEXT], b"not found\n"),
    (400, "Bad Request", [_TEXT], b"bad request\n"),
    (414, "URI Too Long", [_TEXT], b"request line too long\n"),
    (431, "Request Header Fields Too Large", [_TEXT], b"request header fields too large\n"),
    (501, "Not Implemented", [_TEXT], b"not implemented\n"),
    (405, "Method Not Allowed", ["Allow: GET, HEAD", _TEXT], b"method not allowed\n"),
    (100, "Continue", [], b""),
)
assert [hs.R404, hs.R400, hs.R414, hs.R431, hs.R501, hs.R405, hs.R100] == list(range(hs.N_FIXED_RESPONSES))


class _Blob:
    """A growing byte area of templates, with identical pieces stored once."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.seen: dict[bytes, int] = {}

    def add(self, piece: bytes) -> int:
        """Offset of piece in the blob."""
        if piece not in self.seen:
            self.seen[piece] = len(self.data)
            self.data += piece
        return self.seen[piece]

    def array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.data), np.uint8).copy()


class ResponseTable:
    """Every response the server can send: the configured paths, then the error responses."""

    def __init__(self, meta: np.ndarray, blob: np.ndarray, routes: np.ndarray):
        self.meta, self.blob, self.routes = meta, blob, routes
        self.num_paths = routes.shape[0]
        self.r404 = self.num_paths + hs.R404
        self.r400 = self.num_paths + hs.R400
        self.r414 = self.num_paths + hs.R414
        self.r431 = self.num_paths + hs.R431
        self.r501 = self.num_paths + hs.R501
        self.r405 = self.num_paths + hs.R405
        self.r100 = self.num_paths + hs.R100

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tuple the server kernels take as `table`."""
        return (self.meta, self.blob, self.routes)


class RequestTable:
    """The request templates of the configured paths, in order."""

    def __init__(self, meta: np.ndarray, blob: np.ndarray):
        self.meta, self.blob = meta, blob
        self.hosts = np.zeros((hc.HOST_SLOTS, len(hc.HOST_WORDS)), np.int64)
        self.host_text = np.zeros((hc.HOST_SLOTS, hc.HOST_BYTES), np.uint8)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The tuple the client kernels take as `table` (the Host cache included: see http_client)."""
        return (self.meta, self.blob, self.hosts, self.host_text)


def _lines(items: list[str]) -> bytes:
    return b"".join(item.encode() + b"\r\n" for item in items)


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def _response_head(code: int, reason: str, headers: list[str], body_len: int) -> bytes:
    """Status line and fields up to (not including) the empty line."""
    head = f"HTTP/1.1 {code} {reason}\r\n".encode() + _lines(headers)
    if _has_body(code):
        head += f"Content-Length: {body_len}\r\n".encode()
    return head


def _has_body(code: int) -> bool:
    return code >= 200 and code not in (204, 304)


def _body(path: HttpPath) -> tuple[int, bytes]:
    """(body length, pattern the body cycles) for a configured path."""
    text = (path.response_body or "").encode()
    if not _has_body(path.response_code):
        return 0, b""
    if text:
        return path.response_body_size or len(text), text
    return path.response_body_size, BODY_PATTERN


def _add_pattern(blob: _Blob, unit: bytes) -> tuple[int, int]:
    """Store unit repeated to >= PATTERN_MIN bytes, twice; returns (offset, period)."""
    if not unit:
        return 0, 1
    period = unit * -(-PATTERN_MIN // len(unit))
    return blob.add(period * 2), len(period)


def build_response_table(http_config: HttpConfig) -> ResponseTable:
    """Response templates for http_config.paths, then the fixed ones (R404..R100).

    Routes are keyed by the path up to any '?' (the server ignores queries);
    when two paths share a key the first one is served.
    """
    blob = _Blob()
    rows, routes = [], []
    responses = [(p.response_code, _reason(p.response_code), p.response_headers, *_body(p))
                 for p in http_config.paths]
    responses += [(code, reason, headers, len(text), text) for code, reason, headers, text in _FIXED]
    for code, reason, headers, body_len, unit in responses:
        head = _response_head(code, reason, headers, body_len)
        keep, close = head + b"\r\n", head + b"Connection: close\r\n\r\n"
        rows.append((blob.add(keep), blob.add(close), len(keep), len(close), body_len,
                     *_add_pattern(blob, unit)))
    for p in http_config.paths:
        key = p.path.encode().split(b"?", 1)[0]
        routes.append((fnv64(key), len(key)))
    meta = np.array(rows, np.int64).reshape(-1, hs.RESP_COLS)
    return ResponseTable(meta, blob.array(), np.array(routes, np.int64).reshape(-1, 2))


def build_request_table(http_config: HttpConfig) -> RequestTable:
    """Request templates for http_config.paths (GET or the path's method): prefix up to ``Host: ``,
    then suffixes without/with close."""
    blob = _Blob()
    rows = []
    for p in http_config.paths:
        prefix = f"{p.method} {p.path} HTTP/1.1\r\nHost: ".encode()
        suffix = b"\r\n" + _lines(p.request_headers)
        keep, close = suffix + b"\r\n", suffix + b"Connection: close\r\n\r\n"
        rows.append((blob.add(prefix), len(prefix), blob.add(keep), blob.add(close), len(keep), len(close),
                     int(p.method == "HEAD")))
    return RequestTable(np.array(rows, np.int64).reshape(-1, hc.REQ_COLS), blob.array())
