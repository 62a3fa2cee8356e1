"""Config loading: the seed files load unchanged, and every invalid value is
rejected with `<file>: <json path>: expected ...`, never a traceback."""

import hashlib
import io
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nperf.check import run_check
from nperf.config import (
    ConfigError,
    LbConfig,
    WorkerConfig,
    decode_lb,
    decode_worker,
    impair_option,
    ip_range,
    load_any,
    load_lb,
    load_worker,
    owned_ips,
    parse_mac,
)

HERE = Path(__file__).resolve().parent.parent      # tests/
REPO = HERE.parent
SEED_DIR = Path(os.environ.get("NPERF_SEED_DIR", HERE / "seed_configs"))
INVALID_DIR = HERE / "configs_invalid"

SEED_FILES = sorted(p.relative_to(SEED_DIR).as_posix() for p in SEED_DIR.rglob("*.json"))
# The only warning the seed files may give: worker 1 of this lb lists 192.168.1.21 twice.
SEED_WARNINGS = {
    "veth_pair/test1/lb_c.json": [
        "$.clients[1].ips[4]: duplicate address 192.168.1.21 (also at $.clients[1].ips[3]), ignored"
    ],
}

MINIMAL_WORKER = {
    "network": {
        "l3": {
            "src_ip_start": "10.0.0.1",
            "src_ip_end": "10.0.0.4",
            "dst_ip_start": "10.0.1.1",
            "dst_ip_end": "10.0.1.2",
        },
        "l4": {"src_port_start": 1000, "src_port_end": 2000, "dst_port_start": 80, "dst_port_end": 81},
    },
    "dpdk": {"args": "--proc-type=secondary --file-prefix=t"},
}


def encode(obj) -> bytes:
    return json.dumps(obj).encode()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------ seed files


def test_seed_files_are_all_there():
    assert len(SEED_FILES) == 16, SEED_FILES


@pytest.mark.parametrize("rel", SEED_FILES)
def test_seed_file_loads(rel):
    path = str(SEED_DIR / rel)
    kind, cfg, warnings = load_any(path)
    assert kind == ("lb" if Path(rel).name.startswith("lb_") else "worker")
    assert isinstance(cfg, LbConfig if kind == "lb" else WorkerConfig)
    assert warnings == [f"{path}: {w}" for w in SEED_WARNINGS.get(rel, [])]


# sha256 prefixes of the seed files as delivered (../shared/seed/configs): the copies
# under tests/seed_configs and examples/ must stay byte-identical to them
SEED_SHA256 = {
    "memif/test3/c.json": "2dd866ffdca686ca",
    "memif/test3/lb_c.json": "58b84397e8c572c9",
    "memif/test3/lb_s.json": "aed39bb35fadc509",
    "memif/test3/s.json": "072973a3eb214fa4",
    "memif/test4/c.json": "63ef6e9e24e1418b",
    "memif/test4/s.json": "c534cf9f75dbea35",
    "veth_pair/test1/c.json": "437fbe668eee58e2",
    "veth_pair/test1/c1.json": "10fe66410904f1b7",
    "veth_pair/test1/lb_c.json": "db879d1525cba454",
    "veth_pair/test1/lb_s.json": "c6e19a790eea9115",
    "veth_pair/test1/s.json": "ba4af002def0cab6",
    "veth_pair/test1/s1.json": "788650fc39e21b51",
    "veth_pair/test2/c.json": "9a14601e47239a26",
    "veth_pair/test2/lb_c.json": "2917076f27386674",
    "veth_pair/test2/lb_s.json": "ef049e9763260745",
    "veth_pair/test2/s.json": "be7590b24aa805e7",
}


def test_seed_copies_are_byte_identical_to_the_seed():
    examples = REPO / "examples"
    assert sorted(SEED_SHA256) == sorted(SEED_FILES)
    for rel, digest in SEED_SHA256.items():
        assert hashlib.sha256((SEED_DIR / rel).read_bytes()).hexdigest()[:16] == digest, rel
        assert hashlib.sha256((examples / rel).read_bytes()).hexdigest()[:16] == digest, rel


