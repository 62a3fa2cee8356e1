"""`nperf` command line: lb | server | check | bench.

Bad input ends with one `error:` line and a non-zero status, never a
traceback: exit 2 for configuration and usage errors, 1 for failures at run
time (DPDK could not start, a port or ring is missing).
"""
import argparse
import sys

from nperf import check as check_mod


def _lb(args) -> int:
    from nperf import config
    from nperf.roles import controller
    from nperf.roles.lb import Lb
    cfg, warnings = config.load_lb(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    lb = Lb(cfg, args.config, core=args.core, ring_size=args.ring_size, pool_size=args.pool_size,
            loopback=args.loopback, report=args.report, say=lambda s: print(s, flush=True))
    try:
        lb.start()
    except BaseException:
        lb.finish()
        raise
    return controller.run(lb, args.ipc)


def _worker(role):
    def run(args) -> int:
        from nperf import config
        from nperf.roles import controller
        from nperf.roles.worker import Worker
        from nperf.worker_stack import StackOptions
        cfg, warnings = config.load_worker(args.config)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        opts = StackOptions(max_conns=args.max_conns, time_wait_ms=args.time_wait_ms,
                            idle_timeout_s=args.idle_timeout, loss=args.loss)
        w = Worker(cfg, role, args.config, core=args.core, opts=opts, report=args.report,
                   say=lambda s: print(s, flush=True))
        try:
            w.start()
        except BaseException:
            w.finish()
            raise
        return controller.run(w, args.ipc)
    return run


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
    lb.add_argument("--ring-size", type=int, default=1024, help="entries per worker ring (power of 2)")
    lb.add_argument("--pool-size", type=int, help="packet buffers in the pool")
    lb.add_argument("--loopback", action="store_true",
                    help="benchmark mode: each worker's RX ring feeds its own TX ring (no worker process)")
    lb.set_defaults(func=_lb)

    srv = sub.add_parser("server", help="run an HTTP server on nperf's own TCP stack")
    _worker_options(srv)
    srv.set_defaults(func=_worker("server"))

    b = sub.add_parser("bench", help="micro-benchmarks that print figures")
    b.add_argument("what", choices=["lb"])
    b.add_argument("--rounds", type=int, default=3, help="alternating nperf/peer rounds")
    b.add_argument("--seconds", type=float, default=5.0, help="length of one measured run")
    b.set_defaults(func=_bench)
    return p


def _worker_options(p) -> None:
    p.add_argument("config")
    p.add_argument("--core", type=int, help="CPU to run on (default: the file's core_id)")
    p.add_argument("--report", help="write a JSON summary here at exit")
    p.add_argument("--ipc", help=argparse.SUPPRESS)          # set by `nperf run`
    p.add_argument("--max-conns", type=int, default=1_000_000, help="connection table size [1000000]")
    p.add_argument("--time-wait-ms", type=int, default=1000, help="TIME_WAIT length [1000]")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="close connections idle this long, s [60]")
    p.add_argument("--loss", type=float, default=0.0,
                   help="test knob: drop this fraction of received frames at random [0]")


def main(argv=None) -> int:
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
    except Exception as e:  # DPDK failures: one line, no traceback
        from nperf.bindings.dpdk import DpdkError
        if isinstance(e, DpdkError):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
