"""`nperf compare` and `--slo` on crafted reports: exact headline figures, verdicts, exit statuses."""
import json

import pytest

from nperf import headline, slo
from tests import crafted
from tests.procs import run_nperf

A_C1 = [0, 100, 1000, 1000, 1000, 100, 0]
A_C2 = [0, 100, 2000, 2000, 2000, 100, 0]
B_C1 = [0, 100, 1200, 1200, 1200, 100, 0]


def run_a():
    return crafted.run(crafted.lb(), crafted.server(),
                       crafted.client("c1", A_C1, [50] * 99 + [120]), crafted.client("c2", A_C2, [60] * 100))


def run_b():
    return crafted.run(crafted.lb(no_worker=6), crafted.server(retransmits=3),
                       crafted.client("c1", B_C1, [50] * 50 + [100] * 50, retransmits=2),
                       crafted.client("c2", A_C2, [60] * 90 + [125] * 10, failed=4, connect_refused=1))




@pytest.fixture
def files(tmp_path):
    return crafted.write(run_a(), str(tmp_path / "a.json")), crafted.write(run_b(), str(tmp_path / "b.json"))


def test_headline_figures_add_clients_and_merge_their_histograms():
    a, b = headline.figures(run_a()), headline.figures(run_b())
    assert a == {"cps": 3000.0, "rps": 3000.0, "p50": 0.06, "p90": 0.06, "p99": 0.06, "p999": 0.12, "max": 0.12,
                 "failures": 0, "fail_rate": 0.0, "drops": 4, "retransmissions": 0}
    assert b == {"cps": 3200.0, "rps": 3200.0, "p50": 0.06, "p90": 0.1, "p99": 0.125, "p999": 0.125, "max": 0.125,
                 "failures": 5, "fail_rate": 5 / 10001, "drops": 10, "retransmissions": 5}


def test_compare_prints_a_verdict_per_figure(files):
    r = run_nperf("compare", *files)
    assert r.returncode == 0, r.stderr
    rows = {line[:17].strip(): line.split()[-1] for line in r.stdout.splitlines()[1:]}
    assert rows == {"sustain CPS": "better", "sustain RPS": "better", "latency p50": "same", "latency p90": "worse",
                    "latency p99": "worse", "latency p99.9": "same", "latency max": "same", "failures": "worse",
                    "fail rate": "worse", "drops": "worse", "retransmissions": "worse"}
    assert "3,000 conn/s" in r.stdout and "3,200 conn/s" in r.stdout and "+6.7 %" in r.stdout


def test_tolerance_decides_same(files):
    r = run_nperf("compare", *files, "--tolerance", "10")
    assert r.returncode == 0
    verdict = {line[:17].strip(): line.split()[-1] for line in r.stdout.splitlines()[1:]}
    assert verdict["sustain CPS"] == "same" and verdict["latency p99"] == "worse"


def test_slo_on_compare_judges_b_and_sets_the_exit_status(files):
    ok = run_nperf("compare", *files, "--slo", "cps>3100", "--slo", "fail_rate<0.1%", "--slo", "p99<=125us")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "slo ok     cps>3100: cps is 3,200 conn/s" in ok.stdout
    bad = run_nperf("compare", *files, "--slo", "p99<0.1ms", "--slo", "fail_rate<0.01%", "--slo", "drops<=10")
    assert bad.returncode == 1
    assert "slo FAILED p99<0.1ms: p99 is 0.125 ms" in bad.stdout
    assert "slo FAILED fail_rate<0.01%: fail_rate is 0.05 %" in bad.stdout
    assert "slo ok     drops<=10: drops is 10 frames" in bad.stdout


@pytest.mark.parametrize("rule,figure,op,limit", [
    ("p99<5ms", "p99", "<", 5.0), ("p99.9 <= 2.5ms", "p999", "<=", 2.5), ("p50<500us", "p50", "<", 0.5),
    ("max<1s", "max", "<", 1000.0), ("fail_rate<0.1%", "fail_rate", "<", 0.001),
    ("fail_rate<0.002", "fail_rate", "<", 0.002), ("cps>100000", "cps", ">", 100000.0),
    ("retransmissions>=0", "retransmissions", ">=", 0.0),
])
def test_slo_parse(rule, figure, op, limit):
    s = slo.parse(rule)
    assert (s.figure, s.op) == (figure, op) and s.limit == pytest.approx(limit, rel=1e-12)


@pytest.mark.parametrize("rule,why", [
    ("p99<5", "needs a time unit"), ("cps>10ms", "plain number"), ("foo<1", "unknown figure 'foo'"),
    ("p99 = 5ms", "expected FIGURE OP VALUE"), ("fail_rate<1ms", "fraction"), ("cps>", "expected FIGURE OP VALUE"),
])
def test_bad_slo_is_an_error_line_and_status_2(files, rule, why):
    for argv in (["compare", *files, "--slo", rule], ["run", "/nonexistent", "--slo", rule]):
        r = run_nperf(*argv)
        assert r.returncode == 2 and why in r.stderr and "error:" in r.stderr and "Traceback" not in r.stderr


def test_unreadable_reports_are_refused(tmp_path, files):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(dict(json.load(open(files[0])), schema_version=2)))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"ok": True, "roles": []}))
    for path, why in ((bad, "not JSON"), (newer, "schema_version 2; this nperf reads 1"),
                      (old, "no schema_version"), (tmp_path / "missing.json", "No such file")):
        r = run_nperf("compare", files[0], str(path))
        assert r.returncode == 2 and f"error: {path}: " in r.stderr and why in r.stderr, r.stderr
