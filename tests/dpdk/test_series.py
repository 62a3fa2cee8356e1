"""`--series`: every role's per-second figures in a file, the same as over IPC and in the report."""
import csv
import json
import re
import subprocess
import sys

import pytest

from tests.dpdk.test_run_topologies import nperf_run
from tests.topologies import SHORT, copy_topology

NUM = r"([\d,]+)"
LINES = {   # what each role's printed line says, as regexes over its figures
    "client": re.compile(rf"^\[(client \w+)\] \[ *(\d+)s\] (\S+) \(target {NUM}\)  conc {NUM}  cps {NUM}  "
                         rf"closes/s {NUM}  rps {NUM}  .*  ok {NUM}  fail {NUM}"),
    "server": re.compile(rf"^\[(server \w+)\] \[ *(\d+)s\] conns {NUM}  cps {NUM}  closes/s {NUM}  rps {NUM}"),
    "lb": re.compile(rf"^\[(lb \w+)\] \[ *(\d+)s\] link (up|down)  rx {NUM} pkt/s .*  tx {NUM} pkt/s"),
}
FIELDS = {"client": ("phase", "target", "conc", "cps", "closes", "rps", "ok", "fail"),
          "server": ("conns", "cps", "closes", "rps"), "lb": ("link", "rx_pps", "tx_pps")}


def printed(stdout: str) -> dict[tuple[str, int], dict]:
    """(role, second) -> the figures of its printed line (the IPC Second's line)."""
    out = {}
    for line in stdout.splitlines():
        for kind, rx in LINES.items():
            if m := rx.match(line):
                values = [v if v in ("up", "down") or not v.replace(",", "").isdigit() else int(v.replace(",", ""))
                          for v in m.groups()[2:]]
                row = dict(zip(FIELDS[kind], values))
                if kind == "lb":
                    row["link"] = int(row["link"] == "up")
                out[(m.group(1), int(m.group(2)))] = row
    return out


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: (v if k in ("role", "phase") else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]


def test_series_csv_of_a_four_process_run_agrees_with_ipc_and_the_report(session):
    d = copy_topology(session, "memif/test3", phases=SHORT)
    series = session.path("series.csv")
    r, rep = nperf_run(session, d, "--series", series)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    rows = read_csv(series)
    lines = printed(r.stdout)
    names = {"lb lb_s", "lb lb_c", "server s", "client c"}
    assert {name for name, _ in lines} == names
    # one row per role per second, and one printed line for each
    assert sorted((row["role"], int(row["elapsed"])) for row in rows) == sorted(lines)
    for row in rows:
        want = lines[(row["role"], int(row["elapsed"]))]
        assert {k: row[k] for k in want} == want, (row, want)
    # the rows are the IPC figures the report keeps, every field, exactly
    for role in rep["roles"]:
        mine = [{k: v for k, v in row.items() if k != "role"} for row in rows if row["role"] == role["name"]]
        assert mine == role["per_second"]
    # the union of columns: every role's fields, role and elapsed first
    header = open(series).readline().strip().split(",")
    assert header[:2] == ["role", "elapsed"] and {"cps", "phase", "rx_pps", "conns", "drop_no_worker"} <= set(header)
    # sustain averages x seconds = sums over the sustain seconds
    client = next(x["report"] for x in rep["roles"] if x["name"] == "client c")
    sustain = [row for row in rows if row["role"] == "client c" and row["phase"] == "sustain"]
    assert len(sustain) >= 3
    for field in ("cps", "rps", "tx_mbps", "rx_mbps"):
        assert sum(row[field] for row in sustain) == pytest.approx(client["sustain"][field] * len(sustain), rel=1e-12)
    assert client["sustain"]["cps"] * len(sustain) == sum(row["cps"] for row in sustain)

    # and `nperf report --html` of this run holds the client's series
    html = session.path("run.html")
    rr = subprocess.run([sys.executable, "-m", "nperf", "report", session.path("run_report.json"), "--html", html],
                        capture_output=True, text=True, timeout=300)
    assert rr.returncode == 0, rr.stderr
    cps = [row["cps"] for row in rows if row["role"] == "client c"]
    assert '"name":"client c CPS","x":[%s],"y":[%s]' % (",".join(str(i + 1) for i in range(len(cps))),
                                                       ",".join(json.dumps(v) for v in cps)) in open(html).read()


def test_series_of_roles_run_alone_as_json_lines(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    srv_series, cli_series, cli_report = (session.path(n) for n in ("s.jsonl", "c.json", "c_report.json"))
    server = session.nperf("server", f"{d}/s.json", "--series", srv_series, name="server")
    server.wait_for(r"ready", timeout=300)
    client = session.nperf("client", f"{d}/c.json", "--series", cli_series, "--report", cli_report, name="client")
    client.wait_for(r"stopped:", timeout=120)
    assert client.p.wait(30) == 0, client.text()
    assert server.stop() == 0, server.text()
    report = json.load(open(cli_report))
    rows = [json.loads(line) for line in open(cli_series)]
    assert [row["elapsed"] for row in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 9
    assert [{k: v for k, v in row.items() if k not in ("role", "elapsed")} for row in rows] == report["per_second"]
    assert {row["role"] for row in rows} == {"client c"}
    lines = printed("\n".join(client.lines))
    assert {n for _, n in lines} == {row["elapsed"] for row in rows}
    for row in rows:
        assert {k: row[k] for k in FIELDS["client"]} == lines[("client c", row["elapsed"])]
    srv_rows = [json.loads(line) for line in open(srv_series)]
    srv_lines = printed("\n".join(server.lines))
    assert len(srv_rows) == len(srv_lines) >= 9
    for row in srv_rows:
        assert {k: row[k] for k in FIELDS["server"]} == srv_lines[("server s", row["elapsed"])]
    assert sum(row["cps"] for row in srv_rows) == report["counters"]["conn_opened"]


def test_unknown_series_extension_is_refused_before_anything_starts(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    for argv in (["run", d], ["client", f"{d}/c.json"], ["lb", "tests/seed_configs/memif/test3/lb_s.json"]):
        r = subprocess.run([sys.executable, "-m", "nperf", *argv, "--series", session.path("x.txt")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "unknown extension '.txt'; use .csv, .jsonl or .json" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
