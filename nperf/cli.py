"""`nperf` command line: lb | server | client | run | check | bench.

Bad input ends with one `error:` line and a non-zero status, never a
traceback: exit 2 for configuration and usage errors, 1 for failures at run
time (DPDK could not start, a port or ring is missing).
"""
import argparse
import sys

from nperf import check as check_mod


def _lb(args) -> int:
    from nperf import config
    from nperf.roles.lb import Lb
    cfg, warnings = config.load_lb(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    lb = Lb(cfg, args.config, core=args.core, ring_size=args.ring_size, pool_size=args.pool_size,
            loopback=args.loopback, report=args.report, say=_say)
    return _start_and_run(lb, args.ipc)


def _say(line: str) -> None:
    print(line, flush=True)


def _start_and_run(role, ipc) -> int:
    """Start a role (cleaning up if that fails) and run it under the asyncio controller."""
    from nperf.roles import controller
    try:
        role.start()
    except BaseException:
        role.finish()
        raise
    return controller.run(role, ipc)


def _worker(role):
    def run(args) -> int:
        from nperf import config
        from nperf.worker_stack import StackOptions
        if role == "server":
            from nperf.roles.server import Server as Role
        else:
            from nperf.roles.client import Client as Role
        cfg, warnings = config.load_worker(args.config)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        opts = StackOptions(max_conns=args.max_conns, time_wait_ms=args.time_wait_ms,
                            idle_timeout_s=args.idle_timeout, loss=args.loss,
                            duration_s=getattr(args, "duration", 0.0) or 0.0,
                            concurrency=getattr(args, "concurrency", 0) or 0)
        return _start_and_run(Role(cfg, args.config, core=args.core, opts=opts, report=args.report, say=_say),
                              args.ipc)
    return run


def _run(args) -> int:
    from nperf import runner
    return runner.main(args.dir, duration=args.duration, report=args.report)


def _bench(args) -> int:
    from nperf.bench import run_bench
    return run_bench(args.what, args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nperf", description="HTTP/TCP performance tests on DPDK")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="validate configuration files")
    c.add_argument("files", nargs="+")
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
    cli.set_defaults(func=_worker("client"))

    r = sub.add_parser("run", help="start a whole topology (lbs, servers, clients) and show its statistics")
    r.add_argument("dir", help="directory with lb_s.json, lb_c.json, s*.json, c*.json (or just s.json and c.json)")
    r.add_argument("--duration", type=float, help="fit the clients' ramp-up, sustain and ramp-down into S seconds")
    r.add_argument("--report", help="write every role's report here as one JSON")
    r.set_defaults(func=_run)

    b = sub.add_parser("bench", help="micro-benchmarks that print figures")
    b.add_argument("what", choices=["lb", "tcp", "e2e"])
    b.add_argument("--rounds", type=int, default=3, help="alternating nperf/peer rounds")
    b.add_argument("--seconds", type=float, default=5.0, help="length of one measured run")
    b.set_defaults(func=_bench)
    return p


def _worker_options(p, idle: float) -> None:
    p.add_argument("config")
    p.add_argument("--core", type=int, help="CPU to run on (default: the file's core_id)")
    p.add_argument("--report", help="write a JSON summary here at exit")
    p.add_argument("--ipc", help=argparse.SUPPRESS)          # set by `nperf run`
    p.add_argument("--max-conns", type=int, default=1_000_000, help="connection table size [1000000]")
    p.add_argument("--time-wait-ms", type=int, default=1000, help="TIME_WAIT length [1000]")
    p.add_argument("--idle-timeout", type=float, default=idle,
                   help=f"close connections idle this long (a client's response timeout), s [{idle:g}]")
    p.add_argument("--loss", type=float, default=0.0,
                   help="test knob: drop this fraction of frames at random, each way [0]")


def main(argv=None) -> int:
    from nperf.api import RunError
    from nperf.config import ConfigError
    from nperf.cores import CoreError
    args = _parser().parse_args(argv)
    if args.cmd in ("lb", "server", "client"):
        from nperf.roles import controller
        controller.catch_stop_signals()
    try:
        return args.func(args)
    except (ConfigError, CoreError) as e:
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
