"""Source pairs against a Linux peer's TIME_WAIT: the client warns, and counts what happens.

nginx closes first (the client asks `Connection: close`), so Linux holds
each 4-tuple in TIME_WAIT for 60 s. A client with 40 source pairs reuses
them within seconds: it must say so in a warning line, count every early
reuse, and count the SYNs Linux answers with the old connection's ACK
(the client resets that and its SYN is retransmitted); no request fails.
"""
import json
import os
import re
import sys

from tests.netns import Netns
from tests.test_client_nginx import BODY, EXAMPLE, nginx_conf
from tests.topologies import failures


def test_narrow_source_space_warns_and_counts_early_reuse(session):
    s = session
    ns = Netns("reuse")
    try:
        root = s.path("www")
        os.makedirs(root)
        with open(os.path.join(root, "index.html"), "wb") as f:
            f.write(BODY)
        conf = s.path("nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(root, s.dir))
        cfg = json.load(open(EXAMPLE))
        cfg["dpdk"]["args"] += f" --file-prefix={s.prefix('reuse')}"
        cfg["network"]["l3"]["src_ip_end"] = cfg["network"]["l3"]["src_ip_start"]
        cfg["network"]["l4"]["src_port_start"], cfg["network"]["l4"]["src_port_end"] = 20000, 20039
        cfg["objective"] = {"type": "HTTP_REQUESTS", "value": 4, "requests_per_connection": 1}
        cfg["scheduler"] = {"prepare_duration_sec": 3, "ramp_up_duration_sec": 1, "sustain_duration_sec": 6,
                            "ramp_down_duration_sec": 0, "close_duration_sec": 3}
        path = s.write_json("c.json", cfg)
        client = s.start(ns.argv(sys.executable, "-m", "nperf", "client", path, "--report", s.path("c.out")),
                         "client")
        client.wait_for(r"\] ready", 300)
        ns.run("ip", "addr", "add", "10.77.0.1/24", "dev", "nptap0")
        ns.run("ip", "link", "set", "nptap0", "up")
        s.start(ns.argv("nginx", "-c", conf), "nginx")
        assert client.p.wait(120) == 0, client.text()
        rep = json.load(open(s.path("c.out")))
        assert rep["responses_failed"] == 0 and failures(rep) == 0, rep["errors"]
        assert rep["connections_opened"] > 40                       # every pair was used more than once
        reused = rep["notes"]["pair_reused_early"]
        assert reused == rep["connections_opened"] - 40, rep["notes"]   # each open after the first 40
        assert rep["notes"]["syn_challenged"] == rep["counters"]["tcp_syn_challenged"] > 0
        assert sum(sec["pair_reused_early"] for sec in rep["per_second"]) <= reused
        m = re.search(r"warning: 40 source pairs at ([\d,]+) CPS are reused after ([\d.]+) s; "
                      r"Linux peers hold TIME_WAIT 60 s: widen src_ip or src_port ranges", client.text())
        assert m, client.text()[-2000:]
    finally:
        s.close()
        ns.close()
