"""`nperf bench dperf`'s reading of dperf: its output, and when a rung of the rate ladder is served."""
from nperf.bench.dperf import parse_dperf, served

OUTPUT = """\
seconds 3                  cpuUsage 41
skOpen 400006              skClose 400006             http2XX 400006
seconds 4                  cpuUsage 43
skOpen 399998              skClose 399998             http2XX 399,998
Total Numbers
synRt 12                   dropTx 3                   skErr 0
"""


def test_dperf_output_is_read_per_second_and_in_total():
    seconds, total = parse_dperf(OUTPUT)
    assert seconds == [{"second": 3, "cpuUsage": 41.0, "skOpen": 400006.0, "skClose": 400006.0, "http2XX": 400006.0},
                       {"second": 4, "cpuUsage": 43.0, "skOpen": 399998.0, "skClose": 399998.0, "http2XX": 399998.0}]
    assert total == {"synRt": 12.0, "dropTx": 3.0, "skErr": 0.0}


def run(rate=400_000, errors=0, drops=0, retrans=0):
    return {"rate": rate, "errors": errors, "drops": drops, "retrans": retrans, "busy": 0.4}


def test_a_rung_is_served_with_losses_up_to_one_connection_in_a_thousand():
    # 400k/s offered for 10 s: 4,000 connections may see a drop or a retransmission, not 4,001
    assert served(run(drops=2_000, retrans=2_000), 400_000, 10)
    assert not served(run(drops=2_000, retrans=2_001), 400_000, 10)


def test_a_rung_is_not_served_with_an_error_or_below_the_offered_rate():
    assert served(run(rate=396_000), 400_000, 10)
    assert not served(run(rate=395_999), 400_000, 10)
    assert not served(run(errors=1), 400_000, 10)
