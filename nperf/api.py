"""Scripted runs on asyncio (uvloop): start a topology, follow it, get typed reports.

    import asyncio, nperf.api as api

    async def main():
        topo = api.Topology.from_dir("examples/memif/test3")
        async with api.Run(topo, duration=10) as run:
            async for sec in run.seconds():        # ipc.Second, one per role per second
                print(sec.line)
        print(run.result.ok, run.result.client_reports()[0].sustain.cps)

    asyncio.run(main())

Roles start as separate processes in order (load balancers, then servers,
then clients), each waited for until it reports `Ready` over IPC (and the
lbs until their links are up), never by sleeping a fixed time. The kernels
are compiled (or found in the cache) by one process first. The run ends when
every client has finished (or on `stop()`); then the others are stopped.
`nperf run DIR` is this API with a printer.
"""
import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field

import msgspec

from nperf import config, eal, ipc
from nperf.subproc import clean_prefix
from nperf.reports import ClientReport, Report

SCHEMA_VERSION = 1             # of RunResult as `--report` writes it; raised on incompatible changes
READY_TIMEOUT_S = 300          # a fresh machine compiles every kernel once (cached afterwards)
LINK_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
FAULT_GRACE_S = 0.2            # a role's exit is a fault unless nperf run is stopping within this time


class RunError(RuntimeError):
    """The topology could not start or ran into a failure; the message says which role."""


@dataclass
class RoleSpec:
    kind: str                     # "lb" | "server" | "client"
    path: str                     # its config file
    name: str                     # as the role names itself: "<kind> <file stem>"
    args: list[str] = field(default_factory=list)


class RoleResult(msgspec.Struct):
    name: str
    kind: str
    config: str
    status: int
    report: Report | None
    configuration: dict = {}                 # the config file as nperf read it (defaults filled in)
    per_second: list[dict[str, float | str]] = []   # `elapsed` and the fields of each IPC Second


class RunResult(msgspec.Struct, kw_only=True):
    """What `nperf run --report` writes (see SCHEMA_VERSION and the README's "Run report")."""
    schema_version: int = SCHEMA_VERSION
    ok: bool
    roles: list[RoleResult]
    faults: list[str] = []          # roles that ended before they were stopped, and why

    def client_reports(self) -> list[ClientReport]:
        return [r.report for r in self.roles if isinstance(r.report, ClientReport)]


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


class Topology:
    """The roles of one test, in start order."""

    def __init__(self, roles: list[RoleSpec], files: tempfile.TemporaryDirectory | None = None):
        if not any(r.kind == "client" for r in roles):
            raise RunError("a topology needs at least one client (c*.json)")
        self.roles = roles
        self._files = files             # from_configs' directory: removed with the topology

    @classmethod
    def from_dir(cls, directory: str, client_args: list[str] | None = None) -> "Topology":
        """lb_s*.json, lb_c*.json, then s*.json servers and c*.json clients (spec section 5)."""
        files = sorted(glob.glob(os.path.join(directory, "*.json")))
        if not files:
            raise RunError(f"{directory}: no configuration files (*.json)")
        lbs = [f for f in files if _stem(f).startswith("lb")]
        lbs.sort(key=lambda f: (not _stem(f).startswith("lb_s"), f))   # the memif master first
        servers = [f for f in files if _stem(f).startswith("s")]
        clients = [f for f in files if _stem(f).startswith("c")]
        for f in files:
            config.load_any(f)        # every file is checked before anything starts
        roles = [RoleSpec("lb", f, f"lb {_stem(f)}") for f in lbs]
        roles += [RoleSpec("server", f, f"server {_stem(f)}") for f in servers]
        roles += [RoleSpec("client", f, f"client {_stem(f)}", list(client_args or [])) for f in clients]
        return cls(roles)

    @classmethod
    def from_configs(cls, lbs: dict[str, object] = (), servers: dict[str, object] = (),
                     clients: dict[str, object] = (), client_args: list[str] | None = None) -> "Topology":
        """Config objects built in Python (Structs or plain dicts), by file stem: written to a temp dir
        that lives as long as the topology."""
        files = tempfile.TemporaryDirectory(prefix="nperf-topology-")
        d = files.name
        for stem, cfg in {**dict(lbs), **dict(servers), **dict(clients)}.items():
            with open(os.path.join(d, f"{stem}.json"), "wb") as f:
                f.write(msgspec.json.encode(cfg) if isinstance(cfg, msgspec.Struct) else json.dumps(cfg).encode())
        roles = [RoleSpec("lb", os.path.join(d, f"{k}.json"), f"lb {k}") for k in dict(lbs)]
        roles += [RoleSpec("server", os.path.join(d, f"{k}.json"), f"server {k}") for k in dict(servers)]
        roles += [RoleSpec("client", os.path.join(d, f"{k}.json"), f"client {k}", list(client_args or []))
                  for k in dict(clients)]
        for r in roles:
            config.load_any(r.path)
        return cls(roles, files)


