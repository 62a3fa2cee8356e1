"""An `nperf server` owning a TAP port inside a test namespace, and the kernel side's address
(IPv4, or IPv6 with `version=6`)."""
import copy
import json
import os
import sys

from tests.netns import Netns

SEED = os.path.join(os.path.dirname(__file__), "seed_configs", "memif", "test3", "s.json")
KERNEL_IP = "10.77.0.1"
SERVER_IP = "10.77.0.10"
KERNEL_IP6 = "fd00:77::1"
SERVER_IP6 = "fd00:77::10"
TAP = "nptap0"
ADDRESSES = {4: (KERNEL_IP, SERVER_IP, "10.77.0.11", 24), 6: (KERNEL_IP6, SERVER_IP6, "fd00:77::11", 64)}


def url_host(version: int) -> str:
    """The server's first address as a URL writes it."""
    return SERVER_IP if version == 4 else f"[{SERVER_IP6}]"


def tap_server_config(tap: str = TAP, lb_prefix: str | None = None, prefix: str = "rte", version: int = 4,
                      https: bool = False) -> dict:
    """The seed's server file, moved to 10.77.0.10-11 (fd00:77::10-11) and a TAP port (or an lb's rings);
    with `https`, serving TLS with the seed's ./server.crt and ./server.key (beside the file)."""
    cfg = copy.deepcopy(json.load(open(SEED)))
    cfg["http_config"]["use_https"] = int(https)
    kernel, first, last, _ = ADDRESSES[version]
    cfg["network"]["l3"].update(dst_ip_start=first, dst_ip_end=last, src_ip_start=kernel, src_ip_end=kernel)
    cfg["network"]["l4"].update(dst_port_start=8000, dst_port_end=8001)
    cfg["network"]["l2"]["mac_address"] = "02:00:00:77:00:0a"
    if lb_prefix:
        cfg["dpdk"] = {"iface": tap, "args": f"--proc-type=secondary --file-prefix={lb_prefix}",
                       "is_dpdk_client": 1, "client_ring_idx": 0, "core_id": 3}
    else:
        cfg["dpdk"] = {"iface": tap, "args": f"--vdev=net_tap0,iface={tap} --proc-type=primary --in-memory -m 256 "
                                             f"--file-prefix={prefix}",
                       "is_dpdk_client": 0, "core_id": 1}
    return cfg


def start_tap_server(session, ns: Netns, *extra: str, name: str = "server", version: int = 4, https: bool = False):
    cfg = session.write_json(f"{name}.json", tap_server_config(prefix=session.prefix(name[:6]), version=version,
                                                               https=https))
    p = session.start(ns.argv(sys.executable, "-m", "nperf", "server", cfg, "--report",
                              session.path(f"{name}_report.json"), *extra), name)
    p.wait_for(r"\] ready", 300)
    kernel_side_up(ns, TAP, version)
    return p


def kernel_side_up(ns: Netns, tap: str, version: int = 4) -> None:
    kernel, _, _, prefix = ADDRESSES[version]
    ns.run("ip", "addr", "add", f"{kernel}/{prefix}", "dev", tap, *(["nodad"] if version == 6 else []))
    ns.run("ip", "link", "set", tap, "up")
