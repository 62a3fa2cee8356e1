"""`nperf bench e2e`: nperf's test3 topology against wrk and nginx on loopback, in one run.

(a) nperf CPS: the seed's memif test3 topology (client → lb_c ⇄ memif ⇄ lb_s
    → server, four processes), one request per connection, 100-byte body;
(b) nperf keep-alive RPS: the same topology, connections kept for the run;
(c) wrk → nginx on 127.0.0.1 with `Connection: close`, same body size;
(d) wrk → nginx keep-alive.
Each figure is the mean of a run's sustain seconds (nperf) or wrk's
Requests/sec. nperf and its peer alternate, `--rounds` times, and the ratios
a/c and b/d are reported per round and as medians: this machine's rates swing
by several times between identical runs.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

import uvloop

from nperf import api, config
from nperf.bench import median_ratio
from nperf.data import SEED_TEST3

BODY = b"b" * 99 + b"\n"
CONNECTIONS = 1000          # the seed's objective value; wrk gets as many
WRK_THREADS = 2


def nperf_topology(keepalive: bool, seconds: float) -> api.Topology:
    files = {os.path.splitext(f)[0]: os.path.join(SEED_TEST3, f) for f in os.listdir(SEED_TEST3) if f.endswith(".json")}
    lbs = {k: config.load_lb(p)[0] for k, p in files.items() if k.startswith("lb")}
    server, _ = config.load_worker(files["s"])
    client, _ = config.load_worker(files["c"])
    client.scheduler.prepare_duration_sec, client.scheduler.ramp_up_duration_sec = 2, 1
    client.scheduler.sustain_duration_sec, client.scheduler.ramp_down_duration_sec = seconds, 0
    client.scheduler.close_duration_sec = 1
    client.objective.value = CONNECTIONS
    client.objective.requests_per_connection = 10_000_000 if keepalive else 1
    return api.Topology.from_configs(lbs=lbs, servers={"s": server}, clients={"c": client})


def nperf_rate(keepalive: bool, seconds: float) -> tuple[float, str]:
    result = uvloop.run(api.run(nperf_topology(keepalive, seconds)))
    rep = result.client_reports()[0] if result.client_reports() else None
    if rep is None or not result.ok:
        return 0.0, "FAILED: " + ", ".join(f"{r.name} status {r.status}" for r in result.roles)
    value = rep.sustain.rps if keepalive else rep.sustain.cps
    return value, f"{rep.responses_failed} failed, p99 {rep.latency_ms.p99:.2f} ms"


class Nginx:
    """nginx on 127.0.0.1:<port> serving BODY, one worker per CPU (`worker_processes auto`), or one
    worker on CPU `cpu`. With `tls` (certificate, key, resume): https only, TLS 1.3, and resumption
    by ticket and session cache if `resume`, else none at all (every handshake in full)."""

    def __init__(self, port: int = 18080, tls: tuple[str, str, bool] | None = None, cpu: int | None = None):
        self.dir = tempfile.mkdtemp(prefix="nperf-nginx-")
        self.port = port
        os.makedirs(os.path.join(self.dir, "www"))
        with open(os.path.join(self.dir, "www", "hello"), "wb") as f:
            f.write(BODY)
        conf = os.path.join(self.dir, "nginx.conf")
        d = self.dir
        workers = "auto" if cpu is None else f"1; worker_cpu_affinity {1 << cpu:b}"
        listen = f"listen 127.0.0.1:{port};"
        if tls:
            cert, key, resume = tls
            listen = (f"listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key}; "
                      f"ssl_protocols TLSv1.3; ssl_session_tickets {'on' if resume else 'off'}; "
                      f"ssl_session_cache {'shared:bench:10m' if resume else 'off'};")
        with open(conf, "w") as f:
            f.write(f"daemon off; worker_processes {workers}; pid {d}/pid; error_log {d}/error.log;\n"
                    "events { worker_connections 4096; }\n"
                    f"http {{ access_log off; keepalive_requests 10000000; client_body_temp_path {d}; "
                    f"proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n"
                    f"  server {{ {listen} root {d}/www; }} }}\n")
        self.proc = subprocess.Popen(["nginx", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk_rate(port: int, keepalive: bool, seconds: float, https: bool = False,
             cpu: int | None = None) -> tuple[float, str]:
    """wrk's requests/s against 127.0.0.1:port/hello (pinned to `cpu` with one thread, if given)."""
    extra = [] if keepalive else ["-H", "Connection: close"]
    pin = [] if cpu is None else ["taskset", "-c", str(cpu)]
    threads = WRK_THREADS if cpu is None else 1
    r = subprocess.run([*pin, "wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", *extra,
                        f"http{'s' if https else ''}://127.0.0.1:{port}/hello"], capture_output=True, text=True,
                       timeout=seconds + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    errors = re.search(r"Socket errors: .*|Non-2xx or 3xx responses: \d+", r.stdout)
    return (float(m.group(1)) if m else 0.0), (errors.group(0) if errors else "no errors")


def main(args) -> int:
    secs = args.seconds
    nginx = Nginx()
    rows = {k: [] for k in "abcd"}
    try:
        for r in range(args.rounds):
            for key, keepalive in (("a", False), ("c", False), ("b", True), ("d", True)):
                value, note = nperf_rate(keepalive, secs) if key in "ab" else wrk_rate(nginx.port, keepalive, secs)
                rows[key].append(value)
                print(f"round {r + 1} ({key}) {LABELS[key]}: {value:,.0f} ({note})", flush=True)
    finally:
        nginx.close()
    for key in "abcd":
        print(f"({key}) {LABELS[key]}: median {statistics.median(rows[key]):,.0f} over {len(rows[key])} runs")
    print(f"a/c (connections/s): median ratio {median_ratio(rows['a'], rows['c']):.2f} (target >= 5)")
    print(f"b/d (keep-alive requests/s): median ratio {median_ratio(rows['b'], rows['d']):.2f} (target >= 5)")
    print(json.dumps({"nperf_cps": rows["a"], "nperf_rps": rows["b"], "wrk_nginx_cps": rows["c"],
                      "wrk_nginx_rps": rows["d"]}))
    return 0


LABELS = {"a": "nperf test3 connections/s (1 request each, 100 B body)",
          "b": "nperf test3 keep-alive requests/s",
          "c": "wrk -> nginx loopback connections/s (Connection: close)",
          "d": "wrk -> nginx loopback keep-alive requests/s"}
