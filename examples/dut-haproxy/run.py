"""nperf load-testing haproxy, a real device under test: nperf's figures beside haproxy's own.

    python examples/dut-haproxy/run.py [--mode http|tcp] [--duration S] [--requests-per-connection N]
                                       [--concurrency N] [--client nperf|wrk] [--json OUT]
                                       [--generator-cpu N] [--haproxy-cpu N]

Inside a network namespace of its own (deleted at the end), an nperf client
on TAP port npdut0 opens connections to haproxy on 10.78.0.1:8088 (the
kernel side), and haproxy forwards them from 10.79.0.1 to an nperf server on
TAP port npdut1 (10.79.0.10:80): `nperf run` of this directory (c.json,
s.json) with haproxy, one thread, in between. Afterwards it prints nperf's
counts beside haproxy's (its stats socket, `show stat`), checks that they
agree exactly, and names the side that was the limit by busy share: the
nperf roles' poll-loop busy share, and haproxy's CPU time per second.

The exit status is 0 only when the run passed and every count agrees.

With `--client wrk` the same haproxy and nperf server are loaded by wrk
(one thread, the client's concurrency) instead, for the side-by-side
benchmark: requests/s, haproxy's CPU share, and the generator's CPU share
(wrk's CPU time; for nperf, its poll loop's busy share).

`--generator-cpu` and `--haproxy-cpu` place the sides for the co-location
measurement: the generator (both nperf roles, or wrk and the nperf server)
on one CPU, haproxy pinned to the same CPU or another. Without them the
nperf roles run on their files' cores (0 and 1) and haproxy where Linux puts
it. Sharing a CPU with a busy device is fair only if nperf's idle poll loops
back off: compare haproxy's rate pinned away from the generator with its
rate on the generator's CPU.

haproxy's addresses sit on the namespace's loopback, so haproxy listens
before nperf's ports exist and no connection meets a closed port; routes to
the TAP ports are added as each port appears.
"""
import argparse
import csv
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FRONTEND, BACKEND_SOURCE, SERVER = "10.78.0.1", "10.79.0.1", "10.79.0.10"
PORTS = {"npdut0": "10.78.0.0/24 src " + FRONTEND, "npdut1": "10.79.0.0/24 src " + BACKEND_SOURCE}
BUSY_LIMIT = 0.9          # a side busier than this was the limit of the run
# A connection that the client closes before sending its request (one opened
# as the close phase begins) is, by default, a failed request to haproxy: a
# 400 counted in req_tot. http-ignore-probes leaves it out of req_tot (it
# still counts in stot, as in nperf's connections_opened), so req_tot
# counts the requests nperf sent.
FRONTEND_OPTIONS = {"http": "\n    option http-ignore-probes", "tcp": ""}

HAPROXY_CFG = """global
    nbthread 1
    maxconn 8000
    stats socket {sock} mode 600 level admin
defaults
    mode {mode}
    maxconn 8000
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind {frontend}:8088{frontend_options}
    default_backend be
backend be
    server s1 {server}:80 source {source}
"""


class Namespace:
    def __init__(self):
        self.name = f"npdut{os.getpid()}"
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "netns", "add", self.name], check=True)

    def argv(self, *argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def ip(self, *args, check=True):
        return subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True, check=check)

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def haproxy_stats(sock_path: str) -> dict[str, dict[str, str]]:
    """`show stat` from haproxy's socket: rows by "FRONTEND" / "BACKEND" (svname) of fe/be."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    text = data.decode().lstrip("# ")
    return {row["svname"]: row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] in ("fe", "be")}


class CpuSampler(threading.Thread):
    """haproxy's CPU share (user + system time per wall second), one sample a second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.shares, self.done = pid, [], threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def _cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick

    def run(self):
        try:
            prev, t0 = self._cpu(), time.monotonic()
            while not self.done.wait(1.0):
                cpu, t = self._cpu(), time.monotonic()
                self.shares.append((cpu - prev) / (t - t0))
                prev, t0 = cpu, t
        except (FileNotFoundError, ProcessLookupError):
            pass

    def busy(self, seconds: int) -> float:
        """The median share over the `seconds` busiest seconds (the sustain phase's length)."""
        top = sorted(self.shares)[-seconds:]
        return statistics.median(top) if top else 0.0


def route_ports(ns: Namespace, stop: threading.Event) -> None:
    """Bring each TAP port up and route its subnet as soon as nperf creates it."""
    pending = dict(PORTS)
    while pending and not stop.wait(0.05):
        for port in list(pending):
            if ns.ip("link", "show", port, check=False).returncode == 0:
                ns.ip("link", "set", port, "up")
                ns.ip("route", "add", *pending.pop(port).split(), "dev", port)