def test_seed_test3_client_values():
    cfg, warnings = load_worker(str(SEED_DIR / "memif/test3/c.json"))
    assert warnings == []
    assert cfg.scheduler.prepare_duration_sec == 3
    assert cfg.scheduler.sustain_duration_sec == 50
    assert (cfg.objective.type, cfg.objective.value, cfg.objective.requests_per_connection) == ("HTTP_REQUESTS", 1000, 1)
    assert cfg.objective.requests_per_second is None
    assert cfg.http_config.paths[0].path == "/hello"
    assert cfg.http_config.paths[0].request_headers == ["User-Agent: perf_tool/1.0", "Accept: */*"]
    assert cfg.http_config.paths[0].response_code == 200
    assert cfg.http_config.paths[0].response_body is None
    assert cfg.interface.mtu == 2000
    assert cfg.network.l4.protocol == "TCP"
    assert (cfg.network.l4.dst_port_start, cfg.network.l4.dst_port_end) == (8000, 8010)
    assert (cfg.dpdk.is_dpdk_client, cfg.dpdk.client_ring_idx, cfg.dpdk.core_id) == (1, 0, 2)
    assert cfg.dpdk.args == "--proc-type=secondary --file-prefix=memif_c"
    assert cfg.client_payload.data == "Hello from client!" and cfg.client_payload.size == 18
    assert owned_ips(cfg, "client") == [ipaddress.ip_address(f"192.168.1.{n}") for n in range(10, 18)]
    assert owned_ips(cfg, "server")[-1] == ipaddress.ip_address("192.168.1.107")
    assert parse_mac(cfg.network.l2.mac_address) == bytes([0, 0x0A, 0x0B, 0, 0, 0])


def test_seed_test4_worker_owns_its_port():
    cfg, _ = load_worker(str(SEED_DIR / "memif/test4/s.json"))
    assert (cfg.dpdk.is_dpdk_client, cfg.dpdk.client_ring_idx, cfg.dpdk.iface) == (0, 0, "memif0")
    assert [p.response_body_size for p in cfg.http_config.paths] == [100, 5242880, 1024]


def test_seed_lb_with_repeated_address_drops_the_repeat():
    cfg, _ = load_lb(str(SEED_DIR / "veth_pair/test1/lb_c.json"))
    assert (cfg.core_id, cfg.num_clients) == (6, 2)
    assert [w.id for w in cfg.clients] == [0, 1]
    assert cfg.clients[1].ips == [f"192.168.1.{n}" for n in range(18, 25)]


# ------------------------------------------------------------ invalid files

