"""`nperf bench dperf --dperf PATH`: nperf against baidu's dperf on the same direct memif link.

The setup is the seed's test4 shape: the client owns one memif end on CPU 0,
the server owns the other on CPU 1, no lb; 100-byte response body. Both
tools run it in turn, `--rounds` times, alternating:

(a) connections/s, one request per connection. nperf is closed-loop (1,000
    concurrent connections, a new one as soon as one ends, so it runs as
    fast as it can); dperf is open-loop (it offers a fixed `cps`), so each
    round climbs `--dperf-cps` (ascending) and keeps the highest offered
    rate it served: all of it, with no HTTP or socket error, and drops and
    retransmissions on at most one connection in a thousand offered
    (LOSS_TOLERANCE). An open-loop sender on this shared machine drops a
    burst of SYNs whenever a stall fills the memif ring, at 400k as at
    700k; demanding none made the ceiling a matter of luck (no rung was
    clean in two of three rounds). The tolerance favours dperf: nperf's
    runs are reported with their own retransmissions, which are zero.
(b) keep-alive requests/s on 1,000 connections, closed loop on both sides
    (dperf `keepalive 0us`: the next request as soon as the response is in).

Figures are medians of steady seconds: nperf's sustain-phase mean from its
report, dperf's median per-second `http2XX` over the seconds after its slow
start. The ratios nperf/dperf are printed per round and as medians.

What each side verifies differs, and the output says so: nperf checks the
IPv4 and TCP checksum of every frame it receives in software (memif has no
checksum offload) and parses every HTTP message completely; dperf trusts
the port's offload flags (none here, so it checks no checksum) and parses
only what its own server sends.

dperf is not a dependency: pass a binary that can use a vdev port. Stock
dperf only takes PCI addresses; the patch that `shared/peers/dperf-bench.sh`
applies (`port net_memif0 ...`, extra EAL arguments from DPERF_EAL_ARGS) is
what this benchmark speaks to.
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import uvloop

from nperf import api, config
from nperf.bench import median_ratio, to_ipv6
from nperf.data import SEED_TEST3
from nperf.subproc import clean_prefix

CONNECTIONS = 1000
BODY = 100
DPERF_HEADER = 85            # dperf's payload_size is its whole response: this fixed header + the body
CLIENT_CPU, SERVER_CPU = 0, 1
SERVER_MAC, CLIENT_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
DPERF_SLOW_START = 2
DPERF_DRAIN = 4              # dperf's client runs slow start + duration + this many seconds
LOSS_TOLERANCE = 0.001       # dperf's drops + retransmissions a served rung may have, per connection offered


# --- nperf ----------------------------------------------------------------

def nperf_topology(keepalive: bool, seconds: float, work: str, worker_args: list[str] = (),
                   ipv6: bool = False, tune=None) -> api.Topology:
    """test4: the seed's test3 client and server, each owning one end of a private memif (with
    `ipv6`, their addresses moved to IPv6: nperf.bench.ipv6; `tune`, if given, changes each
    worker's config: nperf.bench.https)."""
    sock = os.path.join(work, "memif.sock")
    server, _ = config.load_worker(os.path.join(SEED_TEST3, "s.json"))
    client, _ = config.load_worker(os.path.join(SEED_TEST3, "c.json"))
    for cfg, role, cpu in ((server, "server", SERVER_CPU), (client, "client", CLIENT_CPU)):
        if ipv6:
            to_ipv6(cfg)
        if tune:
            tune(cfg)
        cfg.dpdk.is_dpdk_client = 0
        cfg.dpdk.core_id = cpu
        cfg.dpdk.args = (f"--vdev=net_memif,id=0,role={role},socket={sock},socket-abstract=no "
                         f"--in-memory -m 256 --file-prefix=nperf_bench_{role[0]}_{os.getpid()}")
    server.http_config.paths = [p for p in server.http_config.paths if p.path == "/hello"]
    assert server.http_config.paths[0].response_body_size == BODY
    sched = client.scheduler
    sched.prepare_duration_sec, sched.ramp_up_duration_sec, sched.sustain_duration_sec = 2, 1, seconds
    sched.ramp_down_duration_sec, sched.close_duration_sec = 0, 1
    client.objective.value = CONNECTIONS
    client.objective.requests_per_connection = 10_000_000 if keepalive else 1
    topology = api.Topology.from_configs(servers={"s": server}, clients={"c": client})
    for r in topology.roles:
        r.args += list(worker_args)
    return topology


