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
    """One worker's frames through the lb. A frame put on its RX ring after the worker's last read
    (a peer's late retransmission while the worker stops) is in `unread_at_stop`, freed by the lb at
    exit: the worker received `to_worker - unread_at_stop` frames."""
    id: int
    to_worker: int
    from_worker: int
    ring_full: int
    unread_at_stop: int = 0


class PoolUse(msgspec.Struct):
    """Packet-pool buffers out of the pool: when the lb became ready and after it stopped forwarding.

    Equal values mean no mbuf leaked; `freed_from_rings` were still queued to
    workers that had stopped reading (freed by the lb at exit)."""
    size: int
    in_use_start: int
    in_use_end: int
    freed_from_rings: int


class LbReport(msgspec.Struct, tag="lb"):
    role: str
    config: str
    seconds: int
    port: PortCounters
    drops: dict[str, int]
    workers: list[WorkerCounters]
    announcements: int = 0       # peers' gratuitous ARP or IPv6 advertisements to all, for no worker's address: not drops
    pool: PoolUse | None = None
    # The impairment stage's counts by direction (to_workers, to_port) and kind; None: no stage.
    # With a stage, the port's rx counters count the frames that came out of it toward the workers.
    impair: dict[str, dict[str, int]] | None = None


class Latency(msgspec.Struct):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class TlsSummary(msgspec.Struct):
    """A role's TLS (use_https: 1): handshakes, their failures by cause, and the handshake time from
    TCP's open to the handshake's end, apart from the requests' latency."""
    handshakes_full: int
    handshakes_resumed: int
    failed_by_cause: dict[str, int]     # alert, certificate, timeout, peer_closed
    record_errors: int                  # connections that failed after their handshake
    no_slot: int                        # connections reset for want of a TLS slot
    bytes_encrypted: int
    bytes_decrypted: int
    handshake_ms: Latency
    handshake_histogram: Histogram

    def text(self) -> str:
        """The summary lines' words on TLS."""
        failed = ", ".join(f"{cause} {n:,}" for cause, n in self.failed_by_cause.items() if n)
        return (f"TLS handshakes {self.handshakes_full:,} full {self.handshakes_resumed:,} resumed, "
                f"p50 {self.handshake_ms.p50:.2f} p99 {self.handshake_ms.p99:.2f} ms, failed: {failed or 'none'}")


class ServerReport(msgspec.Struct, tag="server"):
    role: str
    config: str
    seconds: int
    counters: dict[str, int]
    http: dict[str, int]
    active_connections: int
    tls: TlsSummary | None = None


class Sustain(msgspec.Struct):
    cps: float
    rps: float
    tx_mbps: float
    rx_mbps: float


class Outcomes(msgspec.Struct):
    """One side of the client's accounting: everything started ends once, ok or failed by cause."""
    started: int
    ok: int
    failed: int
    failed_by_cause: dict[str, int]
    open_now: int
    retried: int = 0


class Accounting(msgspec.Struct):
    """connections: started = ok + failed + open_now; requests: started = ok + failed + retried + open_now."""
    connections: Outcomes
    requests: Outcomes

    def holds(self) -> bool:
        c, r = self.connections, self.requests
        return (c.started == c.ok + c.failed + c.open_now and r.started == r.ok + r.failed + r.retried + r.open_now
                and c.failed == sum(c.failed_by_cause.values()) and r.failed == sum(r.failed_by_cause.values()))


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
    accounting: Accounting | None = None       # None in reports written before it existed
    notes: dict[str, int] = {}       # counts that are not failures (retried requests, retransmissions...)
    udp_sent: int = 0
    latency_histogram: Histogram | None = None     # the sustain phase's, as latency_ms
    # a client with IPv6 destinations: connections_opened, connections_failed, responses_ok and
    # responses_failed by family ("ipv4", "ipv6"; a request that failed waiting for a retry counts
    # in ipv4, having no connection); empty otherwise
    families: dict[str, dict[str, int]] = {}
    tls: TlsSummary | None = None


Report = LbReport | ServerReport | ClientReport


def write(report: Report, path: str) -> None:
    with open(path, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(report)))