# file -> (JSON path, text the message must contain after the path)
INVALID = {
    "lb_bad_ip.json": ("$.clients[0].ips[1]", 'expected an IPv4 or IPv6 address, got "10.0.0.256"'),
    "lb_core_id_bool.json": ("$.core_id", "expected an integer >= 0, got true"),
    "lb_core_id_string.json": ("$.core_id", 'expected an integer >= 0, got "4"'),
    "lb_duplicate_worker_id.json": ("$.clients[1].id", "expected a unique worker id, got 0 (also at $.clients[0].id)"),
    "lb_impair_delay_beyond_wheel.json": (
        "$.impair.to_workers",
        "expected delay_ms + jitter_ms <= 40 (the lb's time wheel), got 45",
    ),
    "lb_impair_loss_150.json": ("$.impair.to_port.loss", "expected a number in 0..100, got 150"),
    "lb_ip_two_workers.json": ("$.clients[1].ips[1]", 'owned by worker 0 ($.clients[0].ips[1]) and worker 1'),
    "lb_ips_not_array.json": ("$.clients[0].ips", 'expected an array, got "10.0.0.1"'),
    "lb_missing_core_id.json": ("$.core_id", "required key missing"),
    "lb_num_clients_129.json": ("$.num_clients", "expected an integer in 1..128, got 129"),
    "lb_num_clients_mismatch.json": ("$.num_clients", "expected 2 (the number of entries in clients), got 3"),
    "lb_num_clients_zero.json": ("$.num_clients", "expected an integer in 1..128, got 0"),
    "lb_worker_id_out_of_range.json": ("$.clients[1].id", "expected a worker id in 0..1 (below num_clients), got 5"),
    "neither_lb_nor_worker.json": ("$", 'expected an lb config (with "dpdk_args") or a worker config (with "dpdk")'),
    "not_an_object.json": ("$", "expected a JSON object, got [1, 2]"),
    "worker_bad_mac.json": ("$.network.l2.mac_address", 'expected a MAC address like "02:00:00:00:00:01", got "00:0a:0b:00:00"'),
    "worker_bad_objective_type.json": (
        "$.objective.type",
        'expected one of HTTP_REQUESTS, TCP_CONCURRENT, TOTAL_CONNECTIONS, UDP_STREAM, got "HTTP"',
    ),
    "worker_bad_protocol.json": ("$.network.l4.protocol", 'expected one of TCP, UDP, got "SCTP"'),
    "worker_bad_request_header.json": (
        "$.http_config.paths[0].request_headers[1]",
        'expected a header "Name: value", got "User-Agent"',
    ),
    "worker_bad_src_ip.json": ("$.network.l3.src_ip_start", 'expected an IPv4 or IPv6 address, got "192.168.1.300"'),
    "worker_client_ring_idx_200.json": ("$.dpdk.client_ring_idx", "expected an integer in 0..127, got 200"),
    "worker_core_id_float.json": ("$.dpdk.core_id", "expected an integer >= 0, got 2.5"),
    "worker_dst_port_65536.json": ("$.network.l4.dst_port_end", "expected an integer in 1..65535, got 65536"),
    "worker_dst_port_range_reversed.json": (
        "$.network.l4.dst_port_end",
        "expected a port >= dst_port_start (8010), got 8000",
    ),
    "worker_dst_range_mixed_versions.json": (
        "$.network.l3.dst_ip_end",
        'expected an IPv4 address like dst_ip_start, got "fd00::4"',
    ),
    "worker_empty_paths.json": ("$.http_config.paths", "expected an array of length >= 1, got []"),
    "worker_ipv6_range_too_large.json": (
        "$.network.l3.dst_ip_end",
        "expected at most 65536 addresses from dst_ip_start, got 4294967296",
    ),
    "worker_is_dpdk_client_bool.json": ("$.dpdk.is_dpdk_client", "expected an integer in 0..1, got true"),
    "worker_missing_dpdk_args.json": ("$.dpdk.args", "required key missing"),
    "worker_missing_l3.json": ("$.network.l3", "required key missing"),
    "worker_mtu_500.json": ("$.interface.mtu", "expected an integer in 576..9000, got 500"),
    "worker_mtu_9001.json": ("$.interface.mtu", "expected an integer in 576..9000, got 9001"),
    "worker_negative_duration.json": ("$.scheduler.ramp_up_duration_sec", "expected a number >= 0, got -1"),
    "worker_negative_objective_value.json": ("$.objective.value", "expected an integer >= 0, got -1"),
    "worker_negative_response_body_size.json": (
        "$.http_config.paths[0].response_body_size",
        "expected an integer >= 0, got -5",
    ),
    "worker_path_without_slash.json": ("$.http_config.paths[0].path", 'expected a path starting with "/"'),
    "worker_payload_size_string.json": ("$.client_payload.size", 'expected an integer >= 0, got "2"'),
    "worker_response_code_600.json": ("$.http_config.paths[0].response_code", "expected an integer in 100..599, got 600"),
    "worker_mixed_ipv6_key_holds_ipv4.json": ("$.network.l3.ipv6.src_ip_start",
                                              'expected an IPv6 address, got "10.0.0.5"'),
    "worker_mixed_beside_ipv6.json": ("$.network.l3.ipv6",
                                      "expected the ranges beside ipv6 to be IPv4 (a mixed worker), got IPv6"),
    "worker_mixed_ipv6_dst_ipv4.json": ("$.network.l3.ipv6.dst_ip_start",
                                        'expected an IPv6 address like src_ip_start, got "10.0.1.1"'),
    "worker_src_dst_versions_differ.json": (
        "$.network.l3.dst_ip_start",
        'expected an IPv4 address like src_ip_start, got "fd00::1"',
    ),
    "worker_src_port_zero.json": ("$.network.l4.src_port_start", "expected an integer in 1..65535, got 0"),
    "worker_src_range_reversed.json": (
        "$.network.l3.src_ip_end",
        'expected an address >= src_ip_start (10.0.0.1), got "10.0.0.0"',
    ),
    "worker_udp_stream_over_tcp.json": ("$.network.l4.protocol", 'expected "UDP" for objective UDP_STREAM, got "TCP"'),
    "worker_use_https_2.json": ("$.http_config.use_https", "expected an integer in 0..1, got 2"),
    "worker_zero_requests_per_second.json": ("$.objective.requests_per_second", "expected a number > 0 or null, got 0"),
}


