"""The nperf client against the kernel's nginx through a TAP port in a test namespace."""
import json
import os
import sys

from tests.netns import Netns
from tests.topologies import failures

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "tap", "c.json")
BODY = b"n" * 99 + b"\n"


def nginx_conf(root: str, run: str) -> str:
    return f"""
daemon off; worker_processes 1; pid {run}/nginx.pid; error_log {run}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off; keepalive_requests 100000;
    client_body_temp_path {run}; proxy_temp_path {run}; fastcgi_temp_path {run}; uwsgi_temp_path {run}; scgi_temp_path {run};
    server {{ listen 10.77.0.1:80; root {root}; }}
}}
"""


def client_against_nginx(s, ns: Netns, tag: str, **changes) -> tuple[object, dict]:
    """The TAP example client (its file with `changes` by top-level key) against nginx in namespace ns;
    returns (the client process, once it has exited, and its report)."""
    root = s.path("www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(BODY)
    conf = s.path("nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(root, s.dir))
    cfg = json.load(open(EXAMPLE))
    cfg["dpdk"]["args"] += f" --file-prefix={s.prefix(tag)}"
    cfg.update(changes)
    path = s.write_json(f"c_{tag}.json", cfg)
    client = s.start(ns.argv(sys.executable, "-m", "nperf", "client", path, "--report", s.path(f"{tag}.out")),
                     "client")
    client.wait_for(r"\] ready", 300)
    ns.run("ip", "addr", "add", "10.77.0.1/24", "dev", "nptap0")
    ns.run("ip", "link", "set", "nptap0", "up")
    s.start(ns.argv("nginx", "-c", conf), "nginx")
    assert client.p.wait(120) == 0, client.text()
    return client, json.load(open(s.path(f"{tag}.out")))


def test_client_against_nginx_ten_seconds(session):
    s = session
    ns = Netns("ngx")
    try:
        _, rep = client_against_nginx(s, ns, "ngx", scheduler={
            "prepare_duration_sec": 3, "ramp_up_duration_sec": 1, "sustain_duration_sec": 10,
            "ramp_down_duration_sec": 1, "close_duration_sec": 2})
        assert rep["responses_failed"] == 0 and failures(rep) == 0, rep["errors"]
        assert rep["responses_ok"] > 1000
        assert rep["http"]["body_bytes"] == rep["responses_ok"] * len(BODY)
        assert rep["http"]["status_2xx"] == rep["responses_ok"]
    finally:
        s.close()
        ns.close()
