"""`nperf report`: the summary again, one offline HTML file with the charts, and PNGs."""
import json
import os
import re

import matplotlib.image

from nperf import runner
from tests import crafted
from tests.procs import run_nperf
from tests.unit.test_compare_slo import A_C1, A_C2

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make(tmp_path):
    result = crafted.run(crafted.lb(no_worker=3), crafted.server(),
                         crafted.client("c1", A_C1, [50] * 99 + [120]), crafted.client("c2", A_C2, [60] * 100))
    return result, crafted.write(result, str(tmp_path / "run.json"))




def test_report_prints_the_summary_again(tmp_path):
    result, path = make(tmp_path)
    r = run_nperf("report", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == runner.summary(result) + "\n"
    assert "client c1  0       3,200 conns" in r.stdout and "result: ok" in r.stdout


def test_html_is_one_offline_file_with_the_series_and_the_configuration(tmp_path):
    _, path = make(tmp_path)
    out = tmp_path / "run.html"
    r = run_nperf("report", path, "--html", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "<script src" not in page.lower() and "<link" not in page.lower() and "<iframe" not in page.lower()
    outside_scripts = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S | re.I)
    assert not re.search(r"https?://|(src|href)\s*=", outside_scripts, re.I)   # plotly.js's map URLs are unused
    assert "Plotly.newPlot" in page and len(page) > 1_000_000          # plotly.js itself is inside
    for chart in ("rates", "concurrency", "throughput", "latency", "distribution", "errors"):
        assert f'id="chart-{chart}"' in page
    # per-second figures are numbers (floats) in the report, and so in the page
    assert '"name":"client c1 CPS","x":[1,2,3,4,5,6,7],"y":[0.0,100.0,1000.0,1000.0,1000.0,100.0,0.0]' in page
    assert '"name":"client c2 RPS","x":[1,2,3,4,5,6,7],"y":[0.0,100.0,2000.0,2000.0,2000.0,100.0,0.0]' in page
    assert '"name":"lb lb_s","x":["drop no_worker"' in page                 # drops by cause
    assert '"text":"sustain"' in page                                         # phases shaded and named
    assert "&quot;core_id&quot;: 5" in page                                   # every role's configuration


def test_png_writes_each_chart(tmp_path):
    _, path = make(tmp_path)
    r = run_nperf("report", path, "--png", str(tmp_path / "png"))
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(tmp_path / "png"))
    assert names == sorted(f"{c}.png" for c in ("rates", "concurrency", "throughput", "latency", "distribution",
                                                "errors"))
    for name in names:
        data = (tmp_path / "png" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        assert matplotlib.image.imread(str(tmp_path / "png" / name)).shape[:2] == (450, 1000)


def test_report_refuses_a_role_report_file(tmp_path):
    _, path = make(tmp_path)
    role_report = tmp_path / "client.json"
    role_report.write_text(json.dumps(json.load(open(path))["roles"][2]["report"]))
    r = run_nperf("report", str(role_report))
    assert r.returncode == 2 and "not an nperf run report (no schema_version" in r.stderr