def test_every_invalid_fixture_is_listed():
    assert sorted(p.name for p in INVALID_DIR.glob("*.json")) == sorted(INVALID)
    assert len(INVALID) >= 25


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_file_is_rejected_with_its_path(name):
    path = str(INVALID_DIR / name)
    json_path, expected = INVALID[name]
    with pytest.raises(ConfigError) as info:
        load_any(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {json_path}: ")
    assert expected in message.removeprefix(f"{path}: {json_path}: ")
    assert (info.value.file, info.value.where) == (path, json_path)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_run_check_reports_invalid_file(name):
    path = str(INVALID_DIR / name)
    json_path, _ = INVALID[name]
    out, err = io.StringIO(), io.StringIO()
    assert run_check([path], out=out, err=err) == 2
    assert out.getvalue() == ""
    assert err.getvalue().startswith(f"error: {path}: {json_path}: ")
    assert err.getvalue().count("\n") == 1


def test_spec_example_message_exactly():
    raw = dict(MINIMAL_WORKER, network=dict(MINIMAL_WORKER["network"]))
    raw["network"]["l3"] = dict(MINIMAL_WORKER["network"]["l3"], src_ip_start="192.168.1.300")
    with pytest.raises(ConfigError) as info:
        decode_worker(encode(raw), "c.json")
    assert str(info.value) == 'c.json: $.network.l3.src_ip_start: expected an IPv4 or IPv6 address, got "192.168.1.300"'


def test_ip_owned_by_two_workers_names_both_ids():
    raw = {
        "dpdk_args": "x",
        "core_id": 0,
        "num_clients": 2,
        "clients": [{"id": 1, "ips": ["fd00::1"]}, {"id": 0, "ips": ["fd00:0::1"]}],
    }
    with pytest.raises(ConfigError) as info:
        decode_lb(encode(raw), "lb.json")
    assert str(info.value) == (
        'lb.json: $.clients[1].ips[0]: expected an address owned by one worker only, got "fd00:0::1", '
        "owned by worker 1 ($.clients[0].ips[0]) and worker 0"
    )


# ------------------------------------------------ syntax, files, warnings


def test_impair_section_and_command_line():
    raw = {"dpdk_args": "x", "core_id": 1, "num_clients": 1, "clients": [{"id": 0, "ips": ["10.0.0.1"]}],
           "impair": {"seed": 5, "to_port": {"loss": 2, "reorder": 10, "delay_ms": 1, "jitter_ms": 0.5}}}
    cfg, warnings = decode_lb(encode(raw), "lb.json")
    assert warnings == [] and cfg.impair.seed == 5 and cfg.impair.to_workers is None
    assert (cfg.impair.to_port.loss, cfg.impair.to_port.depth, cfg.impair.to_port.jitter_ms) == (2, 3, 0.5)
    cfg = impair_option("to_workers:corrupt=1, depth=7", cfg)
    cfg = impair_option("to_port:loss=0", cfg)
    assert (cfg.impair.to_workers.corrupt, cfg.impair.to_workers.depth) == (1, 7)
    assert (cfg.impair.to_port.loss, cfg.impair.to_port.reorder) == (0, 10)
    bare, _ = decode_lb(encode({k: v for k, v in raw.items() if k != "impair"}), "lb.json")
    assert impair_option("to_port:duplicate=3", bare).impair.to_port.duplicate == 3
    for text, message in (("sideways:loss=1", 'expected to_workers:... or to_port:..., got "sideways:loss=1"'),
                          ("to_port:los=1", 'expected one of loss, corrupt, duplicate, reorder, depth, delay_ms, '
                                            'jitter_ms, got "los"'),
                          ("to_port:loss=x", 'expected key=number, got "loss=x"'),
                          ("to_port:reorder=101", "$.impair.to_port.reorder: expected a number in 0..100, got 101.0"),
                          ("to_port:depth=0", "$.impair.to_port.depth: expected an integer in 1..1000, got 0")):
        with pytest.raises(ConfigError) as info:
            impair_option(text, cfg)
        assert str(info.value) == f"--impair: {message}"


def test_json_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "c.json", '{\n  "a": 1,\n  "b" 2\n}\n')
    with pytest.raises(ConfigError) as info:
        load_any(path)
    assert str(info.value) == f"{path}: line 3, column 7: invalid JSON: Expecting ':' delimiter"


