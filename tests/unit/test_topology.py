"""A topology built from config objects (`api.Topology.from_configs`, what the benchmarks use):
its files exist exactly as long as the topology, so a benchmark leaves nothing in /tmp."""
import gc
import os
import tempfile

import msgspec

from nperf import api, config
from nperf.data import SEED_TEST3


def test_from_configs_files_live_as_long_as_the_topology(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))     # not /tmp: the session's check of it runs in parallel
    server, _ = config.load_worker(os.path.join(SEED_TEST3, "s.json"))
    client, _ = config.load_worker(os.path.join(SEED_TEST3, "c.json"))
    client.objective.value = 7
    topo = api.Topology.from_configs(servers={"s": server}, clients={"c": client}, client_args=["--core", "0"])
    assert [(r.kind, os.path.basename(r.path), r.name, r.args) for r in topo.roles] == [
        ("server", "s.json", "server s", []), ("client", "c.json", "client c", ["--core", "0"])]
    d = os.path.dirname(topo.roles[0].path)
    assert os.path.dirname(d) == str(tmp_path) and os.path.basename(d).startswith("nperf-topology-")
    assert sorted(os.listdir(d)) == ["c.json", "s.json"]
    kind, loaded, _ = config.load_any(topo.roles[1].path)
    assert kind == "worker" and msgspec.to_builtins(loaded) == msgspec.to_builtins(client)
    del topo
    gc.collect()
    assert not os.path.exists(d)
