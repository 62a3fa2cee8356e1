"""`nperf bench soak [--minutes 10]`: test3 at full load for minutes, one row of figures per minute.

A leak shows as growth, not as a failure in a short run: a packet pool that
loses a buffer per thousand connections, a connection table that keeps rows,
a process whose memory creeps. The seed's memif test3 topology (client →
lb_c ⇄ memif ⇄ lb_s → server, one request per connection, 1000 concurrent)
sustains for `--minutes`; at the end of each minute a row shows what every
process holds at that second (lb pool buffers in use, worker table rows and
held mbufs, resident memory of every role) and the client's CPS and p99 over
the minute.

Verdict: pass when nothing grew after the first minute (ramp-up is over by
then: each held figure's maximum over a later minute is at most GROWTH above
its first-minute maximum), the client failed nothing, its accounting balances
with nothing open at exit, and each lb's pool returned exactly to its
value before the run.
"""
import statistics

import uvloop

from nperf import api, histogram
from nperf.bench.e2e import nperf_topology

MINUTE = 60
GROWTH = 0.10            # a held figure may end a minute at most 10% above the first minute's maximum
FLOOR = {"pool": 256, "table": 64, "mbufs": 64, "rss_mib": 8}    # ... or by this much, whichever is more

COLUMNS = ("pool", "table", "mbufs", "rss_mib")


def held(name: str, fields: dict) -> dict[str, float]:
    """What one role holds at this second, by column (only the columns the role has)."""
    out = {"rss_mib": fields["rss_mib"]} if "rss_mib" in fields else {}
    if "pool_in_use" in fields:
        out["pool"] = fields["pool_in_use"]
    if "table_in_use" in fields:
        out["table"], out["mbufs"] = fields["table_in_use"], fields["mbufs_held"]
    return {f"{name} {k}": v for k, v in out.items()}


class Minutes:
    """Per-second statistics of every role folded into one row per sustain minute."""

    def __init__(self):
        self.rows: list[dict] = []
        self._maxima: dict[str, float] = {}
        self._at: dict[str, float] = {}
        self._cps: list[float] = []
        self._latency: list[histogram.Histogram] = []
        self._fail = 0
        self._seconds = 0

    def second(self, sec) -> None:
        for k, v in held(sec.name, sec.fields).items():
            self._at[k] = v
            self._maxima[k] = max(self._maxima.get(k, v), v)
        if sec.name.startswith("client") and sec.fields.get("phase") == "sustain":
            self._cps.append(float(sec.fields["cps"]))
            self._fail += int(sec.fields["fail"])
            if sec.latency is not None:
                self._latency.append(sec.latency)
            self._seconds += 1
            if self._seconds % MINUTE == 0:
                self._close_row()

    def _close_row(self) -> None:
        p99 = histogram.percentiles_ms(histogram.merge(self._latency), (99.0,))[0] if self._latency else 0.0
        row = {"minute": len(self.rows) + 1, "cps": statistics.mean(self._cps), "p99_ms": p99,
               "fail": self._fail, "at": dict(self._at), "max": dict(self._maxima)}
        self.rows.append(row)
        print(format_row(row), flush=True)
        self._maxima, self._cps, self._latency, self._fail = {}, [], [], 0

    def grown(self) -> list[str]:
        """Figures whose maximum in a later minute exceeds the first minute's by more than allowed."""
        if len(self.rows) < 2:
            return []
        first = self.rows[0]["max"]
        out = []
        for row in self.rows[1:]:
            for k, v in row["max"].items():
                base = first.get(k, v)
                if v > base + max(base * GROWTH, FLOOR[k.rsplit(" ", 1)[1]]):
                    out.append(f"{k} {base:,.0f} -> {v:,.0f} in minute {row['minute']}")
        return out


def format_row(row: dict) -> str:
    held_now = "  ".join(f"{k} {v:,.0f} ({row['max'][k]:,.0f})" for k, v in sorted(row["at"].items()))
    return (f"minute {row['minute']:3d}: cps {row['cps']:,.0f}  p99 {row['p99_ms']:.2f} ms  fail {row['fail']}  "
            f"| {held_now}")


def verdict(result: api.RunResult, minutes: Minutes) -> list[str]:
    """Reasons the soak failed (empty: it passed)."""
    why = [f"grew: {g}" for g in minutes.grown()]
    if not result.ok:
        why.append("the run failed: " + ", ".join(f"{r.name} status {r.status}" for r in result.roles if r.status))
    for r in result.roles:
        rep = r.report
        if rep is None:
            why.append(f"{r.name}: no report")
        elif r.kind == "client":
            acc = rep.accounting
            failed = {k: v for k, v in rep.errors.items() if v}
            if failed:
                why.append(f"{r.name}: failures {failed}")
            if acc is None or not acc.holds() or acc.connections.open_now or acc.requests.open_now:
                why.append(f"{r.name}: accounting does not balance to zero open: {acc}")
        elif r.kind == "lb" and rep.pool is not None and rep.pool.in_use_end != rep.pool.in_use_start:
            why.append(f"{r.name}: pool held {rep.pool.in_use_start} at start, {rep.pool.in_use_end} at end")
    return why


def main(args) -> int:
    minutes = Minutes()
    print(f"soak: memif test3, one request per connection, {args.minutes} sustain minutes; a row per minute "
          f"of what each process holds at its last second (the minute's maximum): pool: lb buffers in use; "
          f"table: connection rows; mbufs: held by a worker; rss_mib: resident MiB", flush=True)
    result = uvloop.run(api.run(nperf_topology(False, args.minutes * MINUTE), on_second=minutes.second))
    why = verdict(result, minutes)
    if len(minutes.rows) < 2:
        why.append(f"only {len(minutes.rows)} full minute(s): growth needs two to judge")
    for r in result.client_reports():
        print(f"client: {r.connections_opened:,} connections, {r.requests_sent:,} requests, {r.responses_ok:,} ok, "
              f"{r.responses_failed:,} failed; accounting balances: {r.accounting is not None and r.accounting.holds()}")
    print("soak: pass" if not why else "soak: FAIL\n  " + "\n  ".join(why))
    return 0 if not why else 1