def test_bare_word_value_line_and_column(tmp_path):
    path = write(tmp_path, "lb.json", '{\n    "core_id": four\n}')
    with pytest.raises(ConfigError) as info:
        load_lb(path)
    assert str(info.value) == f"{path}: line 2, column 16: invalid JSON: Expecting value"


def test_nan_is_rejected(tmp_path):
    path = write(tmp_path, "c.json", '{"scheduler": {"sustain_duration_sec": NaN}}')
    with pytest.raises(ConfigError) as info:
        load_worker(path)
    assert str(info.value) == f"{path}: invalid JSON: NaN is not a JSON value"


def test_missing_file():
    path = "no/such/dir/x.json"
    with pytest.raises(ConfigError) as info:
        load_any(path)
    assert str(info.value) == "no/such/dir/x.json: cannot read: No such file or directory"


def test_unknown_keys_are_warnings_at_every_depth():
    raw = json.loads(json.dumps(MINIMAL_WORKER))
    raw["extra"] = 1
    raw["dpdk"]["foo"] = "bar"
    raw["http_config"] = {"paths": [{"path": "/", "colour": "red"}, {"path": "/b"}]}
    raw["client_payload"] = {"data": "x", "size": 1, "pad": True}
    cfg, warnings = decode_worker(encode(raw), "c.json")
    assert warnings == [
        "c.json: $.dpdk.foo: unknown key, ignored",
        "c.json: $.extra: unknown key, ignored",
        "c.json: $.http_config.paths[0].colour: unknown key, ignored",
        "c.json: $.client_payload.pad: unknown key, ignored",
    ]
    assert [p.path for p in cfg.http_config.paths] == ["/", "/b"]


def test_unknown_key_in_lb_worker_item():
    raw = {"dpdk_args": "x", "core_id": 0, "num_clients": 1, "clients": [{"id": 0, "ips": [], "mac": "x"}]}
    _, warnings = decode_lb(encode(raw), "lb.json")
    assert warnings == ["lb.json: $.clients[0].mac: unknown key, ignored"]


def test_legacy_client_lcore_id_is_known():
    raw = json.loads(json.dumps(MINIMAL_WORKER))
    raw["dpdk"]["client_lcore_id"] = 3
    cfg, warnings = decode_worker(encode(raw), "c.json")
    assert warnings == [] and cfg.dpdk.client_lcore_id == 3


# ------------------------------------------------------- defaults, kinds


def test_minimal_worker_defaults():
    cfg, warnings = decode_worker(encode(MINIMAL_WORKER), "c.json")
    assert warnings == []
    s = cfg.scheduler
    assert (s.prepare_duration_sec, s.ramp_up_duration_sec, s.sustain_duration_sec) == (0, 0, 10)
    assert (s.ramp_down_duration_sec, s.close_duration_sec) == (0, 1)
    o = cfg.objective
    assert (o.type, o.value, o.requests_per_connection, o.requests_per_second) == ("HTTP_REQUESTS", 1, 1, None)
    h = cfg.http_config
    assert (h.use_https, h.cert_path, h.key_path) == (0, "", "")
    assert [(p.path, p.response_code, p.response_body_size) for p in h.paths] == [("/", 200, 0)]
    assert cfg.interface.mtu == 1500
    assert cfg.network.l2.mac_address == ""
    assert cfg.network.l4.protocol == "TCP"
    d = cfg.dpdk
    assert (d.iface, d.is_dpdk_client, d.client_ring_idx, d.core_id) == ("", 0, 0, 0)
    assert cfg.client_payload is None and cfg.server_response is None


def test_durations_accept_fractions_and_rate_limit():
    raw = dict(MINIMAL_WORKER, scheduler={"sustain_duration_sec": 2.5}, objective={"requests_per_second": 100})
    cfg, _ = decode_worker(encode(raw), "c.json")
    assert cfg.scheduler.sustain_duration_sec == 2.5
    assert cfg.objective.requests_per_second == 100.0


