"""Load and validate nperf's JSON config files: the lb file and the worker file.

The files keep the seed format (see spec section 3) so the original example
configs load unchanged.  Loading happens in three steps:

1. ``json`` parses the text, because its errors carry a line and a column;
2. ``msgspec.convert`` checks types and single-value ranges (declared with
   ``Meta`` on the Structs below), and its error is rewritten into
   ``<file>: <json path>: expected ..., got ...`` using the Struct's type info;
3. plain Python checks what spans several values (ranges, ownership of
   addresses, counts).

Unknown keys never fail a load: they come back as warnings, so files written
for other versions of the tool still run.

Defaults chosen for optional keys, so that a worker file only needs
``dpdk.args``, ``network.l3`` and ``network.l4`` (protocol excepted):

* scheduler: every phase 0 s except ``sustain_duration_sec`` = 10 and
  ``close_duration_sec`` = 1 (a short run that still closes its connections);
* objective: ``HTTP_REQUESTS`` with ``value`` 1, one request per connection,
  no rate limit;
* http_config: plain HTTP and one path ``/`` with an empty 200 response;
* interface.mtu 1500; network.l2.mac_address "" (= use the port's own MAC);
  network.l4.protocol ``TCP``;
* dpdk: iface "", own the port (is_dpdk_client 0), ring 0, core 0;
* client_payload / server_response: absent (None).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, Iterator, Literal

import msgspec
from msgspec import Meta, Struct, field, inspect

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_WORKERS = 128
# The socket table is indexed directly by address, so a range must stay small.
MAX_RANGE_ADDRESSES = 65536

NonNegInt = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(ge=0)]
Flag = Annotated[int, Meta(ge=0, le=1)]
Port = Annotated[int, Meta(ge=1, le=65535)]
WorkerId = Annotated[int, Meta(ge=0, le=MAX_WORKERS - 1)]
ObjectiveType = Literal["HTTP_REQUESTS", "TCP_CONCURRENT", "TOTAL_CONNECTIONS", "UDP_STREAM"]


class ConfigError(Exception):
    """A config file that cannot be used; ``str(e)`` is the one-line message for the user."""

    def __init__(self, file: str, where: str | None, what: str):
        self.file, self.where, self.what = file, where, what
        super().__init__(": ".join(p for p in (file, where, what) if p is not None))


class _Invalid(Exception):
    """Raised by the cross-field checks, which know the JSON path but not the file name."""

    def __init__(self, path: str, what: str):
        super().__init__(path, what)
        self.path, self.what = path, what


# ---------------------------------------------------------------- lb file


class LbWorker(Struct, kw_only=True):
    id: WorkerId
    ips: list[str]


Percent = Annotated[float, Meta(ge=0, le=100)]
MAX_IMPAIR_DELAY_MS = 40.0      # delay + jitter: what the lb's time wheel covers


class ImpairDirection(Struct, kw_only=True):
    """One direction of the lb's impairment stage (`nperf.kernels.impair`)."""
    loss: Percent = 0.0
    corrupt: Percent = 0.0
    duplicate: Percent = 0.0
    reorder: Percent = 0.0
    depth: Annotated[int, Meta(ge=1, le=1000)] = 3     # frames that overtake a reordered one
    delay_ms: Annotated[float, Meta(ge=0, le=MAX_IMPAIR_DELAY_MS)] = 0.0
    jitter_ms: Annotated[float, Meta(ge=0, le=MAX_IMPAIR_DELAY_MS)] = 0.0


class Impair(Struct, kw_only=True):
    """nperf extension: impair frames between the port and the workers (off when absent)."""
    seed: Annotated[int, Meta(ge=0, le=2**62)] = 1
    to_workers: ImpairDirection | None = None      # frames from the port
    to_port: ImpairDirection | None = None         # frames from the workers


class LbConfig(Struct, kw_only=True):
    dpdk_args: str
    core_id: NonNegInt
    num_clients: Annotated[int, Meta(ge=1, le=MAX_WORKERS)]
    clients: list[LbWorker]
    impair: Impair | None = None