def topology(run: str, rpc: int | None, duration: float | None, concurrency: int | None,
             cpu: int | None) -> str:
    """This directory's c.json and s.json, copied into `run` with the changes asked for."""
    out = os.path.join(run, "topology")
    os.makedirs(out)
    for name in ("c.json", "s.json"):
        with open(os.path.join(HERE, name)) as f:
            cfg = json.load(f)
        if rpc:
            cfg["objective"]["requests_per_connection"] = rpc
        if concurrency and name == "c.json":
            cfg["objective"]["value"] = concurrency
        if duration:
            cfg["scheduler"]["sustain_duration_sec"] = int(duration)
        if cpu is not None:
            cfg["dpdk"]["core_id"] = cpu
        with open(os.path.join(out, name), "w") as f:
            json.dump(cfg, f)
    return out


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    """`argv` run on CPU `cpu` (taskset), or unpinned."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def run_wrk(ns: Namespace, cfg: dict, seconds: int, cpu: int | None) -> tuple[dict, float]:
    """wrk against haproxy with the client file's concurrency: its figures and its CPU share."""
    conns = cfg["objective"]["value"]
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if cfg["objective"]["requests_per_connection"] == 1:
        argv += ["-H", "Connection: close"]
    url = f"http://{FRONTEND}:8088{cfg['http_config']['paths'][0]['path']}"
    wrk = subprocess.Popen(ns.argv(*pinned(argv, cpu), url), stdout=subprocess.PIPE, text=True)
    sampler = CpuSampler(wrk.pid)
    sampler.start()
    out = wrk.communicate(timeout=seconds + 60)[0]
    sampler.done.set()
    figures = {"output": out}
    for line in out.splitlines():
        words = line.split()
        if line.strip().startswith("Requests/sec:"):
            figures["rps"] = float(words[1])
        elif "requests in" in line:
            figures["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx") or line.strip().startswith("Socket errors"):
            figures[words[0]] = line.strip()
    return figures, sampler.busy(seconds)


def median_busy(result: dict, kind: str) -> float:
    """A role's median poll-loop busy share over the client's sustain seconds."""
    client = next(r for r in result["roles"] if r["kind"] == "client")
    sustain = {s["elapsed"] for s in client["per_second"] if s.get("phase") == "sustain"}
    role = next(r for r in result["roles"] if r["kind"] == kind)
    shares = [s["busy"] for s in role["per_second"] if s["elapsed"] in sustain and "busy" in s]
    return statistics.median(shares) if shares else 0.0


def compare(mode: str, result: dict, stats: dict) -> list[tuple[str, int, str, int]]:
    """(nperf figure, value, haproxy figure, value) pairs that must be equal."""
    client = next(r["report"] for r in result["roles"] if r["kind"] == "client")
    server = next(r["report"] for r in result["roles"] if r["kind"] == "server")
    fe, be = stats["FRONTEND"], stats["BACKEND"]
    pairs = [("client connections_opened", client["connections_opened"], "frontend stot", int(fe["stot"])),
             ("server conn_opened", server["counters"]["conn_opened"], "backend connect", int(be["connect"]))]
    if mode == "http":
        pairs += [("client requests_sent", client["requests_sent"], "frontend req_tot", int(fe["req_tot"])),
                  ("client responses_ok", client["responses_ok"], "backend hrsp_2xx", int(be["hrsp_2xx"])),
                  ("server requests", server["http"]["requests"], "backend hrsp_2xx", int(be["hrsp_2xx"]))]
    else:
        pairs += [("client connections_opened", client["connections_opened"], "backend stot", int(be["stot"])),
                  ("client responses_ok", client["responses_ok"], "server requests", server["http"]["requests"])]
    return pairs