def test_load_any_tells_kinds_apart(tmp_path):
    lb = write(tmp_path, "lb.json", json.dumps({"dpdk_args": "x", "core_id": 0, "num_clients": 1, "clients": [{"id": 0, "ips": ["::1"]}]}))
    worker = write(tmp_path, "w.json", json.dumps(MINIMAL_WORKER))
    assert load_any(lb)[0] == "lb"
    assert load_any(worker)[0] == "worker"


def test_decode_keeps_the_given_name():
    with pytest.raises(ConfigError) as info:
        decode_lb(b'{"dpdk_args": "x"}', "some/dir/lb_s.json")
    assert str(info.value) == "some/dir/lb_s.json: $.core_id: required key missing"


# --------------------------------------------------------------- helpers


def test_ip_range_ipv4_and_ipv6():
    assert [str(a) for a in ip_range("10.0.0.254", "10.0.1.1")] == ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]
    assert [str(a) for a in ip_range("::1", "::2")] == ["::1", "::2"]
    assert all(isinstance(a, ipaddress.IPv6Address) for a in ip_range("::1", "::2"))


@pytest.mark.parametrize("start,end", [("10.0.0.2", "10.0.0.1"), ("10.0.0.1", "::2"), ("x", "10.0.0.1")])
def test_ip_range_rejects_bad_ranges(start, end):
    with pytest.raises(ValueError):
        ip_range(start, end)


def test_a_mixed_worker_owns_both_families():
    cfg, _ = decode_worker(encode({**MINIMAL_WORKER, "network": {**MINIMAL_WORKER["network"], "l3": {
        **MINIMAL_WORKER["network"]["l3"], "ipv6": {"src_ip_start": "fd00::a", "src_ip_end": "fd00::b",
                                                    "dst_ip_start": "fd00::64", "dst_ip_end": "fd00::64"}}}}),
                           "c.json")
    assert [str(a) for a in owned_ips(cfg, "server")] == ["10.0.1.1", "10.0.1.2", "fd00::64"]
    assert [str(a) for a in owned_ips(cfg, "client")][-3:] == ["10.0.0.4", "fd00::a", "fd00::b"]


def test_owned_ips_rejects_unknown_role():
    cfg, _ = decode_worker(encode(MINIMAL_WORKER), "c.json")
    assert [str(a) for a in owned_ips(cfg, "server")] == ["10.0.1.1", "10.0.1.2"]
    with pytest.raises(ValueError):
        owned_ips(cfg, "lb")


@pytest.mark.parametrize("text", ["00:0a:0b:00:00", "00:0a:0b:00:00:0g", "00:0a-0b:00:00:00", "000a0b000000", ""])
def test_parse_mac_rejects(text):
    with pytest.raises(ValueError):
        parse_mac(text)


def test_parse_mac_accepts_dashes():
    assert parse_mac("02-00-00-00-00-FF") == bytes([2, 0, 0, 0, 0, 255])


# ------------------------------------------------------------ nperf.check


def test_run_check_seed_lb_summary_and_warning():
    out, err = io.StringIO(), io.StringIO()
    lb_s, lb_c = str(SEED_DIR / "veth_pair/test1/lb_s.json"), str(SEED_DIR / "veth_pair/test1/lb_c.json")
    assert run_check([lb_s, lb_c], out=out, err=err) == 0
    assert out.getvalue() == f"OK {lb_s} (lb: 2 workers, 16 addresses)\nOK {lb_c} (lb: 2 workers, 15 addresses)\n"
    assert err.getvalue() == f"warning: {lb_c}: {SEED_WARNINGS['veth_pair/test1/lb_c.json'][0]}\n"


def test_run_check_of_a_directory_checks_its_json_files(tmp_path):
    d = SEED_DIR / "memif/test3"
    out, err = io.StringIO(), io.StringIO()
    assert run_check([str(d), str(tmp_path)], out=out, err=err) == 2
    assert [line.split()[1] for line in out.getvalue().splitlines()] == [
        str(d / name) for name in ("c.json", "lb_c.json", "lb_s.json", "s.json")]
    assert err.getvalue() == f"error: {tmp_path}: a directory with no configuration files (*.json)\n"