# ------------------------------------------------------------ worker file


class Scheduler(Struct, kw_only=True):
    prepare_duration_sec: Seconds = 0.0
    ramp_up_duration_sec: Seconds = 0.0
    sustain_duration_sec: Seconds = 10.0
    ramp_down_duration_sec: Seconds = 0.0
    close_duration_sec: Seconds = 1.0


class Objective(Struct, kw_only=True):
    type: ObjectiveType = "HTTP_REQUESTS"
    value: NonNegInt = 1
    requests_per_connection: NonNegInt = 1
    requests_per_second: Annotated[float, Meta(gt=0)] | None = None  # None = unlimited


class HttpPath(Struct, kw_only=True):
    path: str
    request_headers: list[str] = []
    response_headers: list[str] = []
    response_body_size: NonNegInt = 0
    response_code: Annotated[int, Meta(ge=100, le=599)] = 200
    response_body: str | None = None
    method: Literal["GET", "HEAD"] = "GET"       # what the client sends (nperf extension)


TlsVersion = Literal["1.2", "1.3"]


class HttpConfig(Struct, kw_only=True):
    use_https: Flag = 0
    cert_path: str = ""         # server, PEM; relative to the config file's directory
    key_path: str = ""
    # TLS settings (nperf extension), checked by OpenSSL when use_https is 1 (nperf.tls):
    tls_versions: Annotated[list[TlsVersion], Meta(min_length=1)] = field(default_factory=lambda: ["1.2", "1.3"])
    tls_ciphers: str = ""       # TLS 1.2 cipher list, OpenSSL syntax; "" = OpenSSL's default
    tls_ciphersuites: str = ""  # TLS 1.3 cipher suites
    tls_groups: str = ""        # key exchange groups, e.g. "X25519:P-256"
    sni: str = ""               # client: the server name sent; "" = none (an address is no name: RFC 6066 3)
    session_resumption: Literal["off", "tickets", "ids"] = "off"   # client: resume TLS sessions
    paths: Annotated[list[HttpPath], Meta(min_length=1)] = field(
        default_factory=lambda: [HttpPath(path="/")]
    )
    retry_reused: Flag = 1      # client: resend once, on a new connection, a request that a reused
                                # connection lost before any response byte (nperf extension)


class Interface(Struct, kw_only=True):
    mtu: Annotated[int, Meta(ge=576, le=9000)] = 1500


class L2(Struct, kw_only=True):
    mac_address: str = ""  # "" = use the port's own MAC


class Ranges(Struct, kw_only=True):
    src_ip_start: str
    src_ip_end: str
    dst_ip_start: str
    dst_ip_end: str


class L3(Ranges, kw_only=True):
    # optional: IPv6 ranges besides the IPv4 ones above, a client asking both families (mixed)
    ipv6: Ranges | None = None


class L4(Struct, kw_only=True):
    protocol: Literal["TCP", "UDP"] = "TCP"
    src_port_start: Port
    src_port_end: Port
    dst_port_start: Port
    dst_port_end: Port


class Network(Struct, kw_only=True):
    l2: L2 = field(default_factory=L2)
    l3: L3
    l4: L4


class Dpdk(Struct, kw_only=True):
    iface: str = ""
    args: str
    is_dpdk_client: Flag = 0
    client_ring_idx: WorkerId = 0
    core_id: NonNegInt = 0
    client_lcore_id: NonNegInt = 0  # legacy key of the seed files, not used


class Payload(Struct, kw_only=True):
    data: str
    size: NonNegInt


class WorkerConfig(Struct, kw_only=True):
    scheduler: Scheduler = field(default_factory=Scheduler)
    objective: Objective = field(default_factory=Objective)
    http_config: HttpConfig = field(default_factory=HttpConfig)
    interface: Interface = field(default_factory=Interface)
    network: Network
    dpdk: Dpdk
    client_payload: Payload | None = None
    server_response: Payload | None = None