class _Proc:
    def __init__(self, spec: RoleSpec, proc: asyncio.subprocess.Process, log: str):
        self.spec = spec
        self.proc = proc
        self.log = log
        self.ready = asyncio.Event()
        self.link_up = asyncio.Event()
        self.done: ipc.Done | None = None
        self.per_second: list[dict] = []
        self.configuration = msgspec.to_builtins(config.load_any(spec.path)[1])

    def tail(self, n: int = 15) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Run:
    """One run of a topology; use as `async with Run(topo) as run:`."""

    def __init__(self, topology: Topology, duration: float | None = None, python: str = sys.executable,
                 say=None, keep_going: bool = False):
        self.topology = topology
        self.duration = duration
        self.python = python
        self.say = say or (lambda line: None)        # progress (kernel compilation) and faults, as lines
        self.keep_going = keep_going                 # a role that dies does not stop the others
        self.faults: list[str] = []
        self._fault = asyncio.Event()                # set when a fault stops the run
        self._stopping = False
        self._watchers: list[asyncio.Task] = []
        self.dir = tempfile.mkdtemp(prefix="nperf-run-")
        os.chmod(self.dir, 0o700)
        self.sock = os.path.join(self.dir, "ipc.sock")
        self.procs: dict[str, _Proc] = {}
        self._queue: asyncio.Queue[ipc.Second | None] = asyncio.Queue()
        self._server: asyncio.base_events.Server | None = None
        self.result: RunResult | None = None

    async def __aenter__(self) -> "Run":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._warm_up()
        self._server = await asyncio.start_unix_server(self._serve, path=self.sock)
        try:
            for spec in self.topology.roles:
                if spec.kind != "lb":       # the lbs' links come up once all lbs run (memif master and slave)
                    for p in self.procs.values():
                        await self._wait(p, p.link_up, LINK_TIMEOUT_S, "bring its link up")
                await self._launch(spec)
        except BaseException:
            await self.stop()
            raise

    async def _warm_up(self) -> None:
        """Kernels compiled once, by one process, before any role starts (see nperf.warmup);
        its progress lines go to `say`."""
        proc = await asyncio.create_subprocess_exec(*self._python_m("nperf.warmup"), stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out = []
        while line := await proc.stdout.readline():
            out.append(line.decode(errors="replace"))
            if line.startswith(b"compiling"):
                self.say(out[-1].rstrip())
        if await proc.wait() != 0:
            raise RunError(f"compiling the kernels failed:\n{''.join(out)[-3000:]}")

    def _python_m(self, module: str) -> list[str]:
        """`python -P -m module`: -P keeps the working directory off sys.path, so a source
        checkout there cannot shadow the installed nperf."""
        return [self.python, "-P", "-m", module]

    async def _launch(self, spec: RoleSpec) -> None:
        log = os.path.join(self.dir, spec.name.replace(" ", "_") + ".log")
        argv = [*self._python_m("nperf"), spec.kind, spec.path, "--ipc", self.sock, *spec.args]
        if spec.kind == "client" and self.duration:
            argv += ["--duration", str(self.duration)]
        with open(log, "wb") as out:
            proc = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=asyncio.subprocess.STDOUT,
                                                        stdin=asyncio.subprocess.DEVNULL)
        p = self.procs[spec.name] = _Proc(spec, proc, log)
        self._watchers.append(asyncio.create_task(self._watch(p)))
        await self._wait(p, p.ready, READY_TIMEOUT_S, "report ready")
        if spec.kind != "lb":
            p.link_up.set()             # only an lb reports a link

    async def _wait(self, p: _Proc, event: asyncio.Event, timeout: float, what: str) -> None:
        exited = asyncio.create_task(p.proc.wait())
        waiting = asyncio.create_task(event.wait())
        await asyncio.wait({exited, waiting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        waiting.cancel()
        if not event.is_set():
            why = f"exited with status {p.proc.returncode}" if p.proc.returncode is not None \
                else f"did not {what} within {timeout:.0f} s"
            raise RunError(f"{p.spec.name} ({p.spec.path}) {why}:\n{p.tail()}")

    async def _watch(self, p: _Proc) -> None:
        """A role that ends before the run stops it is a fault, noticed as it happens (the process's
        exit, not a poll): named with its status or signal and its last log lines. A client that
        sent its final report and exited is done, not a fault."""
        rc = await p.proc.wait()
        if self._stopping or not p.ready.is_set() or (p.spec.kind == "client" and p.done is not None):
            return                          # stopped by us; failed to start (start() says why); finished
        if p.done is not None:              # it stopped cleanly: a Ctrl-C reaches every role and nperf run at once
            await asyncio.sleep(FAULT_GRACE_S)
            if self._stopping or self._fault.is_set():
                return
        how = f"was killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
        fault = f"{p.spec.name} {how} during the run" + ("" if self.keep_going else "; stopping the others")
        self.say(f"error: {fault}; last lines of its log:\n{p.tail(10)}")
        if self.keep_going:
            self.faults.append(fault)
        else:
            self.interrupt(fault)

    def interrupt(self, why: str) -> None:
        """End the run now (a fault, Ctrl-C): seconds() ends, wait() stops every role; `why` is kept
        in the result's faults."""
        self.faults.append(why)
        self._fault.set()
        self._queue.put_nowait(None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (msg := await ipc.read(reader)) is not None:
                p = self.procs.get(msg.name)
                if p is None:
                    continue
                if isinstance(msg, ipc.Ready):
                    p.ready.set()
                elif isinstance(msg, ipc.Second):
                    if msg.fields.get("link", 1):
                        p.link_up.set()
                    p.per_second.append({"elapsed": msg.elapsed, **msg.fields})
                    self._queue.put_nowait(msg)
                elif isinstance(msg, ipc.Done):
                    p.done = msg
        finally:
            writer.close()

    async def seconds(self):
        """Every role's per-second statistics as they arrive, until every client has finished."""
        clients = [p for p in self.procs.values() if p.spec.kind == "client"]
        finished = asyncio.gather(*(p.proc.wait() for p in clients))
        finished.add_done_callback(lambda _: self._queue.put_nowait(None))
        while (msg := await self._queue.get()) is not None:
            yield msg
        for msg in self.late_seconds():
            yield msg

    def late_seconds(self) -> list[ipc.Second]:
        """Seconds that arrived since `seconds()` last yielded: the other roles report until they are
        stopped, so a caller that keeps every second takes these after `wait()`."""
        out = []
        while not self._queue.empty():
            if (msg := self._queue.get_nowait()) is not None:
                out.append(msg)
        return out

    async def wait(self) -> RunResult:
        """Until every client has finished, or a role died (unless keep_going); then stop the rest and
        return the result."""
        clients = [p for p in self.procs.values() if p.spec.kind == "client"]
        done = asyncio.ensure_future(asyncio.gather(*(p.proc.wait() for p in clients)))
        fault = asyncio.ensure_future(self._fault.wait())
        await asyncio.wait({done, fault}, return_when=asyncio.FIRST_COMPLETED)
        fault.cancel()
        return await self.stop()

    async def stop(self) -> RunResult:
        """Stop every role (clients first, lbs last) and collect their reports."""
        if self.result is not None:
            return self.result
        self._stopping = True
        for p in reversed(list(self.procs.values())):
            await _terminate(p.proc)
        for w in self._watchers:
            w.cancel()
        for p in self.procs.values():
            _clean_primary(p)
        if self._server is not None:
            self._server.close()
            await asyncio.sleep(0)
        roles = []
        for p in self.procs.values():
            report = p.done.report if p.done else None
            status = p.proc.returncode if p.proc.returncode is not None else -1
            roles.append(RoleResult(p.spec.name, p.spec.kind, p.spec.path, status, report,
                                    p.configuration, p.per_second))
        ok = bool(roles) and not self.faults and all(r.status == 0 and r.report is not None for r in roles) and \
            all(r.responses_failed == 0 for r in self._clients(roles))
        self.result = RunResult(ok=ok, roles=roles, faults=list(self.faults))
        if ok:
            shutil.rmtree(self.dir, ignore_errors=True)   # otherwise the role logs stay for a look
        return self.result

    @staticmethod
    def _clients(roles: list[RoleResult]) -> list[ClientReport]:
        return [r.report for r in roles if isinstance(r.report, ClientReport)]

    def log_tail(self, name: str) -> str:
        return self.procs[name].tail() if name in self.procs else ""


def _clean_primary(p: _Proc) -> None:
    """What a DPDK primary may leave behind (its runtime directory, hugepage files and memif
    socket files), removed once every process of the run has stopped, so a new run starts clean.
    Not only a killed one: an lb stopped together with its workers (Ctrl-C reaches the whole
    process group) exits while they still map its hugepage files, so its own cleanup leaves them."""
    args = (p.configuration.get("dpdk_args") or p.configuration.get("dpdk", {}).get("args", "")).split()
    if eal.proc_type(args) != "primary":
        return
    clean_prefix(eal.file_prefix(args))
    for a in args:
        for kv in a.split(","):
            if kv.startswith("socket=") and "socket-abstract=no" in a:
                with contextlib.suppress(OSError):
                    os.unlink(kv.split("=", 1)[1])


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def run(topology: Topology, duration: float | None = None, on_second=None) -> RunResult:
    """Run a topology to its end; `on_second(ipc.Second)` sees every statistics line."""
    async with Run(topology, duration) as r:
        async for sec in r.seconds():
            if on_second:
                on_second(sec)
        return await r.wait()