def test_nperf_check_stops_quietly_when_its_reader_goes_away(tmp_path):
    """`nperf check DIR | head -1`: the rest of the output has nowhere to go. No traceback, no
    "Exception ignored" at exit: the status a shell shows for SIGPIPE, and nothing on stderr."""
    good = (SEED_DIR / "memif/test3/c.json").read_text()
    for i in range(1500):                                # 1,500 OK lines: far more than a pipe holds
        (tmp_path / f"c{i:04}.json").write_text(good)
    p = subprocess.Popen([sys.executable, "-m", "nperf", "check", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(b"OK ")
    p.stdout.close()
    err = p.stderr.read()
    assert (p.wait(60), err) == (141, b"")


def test_run_check_keeps_going_after_a_failure():
    good = str(SEED_DIR / "memif/test3/c.json")
    bad = str(INVALID_DIR / "worker_mtu_9001.json")
    out, err = io.StringIO(), io.StringIO()
    assert run_check([bad, good, "missing.json"], out=out, err=err) == 2
    assert out.getvalue().splitlines() == [
        f"OK {good} (worker: HTTP_REQUESTS 1000, TCP, 8 client IPs, 8 server IPs x 11 ports, 1 path, lb ring 0, core 2)"
    ]
    assert err.getvalue().splitlines() == [
        f"error: {bad}: $.interface.mtu: expected an integer in 576..9000, got 9001",
        "error: missing.json: cannot read: No such file or directory",
    ]


def test_python_m_nperf_check_on_good_and_bad_files():
    good = str(SEED_DIR / "memif/test3/lb_s.json")
    bad = str(INVALID_DIR / "lb_ip_two_workers.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "nperf.check", good, bad], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout == f"OK {good} (lb: 1 worker, 8 addresses)\n"
    assert proc.stderr.startswith(f"error: {bad}: $.clients[1].ips[1]: ")
    assert "Traceback" not in proc.stderr


def test_python_m_nperf_check_without_files_prints_usage():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "nperf.check"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "usage: python -m nperf.check FILE|DIR...\n"


@pytest.mark.parametrize("role,l3,message", [
    ("client", dict(src_ip_start="fd00:1::1", src_ip_end="fd00:1::2", dst_ip_start="fd00:1::ffff:ffff:ffff:ffff",
                    dst_ip_end="fd00:1:0:1::"),
     "server addresses fd00:1::ffff:ffff:ffff:ffff..fd00:1:0:1::: an IPv6 range must lie within one /96 "
     "(only its last 32 bits may vary)"),
    ("client", dict(src_ip_start="fd00:1::ffff:fffe", src_ip_end="fd00:1::1:0:1", dst_ip_start="fd00:1::10",
                    dst_ip_end="fd00:1::10"),
     "client addresses fd00:1::ffff:fffe..fd00:1::1:0:1: an IPv6 range must lie within one /96 "
     "(only its last 32 bits may vary)"),
    ("server", dict(src_ip_start="fd00:1::1", src_ip_end="fd00:1::1", dst_ip_start="fd00:1::ffff:ffff:ffff:ffff",
                    dst_ip_end="fd00:1:0:1::"),
     "server addresses fd00:1::ffff:ffff:ffff:ffff..fd00:1:0:1::: an IPv6 range must lie within one /96 "
     "(only its last 32 bits may vary)"),
    ("server", dict(src_ip_start="::1", src_ip_end="::1", dst_ip_start="::10", dst_ip_end="::11"),
     "server addresses ::10..::11: ::/64 holds no unicast address for a port"),
], ids=["client_destinations_across_a_96", "client_range_across_a_96", "ipv6_range_across_a_64", "ipv6_in_the_zero_64"])
def test_a_role_refuses_addresses_it_cannot_serve_in_one_line(tmp_path, role, l3, message):
    """Before any DPDK set-up: exit 2 and the file, the key and why, no traceback."""
    cfg = json.load(open(SEED_DIR / "memif/test3" / ("c.json" if role == "client" else "s.json")))
    cfg["network"]["l3"].update(l3)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "nperf", role, str(path)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert (proc.returncode, proc.stderr) == (2, f"error: {path}: $.network.l3: {message}\n")