# ---------------------------------------------------------------- helpers


def ip_range(start: str, end: str) -> list[IPAddress]:
    """Every address from start to end inclusive; ValueError if they differ in version or are reversed."""
    first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
    if first.version != last.version or last < first:
        raise ValueError(f"not an address range: {start} .. {end}")
    kind = type(first)
    return [kind(n) for n in range(int(first), int(last) + 1)]


def owned_ips(cfg: WorkerConfig, role: str) -> list[IPAddress]:
    """The addresses a worker answers for: a server owns dst_ip_*, a client src_ip_* (with l3.ipv6's)."""
    if role not in ("server", "client"):
        raise ValueError(f"role must be 'server' or 'client', got {role!r}")
    side = "dst" if role == "server" else "src"
    l3 = cfg.network.l3
    return [a for r in filter(None, (l3, l3.ipv6))
            for a in ip_range(getattr(r, f"{side}_ip_start"), getattr(r, f"{side}_ip_end"))]


_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")


def parse_mac(s: str) -> bytes:
    """Six bytes from "aa:bb:cc:dd:ee:ff" (or with '-'); ValueError otherwise."""
    if not _MAC.fullmatch(s):
        raise ValueError(f"not a MAC address: {s!r}")
    return bytes.fromhex(s.replace(s[2], ""))


# ---------------------------------------------------------------- loading


def load_lb(path: str) -> tuple[LbConfig, list[str]]:
    """Read and validate an lb file; returns the config and its warnings."""
    return decode_lb(_read(path), path)


def load_worker(path: str) -> tuple[WorkerConfig, list[str]]:
    """Read and validate a worker (client or server) file; returns the config and its warnings."""
    return decode_worker(_read(path), path)


def load_any(path: str) -> tuple[str, LbConfig | WorkerConfig, list[str]]:
    """Read a file of either kind; the kind ("lb" or "worker") is told by its keys."""
    raw = _parse(_read(path), path)
    kind = _kind(raw, path)
    cfg, warnings = _build(raw, path, LbConfig if kind == "lb" else WorkerConfig)
    return kind, cfg, warnings


def decode_lb(data: bytes, name: str) -> tuple[LbConfig, list[str]]:
    """Validate an lb config held in memory; name stands for the file in messages."""
    return _build(_parse(data, name), name, LbConfig)


def decode_worker(data: bytes, name: str) -> tuple[WorkerConfig, list[str]]:
    """Validate a worker config held in memory; name stands for the file in messages."""
    return _build(_parse(data, name), name, WorkerConfig)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None


