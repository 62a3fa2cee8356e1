"""`nperf bench results`: what the live table, `--series` and `--metrics-port` cost at full load.

The seed's test3 topology (four processes, one request per connection) runs
as `nperf run` twice per round, alternating: (off) `--quiet`, piped; (on) on
a pseudo-terminal, so the live table draws, with `--series` to a CSV file
and `--metrics-port` scraped once a second by a thread. The figure is the
client's sustain-phase CPS from `--report`; the ratio on/off is reported
per round and as the median (this machine's rates swing between identical
runs; the target is >= 0.98).
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request

import msgspec

from nperf.bench import median_ratio
from nperf.bench.e2e import nperf_topology
from nperf.subproc import run_on_pty


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape_each_second(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        except OSError:
            pass            # not listening yet, or gone


def run_once(directory: str, outputs: bool) -> float:
    """Sustain CPS of one `nperf run` (0 if it failed)."""
    work = tempfile.mkdtemp(prefix="nperf-bench-results-")
    report = os.path.join(work, "report.json")
    argv = [sys.executable, "-m", "nperf", "run", directory, "--report", report]
    if outputs:
        port, stop = _free_port(), threading.Event()
        scraper = threading.Thread(target=_scrape_each_second, args=(port, stop), daemon=True)
        scraper.start()
        status, _ = run_on_pty(argv + ["--series", os.path.join(work, "series.csv"), "--metrics-port", str(port)],
                               timeout=600)
        stop.set()
    else:
        status = subprocess.run(argv + ["--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=600).returncode
    if status != 0 or not os.path.exists(report):
        return 0.0
    result = msgspec.json.decode(open(report, "rb").read())
    return sum(r["report"]["sustain"]["cps"] for r in result["roles"] if r["kind"] == "client")


def main(args) -> int:
    topology = nperf_topology(keepalive=False, seconds=args.seconds)
    directory = os.path.dirname(topology.roles[0].path)
    on, off = [], []
    for r in range(args.rounds):
        off.append(run_once(directory, False))
        on.append(run_once(directory, True))
        print(f"round {r + 1}: off {off[-1]:,.0f} cps, on {on[-1]:,.0f} cps, ratio {on[-1] / max(off[-1], 1):.3f}",
              flush=True)
    print(f"median off {statistics.median(off):,.0f} cps, on {statistics.median(on):,.0f} cps; "
          f"median ratio on/off {median_ratio(on, off):.3f} (target >= 0.98)")
    return 0
