"""Run reports made in Python with known figures, for `nperf report` and `nperf compare` tests."""
import msgspec
import numpy as np

from nperf import api, histogram
from nperf.kernels import client_app as ca
from nperf.kernels import dispatch, latency, stack
from nperf.reports import (Accounting, ClientReport, LbReport, Latency, Outcomes, PortCounters, ServerReport,
                           Sustain, WorkerCounters)

PHASES = ["prepare", "ramp-up", "sustain", "sustain", "sustain", "ramp-down", "close"]


def hist_of(values_us) -> histogram.Histogram:
    h = np.zeros(latency.BUCKETS, np.int64)
    for v in values_us:
        h[latency.bucket(int(v))] += 1
    return histogram.encode(h)


def client(name: str, cps: list[int], latencies_us: list[int], failed: int = 0, connect_refused: int = 0,
           retransmits: int = 0) -> api.RoleResult:
    rows = [{"phase": p, "target": 100, "conc": 100, "cps": c, "closes": c, "rps": c, "tx_mbps": c / 1000,
             "rx_mbps": c / 500, "ok": c, "fail": 0, "p50_ms": 0.5, "p90_ms": 0.9, "p99_ms": 1.5, "p999_ms": 2.0,
             "max_ms": 3.0} for p, c in zip(PHASES, cps)]
    sustain = [r for r in rows if r["phase"] == "sustain"]
    causes = [ca.CLIENT_COUNTER_NAMES[i] for i in (*range(*ca.REQUEST_CAUSES), *range(*ca.CONNECTION_CAUSES))]
    errors = {n: 0 for n in causes + ["arp_failed", "no_source_pair"]}
    errors.update(connect_refused=connect_refused, reset=failed, connection_reset=failed)
    opened = sum(cps) + connect_refused
    acc = Accounting(Outcomes(opened, sum(cps) - failed, failed + connect_refused,
                              {"connect_refused": connect_refused, "connection_reset": failed}, 0),
                     Outcomes(sum(cps), sum(cps) - failed, failed, {"reset": failed}, 0))
    notes = {"retried": 0, "unsolicited": 0, "keepalive_closed": 0, "retransmissions": retransmits, "tcp_timeouts": 0}
    counters = {n: 0 for n in stack.COUNTER_NAMES}
    counters.update(conn_opened=sum(cps), tcp_retransmits=retransmits, drop_bad_tcp=1)
    h = hist_of(latencies_us)
    rep = ClientReport("client", f"{name}.json", len(rows), sum(cps), sum(cps), sum(cps) - failed, failed, errors,
                       Sustain(*(sum(r[k] for r in sustain) / len(sustain) for k in ("cps", "rps", "tx_mbps", "rx_mbps"))),
                       Latency(*histogram.percentiles_ms(h)), rows, counters, {}, acc, notes, 0, h)
    per_second = [{"elapsed": i + 1, **r} for i, r in enumerate(rows)]
    return api.RoleResult(f"client {name}", "client", f"{name}.json", 1 if failed else 0, rep,
                          {"objective": {"type": "HTTP_REQUESTS", "value": 100}}, per_second)


def server(retransmits: int = 0) -> api.RoleResult:
    counters = {n: 0 for n in stack.COUNTER_NAMES}
    counters.update(tcp_retransmits=retransmits, drop_not_ours=2)
    rep = ServerReport("server", "s.json", 7, counters, {"requests": 10}, 0)
    rows = [{"elapsed": i + 1, "conns": 5, "cps": 7, "rps": 7, "tx_mbps": 1.0, "rx_mbps": 0.5, "drops": 2}
            for i in range(7)]
    return api.RoleResult("server s", "server", "s.json", 0, rep, {"dpdk": {"core_id": 3}}, rows)


def lb(no_worker: int = 0) -> api.RoleResult:
    drops = {n: 0 for n in dispatch.DROP_NAMES}
    drops["no_worker"] = no_worker
    rep = LbReport("lb", "lb_s.json", 7, PortCounters("net_memif", "02:00:00:00:00:01", 10, 10, 1000, 1000), drops,
                   [WorkerCounters(0, 5, 5, 0)], 1)
    rows = [{"elapsed": i + 1, "link": 1, "rx_pps": 3, "tx_pps": 3, "rx_mbps": 0.1, "tx_mbps": 0.1,
             "drops": no_worker} for i in range(7)]
    return api.RoleResult("lb lb_s", "lb", "lb_s.json", 0, rep, {"core_id": 5}, rows)


def run(*roles: api.RoleResult) -> api.RunResult:
    return api.RunResult(ok=all(r.status == 0 for r in roles), roles=list(roles))


def write(result: api.RunResult, path: str) -> str:
    with open(path, "wb") as f:
        f.write(msgspec.json.encode(result))
    return path
