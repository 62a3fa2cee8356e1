"""`--metrics-port`: Prometheus /metrics during a real run, scraped over HTTP and parsed."""
import json
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.topologies import SHORT, copy_topology


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple, float] | None:
    """{(sample name, sorted labels): value}, or None while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
    except (ConnectionError, urllib.error.URLError):
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples, name, role, default=None, **labels):
    key = (name, tuple(sorted({"role": role, "kind": role.split()[0], **labels}.items())))
    return samples[key] if default is None else samples.get(key, default)


def growing(samples: dict) -> dict:
    """The samples that may only grow: counters and histogram buckets, counts and sums."""
    return {k: v for k, v in samples.items() if k[0].endswith(("_total", "_bucket", "_count", "_sum"))}


def test_scrapes_during_a_run_only_grow_and_the_last_agrees_with_the_report(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    port, report = free_port(), session.path("r.json")
    p = subprocess.Popen([sys.executable, "-m", "nperf", "run", d, "--report", report, "--metrics-port", str(port),
                          "--metrics-hold", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    scrapes = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and p.poll() is None:
            s = scrape(port)
            if s is not None:
                scrapes.append(s)
                finished = [v for k, v in s.items() if k[0] == "nperf_finished"]
                if finished and all(finished):
                    break
            time.sleep(0.5)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out[-3000:]
    rep = json.load(open(report))
    during = [s for s in scrapes if value(s, "nperf_requests_total", "client c", default=0) > 0]
    assert len(during) >= 5, len(scrapes)
    for before, after in zip(scrapes, scrapes[1:]):
        grow_b, grow_a = growing(before), growing(after)
        assert set(grow_b) <= set(grow_a)
        assert all(grow_a[k] >= v for k, v in grow_b.items()), [k for k, v in grow_b.items() if grow_a[k] < v]
    assert value(during[0], "nperf_requests_total", "client c") < value(scrapes[-1], "nperf_requests_total", "client c")

    last = scrapes[-1]
    roles = {r["name"]: r["report"] for r in rep["roles"]}
    client, server = roles["client c"], roles["server s"]
    assert value(last, "nperf_finished", "client c") == value(last, "nperf_finished", "server s") == 1
    assert value(last, "nperf_connections_opened_total", "client c") == client["counters"]["conn_opened"]
    assert value(last, "nperf_requests_total", "client c") == client["responses_ok"] + client["responses_failed"]
    assert value(last, "nperf_responses_ok_total", "client c") == client["responses_ok"] > 0
    assert value(last, "nperf_failures_total", "client c") == 0
    assert value(last, "nperf_tx_bytes_total", "client c") == client["counters"]["tx_bytes"]
    assert value(last, "nperf_rx_bytes_total", "client c") == client["counters"]["rx_bytes"]
    assert value(last, "nperf_connections_opened_total", "server s") == server["counters"]["conn_opened"]
    assert value(last, "nperf_requests_total", "server s") == server["http"]["requests"]
    assert value(last, "nperf_retransmissions_total", "server s") == server["counters"]["tcp_retransmits"]
    for cause in ("not_ours", "bad_tcp", "no_mbuf", "tx_full"):
        assert value(last, "nperf_drops_total", "server s", cause=cause) == server["counters"][f"drop_{cause}"]
    # gauges of the per-second line, and the phase
    assert value(last, "nperf_target_connections", "client c") == 0           # the run is over
    assert any(value(s, "nperf_concurrent_connections", "client c") == 1000 for s in during)
    assert any(value(s, "nperf_phase", "client c", default=0, phase="sustain") == 1 for s in during)
    # latency: a histogram of every response (the report's histogram holds the sustain phase's)
    count = value(last, "nperf_latency_seconds_count", "client c")
    sustain_count = sum(c for _, c in client["latency_histogram"]["bins"])
    assert sustain_count < count <= client["responses_ok"] + client["responses_failed"]
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in last.items()
                     if k[0] == "nperf_latency_seconds_bucket" and dict(k[1])["role"] == "client c")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1] == (float("inf"), count)


def test_a_busy_port_is_an_error_line(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        r = subprocess.run([sys.executable, "-m", "nperf", "run", d, "--metrics-port", str(s.getsockname()[1])],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "error: --metrics-port" in r.stderr and "in use" in r.stderr, r.stderr


def test_a_role_alone_serves_its_own_metrics(session):
    d = copy_topology(session, "memif/test4", phases=SHORT)
    port, report = free_port(), session.path("c.json")
    server = session.nperf("server", f"{d}/s.json", name="server")
    server.wait_for(r"ready", timeout=300)
    client = session.nperf("client", f"{d}/c.json", "--report", report, "--metrics-port", str(port),
                           "--metrics-hold", "60", name="client")
    client.wait_for(r"\[client c\] \[ *5s\]", timeout=120)
    during = scrape(port)
    client.wait_for(r"stopped:", timeout=120)
    last = scrape(port)                       # the hold keeps the endpoint up for this scrape
    assert client.p.wait(30) == 0, client.text()
    rep = json.load(open(report))
    assert {k[1] for k in last} >= {(("kind", "client"), ("role", "client c"))}
    assert 0 < value(during, "nperf_responses_ok_total", "client c") < rep["responses_ok"]
    assert value(during, "nperf_finished", "client c") == 0 and value(last, "nperf_finished", "client c") == 1
    assert value(last, "nperf_responses_ok_total", "client c") == rep["responses_ok"]
    assert value(last, "nperf_connections_opened_total", "client c") == rep["counters"]["conn_opened"]
    assert value(last, "nperf_tx_bytes_total", "client c") == rep["counters"]["tx_bytes"]
    assert server.stop() == 0