def _parse(data: bytes, name: str) -> Any:
    """Parse JSON text, rejecting NaN/Infinity, which JSON does not have."""

    def reject(constant: str) -> None:
        raise ConfigError(name, None, f"invalid JSON: {constant} is not a JSON value")

    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=reject)
    except UnicodeDecodeError as e:
        raise ConfigError(name, None, f"invalid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(name, f"line {e.lineno}, column {e.colno}", f"invalid JSON: {e.msg}") from None


def _kind(raw: Any, name: str) -> str:
    if not isinstance(raw, dict):
        raise ConfigError(name, "$", f"expected a JSON object, got {_show(raw)}")
    if "dpdk_args" in raw:
        return "lb"
    if "dpdk" in raw:
        return "worker"
    raise ConfigError(
        name, "$", 'expected an lb config (with "dpdk_args") or a worker config (with "dpdk"), found neither'
    )


def _build(raw: Any, name: str, cls: type) -> tuple[Any, list[str]]:
    """Convert parsed JSON into cls, run the cross-field checks and collect warnings."""
    info = _TYPE_INFO[cls]
    try:
        cfg = msgspec.convert(raw, cls)
    except msgspec.ValidationError as e:
        raise ConfigError(name, *_explain(str(e), raw, info)) from None
    try:
        notes = _CHECKS[cls](cfg)
    except _Invalid as e:
        raise ConfigError(name, e.path, e.what) from None
    warnings = [f"{name}: {p}: unknown key, ignored" for p in _unknown_keys(raw, info, "$")]
    return cfg, warnings + [f"{name}: {p}: {what}" for p, what in notes]


# ------------------------------------------- msgspec errors -> path messages

_AT = re.compile(r"(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?", re.S)
_MISSING = re.compile(r"Object missing required field `(?P<key>[^`]+)`")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _explain(message: str, raw: Any, info: inspect.Type) -> tuple[str, str]:
    """Turn a msgspec ValidationError text into (json path, "expected ..., got ...")."""
    m = _AT.fullmatch(message)
    path = m["path"] or "$"
    missing = _MISSING.fullmatch(m["msg"])
    if missing:
        return f"{path}.{missing['key']}", "required key missing"
    segments = _segments(path)
    return path, f"expected {_describe(_type_at(info, segments))}, got {_show(_value_at(raw, segments))}"


def _segments(path: str) -> list[str | int]:
    return [key if key else int(index) for key, index in _SEGMENT.findall(path)]


def _value_at(raw: Any, segments: list[str | int]) -> Any:
    for seg in segments:
        raw = raw[seg]
    return raw


def _type_at(t: inspect.Type, segments: list[str | int]) -> inspect.Type:
    for seg in segments:
        if isinstance(seg, int):
            t = _member(t, inspect.ListType).item_type
        else:
            t = next(f.type for f in _member(t, inspect.StructType).fields if f.encode_name == seg)
    return t


def _member(t: inspect.Type, kind: type) -> Any:
    """The part of t of the given kind: t itself, or the matching member of an Optional."""
    if isinstance(t, inspect.UnionType):
        return next((m for m in t.types if isinstance(m, kind)), None)
    return t if isinstance(t, kind) else None


def _describe(t: inspect.Type) -> str:
    """What a value of type t looks like, in words, with its Meta bounds."""
    if isinstance(t, inspect.UnionType):
        return " or ".join(_describe(m) for m in t.types)
    if isinstance(t, inspect.NoneType):
        return "null"
    if isinstance(t, inspect.LiteralType):
        return "one of " + ", ".join(map(str, t.values))
    if isinstance(t, inspect.IntType):
        return "an integer" + _bounds(t)
    if isinstance(t, inspect.FloatType):
        return "a number" + _bounds(t)
    if isinstance(t, inspect.StrType):
        return "a string"
    if isinstance(t, inspect.ListType):
        return "an array" + (f" of length >= {t.min_length}" if t.min_length else "")
    if isinstance(t, inspect.StructType):
        return "an object"
    return type(t).__name__.removesuffix("Type").lower()


def _bounds(t: inspect.IntType | inspect.FloatType) -> str:
    if t.ge is not None and t.le is not None:
        return f" in {t.ge}..{t.le}"
    limits = ((">=", t.ge), (">", t.gt), ("<=", t.le), ("<", t.lt))
    return "".join(f" {op} {v}" for op, v in limits if v is not None)


def _show(value: Any) -> str:
    """A value as JSON, cut short so the message stays on one line."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_keys(raw: Any, t: inspect.Type, path: str) -> Iterator[str]:
    """JSON paths of the keys in raw that t has no field for, at any depth."""
    struct, array = _member(t, inspect.StructType), _member(t, inspect.ListType)
    if struct and isinstance(raw, dict):
        fields = {f.encode_name: f.type for f in struct.fields}
        for key, value in raw.items():
            if key in fields:
                yield from _unknown_keys(value, fields[key], f"{path}.{key}")
            else:
                yield f"{path}.{key}"
    elif array and isinstance(raw, list):
        for i, item in enumerate(raw):
            yield from _unknown_keys(item, array.item_type, f"{path}[{i}]")


# ----------------------------------------------------- cross-field checks


def _ip(text: str, path: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise _Invalid(path, f"expected an IPv4 or IPv6 address, got {_show(text)}") from None


def _check_lb(cfg: LbConfig) -> list[tuple[str, str]]:
    """Worker count and ids must describe one ring pair per worker, 0..n-1."""
    n = len(cfg.clients)
    if cfg.num_clients != n:
        raise _Invalid("$.num_clients", f"expected {n} (the number of entries in clients), got {cfg.num_clients}")
    seen: dict[int, int] = {}
    for i, worker in enumerate(cfg.clients):
        where = f"$.clients[{i}].id"
        if worker.id >= n:
            raise _Invalid(where, f"expected a worker id in 0..{n - 1} (below num_clients), got {worker.id}")
        if worker.id in seen:
            first = f"$.clients[{seen[worker.id]}].id"
            raise _Invalid(where, f"expected a unique worker id, got {worker.id} (also at {first})")
        seen[worker.id] = i
    for name in ("to_workers", "to_port"):
        d = getattr(cfg.impair, name, None)
        if d is not None and d.delay_ms + d.jitter_ms > MAX_IMPAIR_DELAY_MS:
            raise _Invalid(f"$.impair.{name}", f"expected delay_ms + jitter_ms <= {MAX_IMPAIR_DELAY_MS:g} "
                           f"(the lb's time wheel), got {d.delay_ms + d.jitter_ms:g}")
    return _check_lb_ips(cfg.clients)


def impair_option(text: str, cfg: LbConfig, name: str = "--impair") -> LbConfig:
    """`DIRECTION:key=value,...` from the command line (e.g. `to_port:loss=2,delay_ms=1`),
    merged into cfg's impair section and validated like the file's."""
    direction, _, settings = text.partition(":")
    if direction not in ("to_workers", "to_port"):
        raise ConfigError(name, None, f"expected to_workers:... or to_port:..., got {_show(text)}")
    raw = msgspec.to_builtins(cfg)
    section = raw.setdefault("impair", {}) or {}
    raw["impair"] = section
    values = section.setdefault(direction, {}) or {}
    section[direction] = values
    for item in filter(None, settings.split(",")):
        key, _, value = (part.strip() for part in item.partition("="))
        if key not in ImpairDirection.__struct_fields__:
            raise ConfigError(name, None, f"expected one of {', '.join(ImpairDirection.__struct_fields__)}, "
                              f"got {_show(key)}")
        try:
            values[key] = int(value) if key == "depth" else float(value)
        except ValueError:
            raise ConfigError(name, None, f"expected key=number, got {_show(item)}") from None
    cfg, _ = _build(raw, name, LbConfig)
    return cfg


def _check_lb_ips(workers: list[LbWorker]) -> list[tuple[str, str]]:
    """An address may belong to one worker only; a repeat within one worker is dropped with a warning."""
    owner: dict[IPAddress, tuple[int, str]] = {}
    notes = []
    for i, worker in enumerate(workers):
        kept = []
        for j, text in enumerate(worker.ips):
            where = f"$.clients[{i}].ips[{j}]"
            ip = _ip(text, where)
            if ip in owner:
                first_worker, first_where = owner[ip]
                if first_worker != i:
                    raise _Invalid(
                        where,
                        f"expected an address owned by one worker only, got {_show(text)}, "
                        f"owned by worker {workers[first_worker].id} ({first_where}) and worker {worker.id}",
                    )
                notes.append((where, f"duplicate address {ip} (also at {first_where}), ignored"))
                continue
            owner[ip] = (i, where)
            kept.append(text)
        worker.ips = kept
    return notes


def _check_worker(cfg: WorkerConfig) -> list[tuple[str, str]]:
    for i, p in enumerate(cfg.http_config.paths):
        _check_http_path(p, f"$.http_config.paths[{i}]")
    if cfg.network.l2.mac_address:
        _check_mac(cfg.network.l2.mac_address)
    _check_l3(cfg.network.l3)
    _check_l4(cfg.network.l4, cfg.objective.type)
    return []


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_http_path(p: HttpPath, where: str) -> None:
    """Path and headers go verbatim into HTTP messages, so they must not break the framing."""
    if not p.path.startswith("/") or any(c.isspace() for c in p.path):
        raise _Invalid(f"{where}.path", f'expected a path starting with "/" and without spaces, got {_show(p.path)}')
    for key in ("request_headers", "response_headers"):
        for j, header in enumerate(getattr(p, key)):
            name, colon, value = header.partition(":")
            if not (colon and _TOKEN.fullmatch(name)) or "\r" in value or "\n" in value:
                raise _Invalid(f"{where}.{key}[{j}]", f'expected a header "Name: value", got {_show(header)}')


def _check_mac(text: str) -> None:
    try:
        parse_mac(text)
    except ValueError:
        what = f'expected a MAC address like "02:00:00:00:00:01", got {_show(text)}'
        raise _Invalid("$.network.l2.mac_address", what) from None


def _check_l3(l3: L3) -> None:
    """Both ranges must be valid, small enough, and of the IP version the client will speak; with
    l3.ipv6 (mixed), the ranges above it are IPv4 and its own IPv6."""
    version = _check_ranges(l3, "$.network.l3")
    if l3.ipv6 is not None:
        if version != 4:
            raise _Invalid("$.network.l3.ipv6", "expected the ranges beside ipv6 to be IPv4 (a mixed worker), "
                                                f"got IPv{version}")
        if _check_ranges(l3.ipv6, "$.network.l3.ipv6") != 6:
            raise _Invalid("$.network.l3.ipv6.src_ip_start",
                           f"expected an IPv6 address, got {_show(l3.ipv6.src_ip_start)}")


def _check_ranges(r: Ranges, where: str) -> int:
    """Check a source and a destination range of one IP version; return it."""
    src = _check_ip_range(r, "src", where)
    dst = _check_ip_range(r, "dst", where)
    if dst.version != src.version:
        raise _Invalid(
            f"{where}.dst_ip_start",
            f"expected an IPv{src.version} address like src_ip_start, got {_show(r.dst_ip_start)}",
        )
    return src.version


def _check_ip_range(r: Ranges, side: str, where: str) -> IPAddress:
    """Check <side>_ip_start .. <side>_ip_end and return the start address."""
    start_key, end_key = f"{side}_ip_start", f"{side}_ip_end"
    start = _ip(getattr(r, start_key), f"{where}.{start_key}")
    end_text = getattr(r, end_key)
    end_path = f"{where}.{end_key}"
    end = _ip(end_text, end_path)
    if end.version != start.version:
        raise _Invalid(end_path, f"expected an IPv{start.version} address like {start_key}, got {_show(end_text)}")
    if end < start:
        raise _Invalid(end_path, f"expected an address >= {start_key} ({start}), got {_show(end_text)}")
    count = int(end) - int(start) + 1
    if count > MAX_RANGE_ADDRESSES:
        raise _Invalid(end_path, f"expected at most {MAX_RANGE_ADDRESSES} addresses from {start_key}, got {count}")
    return start


def _check_l4(l4: L4, objective: str) -> None:
    for side in ("src", "dst"):
        start, end = getattr(l4, f"{side}_port_start"), getattr(l4, f"{side}_port_end")
        if end < start:
            raise _Invalid(f"$.network.l4.{side}_port_end", f"expected a port >= {side}_port_start ({start}), got {end}")
    wanted = "UDP" if objective == "UDP_STREAM" else "TCP"
    if l4.protocol != wanted:
        raise _Invalid("$.network.l4.protocol", f'expected "{wanted}" for objective {objective}, got "{l4.protocol}"')


_TYPE_INFO = {cls: inspect.type_info(cls) for cls in (LbConfig, WorkerConfig)}
_CHECKS = {LbConfig: _check_lb, WorkerConfig: _check_worker}
