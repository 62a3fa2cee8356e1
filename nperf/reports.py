"""What each role reports at exit, and per second, as typed msgspec Structs.

The same Structs are written by `--report FILE`, sent over IPC to `nperf
run`, and returned by the asyncio API, so a script gets the objects a file
reader would get. They import nothing from DPDK.
"""
import msgspec

from nperf.histogram import Histogram


class PortCounters(msgspec.Struct):
    name: str
    mac: str
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int


class WorkerCounters(msgspec.Struct):
    id: int
    to_worker: int
    from_worker: int
    ring_full: int


class LbReport(msgspec.Struct, tag="lb"):
    role: str
    config: str
    seconds: int
    port: PortCounters
    drops: dict[str, int]
    workers: list[WorkerCounters]
    arp_announcements: int = 0       # peers' gratuitous ARP for no worker's address: freed, not drops


class ServerReport(msgspec.Struct, tag="server"):
    role: str
    config: str
    seconds: int
    counters: dict[str, int]
    http: dict[str, int]
    active_connections: int


class Latency(msgspec.Struct):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class Sustain(msgspec.Struct):
    cps: float
    rps: float
    tx_mbps: float
    rx_mbps: float


class ClientReport(msgspec.Struct, tag="client"):
    role: str
    config: str
    seconds: int
    connections_opened: int
    requests_sent: int
    responses_ok: int
    responses_failed: int
    errors: dict[str, int]
    sustain: Sustain
    latency_ms: Latency
    per_second: list[dict[str, float | str]]
    counters: dict[str, int]
    http: dict[str, int]
    udp_sent: int = 0
    latency_histogram: Histogram | None = None     # the sustain phase's, as latency_ms


Report = LbReport | ServerReport | ClientReport


def write(report: Report, path: str) -> None:
    with open(path, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(report)))