def limit(busy: dict[str, float]) -> str:
    side, share = max(busy.items(), key=lambda kv: kv[1])
    if share >= BUSY_LIMIT:
        return f"{side} was the limit ({share:.0%} busy)"
    return f"no side was saturated (busiest: {side}, {share:.0%}): the offered load was the limit"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("http", "tcp"), default="http")
    ap.add_argument("--duration", type=float, help="sustain seconds (default: c.json's)")
    ap.add_argument("--requests-per-connection", type=int, help="default: c.json's (1)")
    ap.add_argument("--concurrency", type=int, help="connections open at once (default: c.json's 32)")
    ap.add_argument("--client", choices=("nperf", "wrk"), default="nperf")
    ap.add_argument("--json", help="write nperf's run report with haproxy's figures and the checks here")
    ap.add_argument("--generator-cpu", type=int, help="the CPU of both nperf roles (and of wrk)")
    ap.add_argument("--haproxy-cpu", type=int, help="the CPU haproxy is pinned to (default: unpinned)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run.py needs root (network namespace, TAP ports, hugepages)")
    run = tempfile.mkdtemp(prefix="npdut")
    sock, report = os.path.join(run, "haproxy.sock"), os.path.join(run, "run.json")
    with open(os.path.join(run, "haproxy.cfg"), "w") as f:
        f.write(HAPROXY_CFG.format(sock=sock, mode=args.mode, frontend=FRONTEND, server=SERVER,
                                   source=BACKEND_SOURCE, frontend_options=FRONTEND_OPTIONS[args.mode]))
    where = topology(run, args.requests_per_connection, args.duration, args.concurrency, args.generator_cpu)
    with open(os.path.join(where, "c.json")) as f:
        client_cfg = json.load(f)
    sustain = client_cfg["scheduler"]["sustain_duration_sec"]
    ns, stop, procs = Namespace(), threading.Event(), []
    try:
        ns.ip("link", "set", "lo", "up")
        for addr in (FRONTEND, BACKEND_SOURCE):
            ns.ip("addr", "add", f"{addr}/32", "dev", "lo")
        subprocess.run(ns.argv("sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"), check=True)
        haproxy = subprocess.Popen(ns.argv(*pinned(["haproxy", "-db", "-f", os.path.join(run, "haproxy.cfg")],
                                                   args.haproxy_cpu)))
        procs.append(haproxy)
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        else:
            sys.exit("haproxy did not start (no stats socket)")
        sampler = CpuSampler(haproxy.pid)
        sampler.start()
        threading.Thread(target=route_ports, args=(ns, stop), daemon=True).start()
        if args.client == "wrk":
            return _with_wrk(ns, procs, where, report, client_cfg, sustain, sampler, sock, args)
        nperf = subprocess.Popen(ns.argv(sys.executable, "-m", "nperf", "run", where, "--report", report), cwd="/")
        procs.append(nperf)
        status = nperf.wait()
        stats = haproxy_stats(sock)
        sampler.done.set()
        if not os.path.exists(report):
            print(f"nperf run wrote no report (status {status})")
            return 1
        with open(report) as f:
            result = json.load(f)
        busy = {"nperf client": median_busy(result, "client"), "nperf server": median_busy(result, "server"),
                "haproxy": sampler.busy(sustain)}
        pairs = compare(args.mode, result, stats)
        print(f"\nhaproxy mode {args.mode}: nperf against haproxy's own statistics")
        agree = True
        for ours, a, theirs, b in pairs:
            same = a == b
            agree &= same
            print(f"  {ours:28} {a:>10}   {theirs:18} {b:>10}   {'ok' if same else 'DIFFERENT'}")
        client = next(r["report"] for r in result["roles"] if r["kind"] == "client")
        print(f"  sustain: {client['sustain']['cps']:,.0f} connections/s, {client['sustain']['rps']:,.0f} requests/s")
        print("  busy: " + ", ".join(f"{k} {v:.0%}" for k, v in busy.items()))
        print("  " + limit(busy))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"mode": args.mode, "nperf": result, "haproxy": stats, "busy": busy,
                           "checks": [{"nperf": o, "value": a, "haproxy": t, "haproxy_value": b}
                                      for o, a, t, b in pairs], "agree": agree}, f, indent=1)
        return 0 if status == 0 and agree else 1
    finally:
        stop.set()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        ns.close()
        subprocess.run(["rm", "-rf", run])


def _with_wrk(ns, procs, where, report, client_cfg, sustain, sampler, sock, args) -> int:
    """wrk as the client: an nperf server alone behind haproxy, then wrk for `sustain` seconds."""
    server = subprocess.Popen(ns.argv(sys.executable, "-m", "nperf", "server", os.path.join(where, "s.json"),
                                      "--report", report), cwd="/", stdout=subprocess.PIPE, text=True)
    procs.append(server)
    for line in server.stdout:
        print(line, end="")
        if "] ready" in line:
            break
    else:
        print("the nperf server did not start")
        return 1
    threading.Thread(target=lambda: [print(x, end="") for x in server.stdout], daemon=True).start()
    time.sleep(1.0)                          # ARP and the routes settle
    figures, wrk_busy = run_wrk(ns, client_cfg, sustain, args.generator_cpu)
    stats = haproxy_stats(sock)
    sampler.done.set()
    server.send_signal(signal.SIGINT)
    server.wait(60)
    busy = {"wrk": wrk_busy, "haproxy": sampler.busy(sustain)}
    print(figures["output"])
    print(f"haproxy mode {args.mode}: wrk {figures.get('rps', 0):,.0f} requests/s; haproxy frontend "
          f"{fe_count(stats, 'stot')} sessions, {fe_count(stats, 'req_tot')} requests")
    print("  busy: " + ", ".join(f"{k} {v:.0%}" for k, v in busy.items()))
    print("  " + limit(busy))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "wrk": figures, "haproxy": stats, "busy": busy}, f, indent=1)
    return 0 if "rps" in figures else 1


def fe_count(stats: dict, field: str) -> int:
    return int(stats["FRONTEND"][field] or 0)


if __name__ == "__main__":
    sys.exit(main())