def nperf_rate(keepalive: bool, seconds: float, worker_args: list[str] = (), ipv6: bool = False,
               tune=None) -> tuple[float, str]:
    work = tempfile.mkdtemp(prefix="nperf-bench-dperf-")
    try:
        result = uvloop.run(api.run(nperf_topology(keepalive, seconds, work, worker_args, ipv6, tune)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reps = result.client_reports()
    if not reps or not result.ok:
        return 0.0, "FAILED: " + ", ".join(f"{r.name} status {r.status}" for r in result.roles)
    rep = reps[0]
    server = next((r for r in result.roles if r.kind == "server" and r.report is not None), None)
    retrans = rep.counters.get("tcp_retransmits", 0) + (server.report.counters.get("tcp_retransmits", 0)
                                                        if server else 0)
    busy = [s["busy"] for s in rep.per_second if s.get("phase") == "sustain" and "busy" in s]
    sbusy = _loaded_busy(server.per_second, "rps" if keepalive else "cps") if server else []
    value = rep.sustain.rps if keepalive else rep.sustain.cps
    note = (f"{rep.responses_failed} failed, {retrans} retransmissions, p99 {rep.latency_ms.p99:.2f} ms"
            + (f", busy client {statistics.median(busy):.0%}" if busy else "")
            + (f" server {statistics.median(sbusy):.0%}" if sbusy else ""))
    return value, note


def _loaded_busy(seconds: list[dict], rate: str) -> list[float]:
    """The busy share of a role's seconds under load (its rate at least half its best second)."""
    top = max((float(s.get(rate, 0)) for s in seconds), default=0.0)
    return [float(s["busy"]) for s in seconds if "busy" in s and float(s.get(rate, 0)) >= top / 2 > 0]


# --- dperf ----------------------------------------------------------------

def _dperf_conf(mode: str, keepalive: bool, seconds: int, cps: int, nips: int) -> str:
    lines = [f"mode {mode}", f"cpu {CLIENT_CPU if mode == 'client' else SERVER_CPU}", "protocol http"]
    if mode == "server":
        lines += [f"duration {seconds + DPERF_SLOW_START + 60}s", f"payload_size {DPERF_HEADER + BODY}",
                  f"port net_memif0 10.0.0.1 10.0.0.2 {CLIENT_MAC}"]
    else:
        lines += [f"duration {seconds}s", f"slow_start {DPERF_SLOW_START}", "wait 1", f"cps {cps}",
                  f"port net_memif0 10.0.0.2 10.0.0.1 {SERVER_MAC}"]
        if keepalive:
            lines.append(f"cc {CONNECTIONS}")
    if keepalive:
        lines.append("keepalive 0us")
    lines += [f"client 10.0.0.2 {nips}", "server 10.0.0.1 1", "listen 80 1"]
    return "\n".join(lines) + "\n"


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RETRANS = ("synRt", "finRt", "ackRt", "pushRt")
ERRORS = ("skErr", "httpErr")
DROPS = ("dropTx", "tcpDrop", "ierrors", "oerrors", "imissed")


def parse_dperf(text: str) -> tuple[list[dict], dict]:
    """dperf's output: (per-second dicts, the final 'Total Numbers' dict, {} if absent)."""
    seconds, total, cur = [], {}, None
    for line in ANSI.sub("", text).splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "seconds" and len(words) > 1 and words[1].isdigit():
            cur = {"second": int(words[1])}
            seconds.append(cur)
            words = words[2:]
        elif line.startswith("Total Numbers"):
            cur = total
            continue
        if cur is None:
            continue
        for key, value in zip(words[0::2], words[1::2]):
            try:
                cur[key] = float(value.replace(",", ""))
            except ValueError:
                pass
    return seconds, total


class Dperf:
    """One dperf server and client pair over a private memif socket, as --in-memory primaries."""

    def __init__(self, binary: str):
        self.binary = binary

    def _start(self, work: str, mode: str, conf: str, env_args: str) -> subprocess.Popen:
        path = os.path.join(work, f"{mode}.conf")
        with open(path, "w") as f:
            f.write(conf)
        log = open(os.path.join(work, f"{mode}.log"), "w")
        env = dict(os.environ, DPERF_EAL_ARGS=env_args)
        return subprocess.Popen([self.binary, "-c", path], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)

    def run(self, keepalive: bool, seconds: int, cps: int) -> dict:
        """One run; returns rate (median steady 2xx/s), retrans, errors, drops, busy (client cpu)."""
        work = tempfile.mkdtemp(prefix="nperf-dperf-")
        sock = os.path.join(work, "memif.sock")
        need = max(CONNECTIONS, cps * 2)                         # dperf wants sockets >= cps x 2 s
        nips = min(max((need * 5 // 4 + 65534) // 65535, 1), 200)
        procs = []
        try:
            memif = f"socket={sock},socket-abstract=no,id=0"
            srv = self._start(work, "server", _dperf_conf("server", keepalive, seconds, cps, nips),
                              f"--in-memory --file-prefix=dperf_s_{os.getpid()} --no-pci "
                              f"--vdev=net_memif0,role=server,{memif},mac={SERVER_MAC}")
            procs.append(srv)
            deadline = time.monotonic() + 20
            while not (os.path.exists(sock) and "seconds" in open(os.path.join(work, "server.log")).read()):
                if srv.poll() is not None or time.monotonic() > deadline:
                    return {"error": "dperf server did not start: " + open(os.path.join(work, "server.log")).read()[-400:]}
                time.sleep(0.1)
            cli = self._start(work, "client", _dperf_conf("client", keepalive, seconds, cps, nips),
                              f"--in-memory --file-prefix=dperf_c_{os.getpid()} --no-pci "
                              f"--vdev=net_memif0,role=client,{memif},mac={CLIENT_MAC}")
            procs.append(cli)
            try:
                cli.wait(timeout=DPERF_SLOW_START + seconds + DPERF_DRAIN + 30)
            except subprocess.TimeoutExpired:
                pass
        finally:
            for p in reversed(procs):
                _stop(p)
            for prefix in (f"dperf_s_{os.getpid()}", f"dperf_c_{os.getpid()}"):
                clean_prefix(prefix)          # dperf leaves its runtime directory, even --in-memory
        csecs, ctotal = parse_dperf(open(os.path.join(work, "client.log"), errors="replace").read())
        _, stotal = parse_dperf(open(os.path.join(work, "server.log"), errors="replace").read())
        shutil.rmtree(work, ignore_errors=True)
        first, last = DPERF_SLOW_START + 1, DPERF_SLOW_START + seconds - 2      # whole seconds of the duration
        steady = [s for s in csecs if first <= s["second"] <= last and "http2XX" in s]
        if not steady or not ctotal:
            return {"error": "dperf printed no steady seconds or totals"}
        both = (ctotal, stotal)
        return {"rate": statistics.median(s["http2XX"] for s in steady),
                "retrans": int(sum(t.get(k, 0) for t in both for k in RETRANS)),
                "errors": int(sum(t.get(k, 0) for t in both for k in ERRORS)),
                "drops": int(sum(t.get(k, 0) for t in both for k in DROPS)),
                "busy": statistics.median(s.get("cpuUsage", 0) for s in steady) / 100}


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def served(r: dict, offered: int, seconds: int) -> bool:
    """dperf served the offered rate: all of it, no error, losses within LOSS_TOLERANCE."""
    return r["errors"] == 0 and r["rate"] >= 0.99 * offered \
        and r["drops"] + r["retrans"] <= LOSS_TOLERANCE * offered * seconds


def dperf_cps(d: Dperf, seconds: int, ladder: list[int]) -> tuple[float, str]:
    """The highest offered rate of the ladder dperf served, and what it did at each."""
    best, notes = 0.0, []
    for offered in ladder:
        r = d.run(False, seconds, offered)
        if "error" in r:
            notes.append(f"{offered:,}: {r['error']}")
            break
        ok = served(r, offered, seconds)
        notes.append(f"{offered:,} offered: {r['rate']:,.0f}/s, {r['retrans']} retrans, {r['errors']} errors, "
                     f"{r['drops']} drops, client busy {r['busy']:.0%}{'' if ok else ' (not served)'}")
        if not ok:
            break
        best = r["rate"]
    return best, "; ".join(notes)


def dperf_rps(d: Dperf, seconds: int) -> tuple[float, str]:
    r = d.run(True, seconds, CONNECTIONS)
    if "error" in r:
        return 0.0, r["error"]
    return r["rate"], (f"{r['retrans']} retrans, {r['errors']} errors, {r['drops']} drops, "
                       f"client busy {r['busy']:.0%}")


def _rates(text: str) -> list[int]:
    out = []
    for word in text.split(","):
        word = word.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(word[-1:], 1)
        out.append(int(float(word.rstrip("km")) * scale))
    return sorted(out)


def main(args) -> int:
    if not args.dperf or not os.access(args.dperf, os.X_OK):
        print("error: nperf bench dperf needs --dperf PATH, a dperf binary that takes a vdev port "
              "(see the module docstring)")
        return 2
    secs = max(int(args.seconds), 5)
    ladder = _rates(args.dperf_cps)
    d = Dperf(args.dperf)
    worker_args = args.worker_args.split()
    print(f"nperf bench dperf: direct memif, client CPU {CLIENT_CPU}, server CPU {SERVER_CPU}, {BODY}-byte body, "
          f"{CONNECTIONS} connections, {secs} s per run, {args.rounds} rounds, nperf roles with "
          f"{' '.join(worker_args) or 'default options (TCP timestamps on: dperf sends none)'}")
    print("verifies: nperf checks every received frame's IPv4 and TCP checksum in software and parses every HTTP "
          "message; dperf checks no checksum on this port (no offload flags) and parses only its own responses")
    rows = {k: [] for k in ("nperf_cps", "dperf_cps", "nperf_rps", "dperf_rps")}
    for r in range(1, args.rounds + 1):
        for key, run in (("nperf_cps", lambda: nperf_rate(False, secs, worker_args)),
                         ("dperf_cps", lambda: dperf_cps(d, secs, ladder)),
                         ("nperf_rps", lambda: nperf_rate(True, secs, worker_args)),
                         ("dperf_rps", lambda: dperf_rps(d, secs))):
            value, note = run()
            rows[key].append(value)
            print(f"round {r} {key}: {value:,.0f} ({note})", flush=True)
    for key, values in rows.items():
        print(f"{key}: median {statistics.median(values):,.0f} over {len(values)} rounds")
    for what, ours, peer in (("connections/s", "nperf_cps", "dperf_cps"),
                             ("keep-alive requests/s", "nperf_rps", "dperf_rps")):
        if any(rows[peer]):
            print(f"{what} nperf/dperf: median ratio {median_ratio(rows[ours], rows[peer]):.2f} (target >= 1.0; "
                  f"the {sum(1 for v in rows[peer] if v > 0)} rounds with a dperf figure)")
        else:
            print(f"{what}: dperf served no rate, no ratio (for connections/s: lower --dperf-cps)")
    print(json.dumps(rows))
    return 0
