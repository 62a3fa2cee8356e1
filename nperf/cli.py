"""`nperf` command line: lb | server | client | run | report | compare | doctor | check | bench.

Bad input ends with one `error:` line and a non-zero status, never a
traceback: exit 2 for configuration and usage errors, 1 for failures at run
time (DPDK could not start, a port or ring is missing).
"""
import argparse
import os
import sys

from nperf import check as check_mod
from nperf.series import series_path
from nperf.slo import parse as slo_parse


def _lb(args) -> int:
    from nperf import config
    from nperf.roles.lb import Lb
    cfg, warnings = config.load_lb(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for text in args.impair:
        cfg = config.impair_option(text, cfg)
    lb = Lb(cfg, args.config, core=args.core, ring_size=args.ring_size, pool_size=args.pool_size,
            loopback=args.loopback, report=args.report, say=_say, pcap=args.pcap, pcap_count=args.pcap_count)
    return _start_and_run(lb, args)


def _say(line: str) -> None:
    print(line, flush=True)


def _start_and_run(role, args) -> int:
    """Start a role (cleaning up if that fails) and run it under the asyncio controller.
    `--series` and `--metrics-port` are opened first, so that a bad one stops nothing."""
    from nperf.metrics import Endpoint
    from nperf.roles import controller
    from nperf.series import SeriesWriter
    series = SeriesWriter(args.series) if args.series else None
    metrics = Endpoint(args.metrics_port) if args.metrics_port is not None else None
    try:
        role.start()
    except BaseException:
        role.finish()
        if series:
            series.close()
        raise
    return controller.run(role, args.ipc, series=series, metrics=metrics, metrics_hold=args.metrics_hold)


def _worker(role):
    def run(args) -> int:
        from nperf import config
        from nperf.roles.worker_stack import StackOptions, check_addresses
        if role == "server":
            from nperf.roles.server import Server as Role
        else:
            from nperf.roles.client import Client as Role
        cfg, warnings = config.load_worker(args.config)
        check_addresses(cfg, role, args.config)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        opts = StackOptions(max_conns=args.max_conns, time_wait_ms=args.time_wait_ms,
                            idle_timeout_s=args.idle_timeout, loss=args.loss, syn_retries=args.syn_retries,
                            sack=not args.no_sack, timestamps=not args.no_timestamps,
                            duration_s=getattr(args, "duration", 0.0) or 0.0,
                            concurrency=getattr(args, "concurrency", 0) or 0,
                            peer_time_wait_s=getattr(args, "peer_time_wait", 60.0))
        return _start_and_run(Role(cfg, args.config, core=args.core, opts=opts, report=args.report, say=_say,
                                   pcap=args.pcap, pcap_count=args.pcap_count), args)
    return run


def _run(args) -> int:
    from nperf import runner
    return runner.main(args.dir, duration=args.duration, report=args.report, series=args.series, slos=args.slo,
                       metrics_port=args.metrics_port, metrics_hold=args.metrics_hold, quiet=args.quiet,
                       keep_going=args.keep_going)


def _report(args) -> int:
    from nperf import report_file, runner
    result = report_file.load(args.file)
    print(runner.summary(result))
    if args.html:
        from nperf import report_html
        report_html.write(result, runner.summary(result), args.html)
        print(f"wrote {args.html}")
    if args.png:
        from nperf import report_png
        for path in report_png.write(result, args.png):
            print(f"wrote {path}")
    return 0


def _compare(args) -> int:
    from nperf import compare, headline, report_file, slo
    a, b = report_file.load(args.a), report_file.load(args.b)
    print(compare.table(a, b, args.tolerance / 100, (args.a, args.b)))
    lines, ok = slo.evaluate(args.slo, headline.figures(b))
    for line in lines:
        print(line)
    return 0 if ok else 1


def _doctor(args) -> int:
    from nperf import doctor
    return doctor.main()


def _bench(args) -> int:
    from nperf.bench import run_bench
    return run_bench(args.what, args)


def _cert(args) -> int:
    from nperf import tls
    names = args.name or ["localhost"]
    try:
        cert, key = tls.self_signed(args.dir, names, args.days, args.force)
    except tls.CertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {cert} and {key} (self-signed, for {', '.join(names)}, {args.days} days)")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nperf", description="HTTP/TCP performance tests on DPDK")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="validate configuration files (a directory: its *.json)")
    c.add_argument("files", nargs="+", metavar="FILE|DIR")
    c.set_defaults(func=lambda a: check_mod.run_check(a.files))

    lb = sub.add_parser("lb", help="run a load balancer (DPDK primary owning a port)")
    lb.add_argument("config")
    lb.add_argument("--core", type=int, help="CPU to run on (default: the file's core_id)")
    lb.add_argument("--report", help="write a JSON summary here at exit")
    lb.add_argument("--ipc", help=argparse.SUPPRESS)        # set by `nperf run`
    lb.add_argument("--ring-size", type=int, default=4096, help="entries per worker ring (power of 2) [4096]")
    lb.add_argument("--pool-size", type=int, help="packet buffers in the pool")
    lb.add_argument("--loopback", action="store_true",
                    help="benchmark mode: each worker's RX ring feeds its own TX ring (no worker process)")
    lb.add_argument("--impair", action="append", default=[], metavar="DIRECTION:KEY=VALUE,...",
                    help="impair frames to_workers (from the port) or to_port (from the workers): loss, corrupt, "
                         "duplicate, reorder (percent), depth (frames), delay_ms, jitter_ms; e.g. "
                         "to_port:loss=2,reorder=10,delay_ms=1,jitter_ms=0.5 (over the file's impair section)")
    _output_options(lb)
    _capture_options(lb)
    lb.set_defaults(func=_lb)

    srv = sub.add_parser("server", help="run an HTTP server on nperf's own TCP stack")
    _worker_options(srv, idle=60.0)
    srv.set_defaults(func=_worker("server"))

    cli = sub.add_parser("client", help="run the HTTP load generator on nperf's own TCP stack")
    _worker_options(cli, idle=10.0)
    cli.add_argument("--duration", type=float, default=0.0,
                     help="fit ramp-up, sustain and ramp-down into a run of this many seconds")
    cli.add_argument("--concurrency", type=int, default=0,
                     help="TOTAL_CONNECTIONS: connections open at once [min(value, 1000)]")
    cli.add_argument("--peer-time-wait", type=float, default=60.0, metavar="S",
                     help="how long the peers hold TIME_WAIT, for source-pair reuse warnings and counts "
                          "(Linux: 60) [60]")
    cli.set_defaults(func=_worker("client"))

    r = sub.add_parser("run", help="start a whole topology (lbs, servers, clients) and show its statistics")
    r.add_argument("dir", help="directory with lb_s.json, lb_c.json, s*.json, c*.json (or just s.json and c.json)")
    r.add_argument("--duration", type=float, help="fit the clients' ramp-up, sustain and ramp-down into S seconds")
    r.add_argument("--report", help="write every role's report here as one JSON (schema_version 1)")
    _output_options(r)
    r.add_argument("--slo", action="append", default=[], metavar="RULE", type=_checked(slo_parse),
                   help="threshold on the result, repeatable, e.g. 'p99<5ms' 'fail_rate<0.1%%' 'cps>100000': "
                        "exit status 1 if one fails")
    r.add_argument("--quiet", action="store_true", help="print only the summary")
    r.add_argument("--keep-going", action="store_true",
                   help="a role that dies does not stop the run (it is still reported, and the run fails)")
    r.set_defaults(func=_run)

    rep = sub.add_parser("report", help="show a run report again (summary, HTML, PNG charts)")
    rep.add_argument("file", help="a report written by `nperf run --report`")
    rep.add_argument("--html", metavar="FILE", help="write one self-contained HTML file with the charts")
    rep.add_argument("--png", metavar="DIR", help="write the charts as PNG files into DIR")
    rep.set_defaults(func=_report)

    cmp = sub.add_parser("compare", help="two run reports side by side, with a verdict per figure")
    cmp.add_argument("a", help="the baseline report")
    cmp.add_argument("b", help="the report judged (--slo applies to it)")
    cmp.add_argument("--tolerance", type=float, default=5.0,
                     help="a change within this %% of the larger value is 'same' [5]")
    cmp.add_argument("--slo", action="append", default=[], metavar="RULE", type=_checked(slo_parse),
                     help="threshold on B, as for `run`")
    cmp.set_defaults(func=_compare)

    doc = sub.add_parser("doctor", help="check hugepages, DPDK, privileges, CPUs and the kernel cache")
    doc.set_defaults(func=_doctor)

    crt = sub.add_parser("cert", help="write a self-signed test certificate and key (server.crt, server.key)")
    crt.add_argument("dir", help="directory to write them into (created if missing)")
    crt.add_argument("--name", action="append", metavar="NAME",
                     help="a host name or IP address the certificate is for, repeatable [localhost]")
    crt.add_argument("--days", type=_checked(_positive), default=825, help="validity [825]")
    crt.add_argument("--force", action="store_true", help="replace existing files")
    crt.set_defaults(func=_cert)

    b = sub.add_parser("bench", help="micro-benchmarks that print figures")
    b.add_argument("what", choices=["lb", "tcp", "e2e", "results", "dperf", "soak", "sack", "ipv6", "https"])
    b.add_argument("--rounds", type=int, default=3, help="alternating nperf/peer rounds")
    b.add_argument("--seconds", type=float, default=5.0, help="length of one measured run")
    b.add_argument("--dperf", metavar="PATH", help="dperf: the dperf binary (one that takes a vdev port)")
    b.add_argument("--worker-args", default="", metavar="ARGS",
                   help="dperf, ipv6: more options for nperf's client and server, e.g. '--no-timestamps'")
    b.add_argument("--dperf-cps", default="400k,500k,600k,700k,800k,1m,1.2m,1.4m",
                   help="dperf: offered connection rates to climb, ascending [400k,500k,...,1.4m]")
    b.add_argument("--minutes", type=_checked(_positive), default=10, help="soak: sustain minutes [10]")
    b.add_argument("--mib", type=_checked(_positive), default=100, help="sack: the body to fetch, MiB [100]")
    b.set_defaults(func=_bench)
    return p


def _checked(parse):
    """An argparse type from a parser that raises ValueError: its message becomes argparse's error line."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = parse.__name__
    return convert


def _output_options(p) -> None:
    p.add_argument("--series", metavar="FILE", type=_checked(series_path),
                   help="write every second's figures here: .csv, or .jsonl/.json for JSON lines")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus /metrics on this TCP port")
    p.add_argument("--metrics-hold", type=float, default=0.0, metavar="S",
                   help="after the end, keep /metrics up until scraped once more, at most S seconds [0]")


def _capture_options(p) -> None:
    p.add_argument("--pcap", metavar="FILE", help="write the first frames in and out here (pcapng)")
    p.add_argument("--pcap-count", type=_checked(_positive), default=1000, metavar="N",
                   help="with --pcap: how many frames [1000]")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _retries(text: str) -> int:
    if not text.isdigit() or int(text) > 30:
        raise ValueError(f"expected a whole number from 0 to 30, got {text!r}")
    return int(text)


def _worker_options(p, idle: float) -> None:
    p.add_argument("config")
    p.add_argument("--core", type=int, help="CPU to run on (default: the file's core_id)")
    p.add_argument("--report", help="write a JSON summary here at exit")
    p.add_argument("--ipc", help=argparse.SUPPRESS)          # set by `nperf run`
    p.add_argument("--max-conns", type=int, default=1_000_000, help="connection table size [1000000]")
    p.add_argument("--time-wait-ms", type=int, default=1000, help="TIME_WAIT length [1000]")
    p.add_argument("--idle-timeout", type=float, default=idle,
                   help=f"close connections idle this long (a client's response timeout), s [{idle:g}]")
    p.add_argument("--syn-retries", type=_checked(_retries), default=5, metavar="N",
                   help="SYN retransmissions before a connect fails as connect_timeout (Linux: "
                        "tcp_syn_retries; the first waits 1 s, each next twice as long) [5]")
    p.add_argument("--no-sack", action="store_true",
                   help="neither offer nor accept selective acknowledgments (RFC 2018; on by default)")
    p.add_argument("--no-timestamps", action="store_true",
                   help="neither offer nor accept TCP timestamps (RFC 7323; on by default)")
    p.add_argument("--loss", type=float, default=0.0,
                   help="test knob: drop this fraction of frames at random, each way [0]")
    _output_options(p)
    _capture_options(p)


SIGPIPE_STATUS = 128 + 13      # how a shell shows a process that SIGPIPE ended


def _reader_gone() -> int:
    """Whoever read our output stopped (`nperf check DIR | head`): stop as GNU tools do, quietly.
    Standard output goes to /dev/null so that the interpreter's last flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return SIGPIPE_STATUS


def main(argv=None) -> int:
    from nperf.api import RunError
    from nperf.config import ConfigError
    from nperf.cores import CoreError
    from nperf.histogram import HistogramError
    from nperf.metrics import MetricsError
    from nperf.report_file import ReportFileError
    from nperf.series import SeriesError
    args = _parser().parse_args(argv)
    if args.cmd in ("lb", "server", "client"):
        from nperf.roles import controller
        controller.catch_stop_signals()
    try:
        status = args.func(args)
        sys.stdout.flush()          # a reader gone shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        return _reader_gone()
    except (ConfigError, CoreError, SeriesError, MetricsError, ReportFileError, HistogramError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # DPDK failures: one line, no traceback
        from nperf.bindings.dpdk import DpdkError
        if isinstance(e, DpdkError):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
