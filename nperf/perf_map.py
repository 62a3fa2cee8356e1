"""Name the JIT-compiled kernels for `perf` (opt-in: NPERF_PERF_MAP=1).

`perf record` shows Numba's machine code as anonymous `[JIT] tid N`
addresses: llvmlite's LLVM writes no perf map. A role started with
NPERF_PERF_MAP=1 writes `/tmp/perf-<pid>.map` (the format `perf report` and
`perf top` read: `START SIZE name`, hex) once its kernels are loaded, with
one line per compiled function: every kernel and every non-inlined callee
linked into it. Inlined helpers (`jit.inline`) have no code of their own and
count towards their caller. A function's size is the distance to the next
function's start, so the map covers every byte of JIT code.

With NPERF_PERF_CODE=DIR as well, the functions' machine code is written to
DIR, so that `benchmarks/annotate.py` can show where inside a kernel the
samples fall (perf itself cannot disassemble JIT code without a jitdump).

Names are `module.function` from Numba's mangled symbol (for example
`tcp.tcp_output`); the same kernel linked into two callers' libraries appears
twice under one name, which `perf report --sort sym` adds up.

    NPERF_PERF_MAP=1 nperf run examples/memif/test4 &
    perf record -a -g -o /tmp/perf.data -- sleep 10
    perf report -i /tmp/perf.data --sort comm,sym --no-children
"""
import os
import sys

ENV = "NPERF_PERF_MAP"
MAX_SIZE = 1 << 20


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def readable(symbol: str) -> str:
    """`_ZN5nperf7kernels3tcp4emitB3v..E...` -> `tcp.emit` (wrappers keep their prefix)."""
    prefix = ""
    for wrapper in ("cfunc.", "cpython."):
        if symbol.startswith(wrapper):
            prefix, symbol = prefix + wrapper, symbol[len(wrapper):]
    if symbol.startswith("_ZN7cpython"):
        prefix, symbol = prefix + "cpython.", "_ZN" + symbol[len("_ZN7cpython"):]
    if not symbol.startswith("_ZN"):
        return prefix + symbol
    parts, i = [], 3
    while i < len(symbol) and symbol[i].isdigit():
        j = i
        while symbol[j].isdigit():
            j += 1
        n = int(symbol[i:j])
        parts.append(symbol[j:j + n])
        i = j + n
    parts = [p for p in parts if p not in ("nperf", "kernels")]
    return prefix + ".".join(parts)


def _libraries():
    """Every compiled library of every nperf kernel loaded in this process."""
    from numba.core.registry import CPUDispatcher
    for name, module in list(sys.modules.items()):
        if not name.startswith("nperf.") or module is None:
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, CPUDispatcher) and obj.__module__ == name:
                for cres in obj.overloads.values():
                    yield cres.library


def entries() -> list[tuple[int, int, str]]:
    """(start, size, name) of every JIT function found, sorted by address."""
    starts: dict[int, str] = {}
    for lib in _libraries():
        engine = lib._codegen._engine
        for module in (lib._final_module, lib._shared_module):
            if module is None:
                continue
            for fn in module.functions:
                if fn.is_declaration:
                    continue
                addr = engine.get_function_address(fn.name)
                if addr:
                    starts.setdefault(addr, readable(fn.name))
    ordered = sorted(starts.items())
    out = []
    for k, (addr, name) in enumerate(ordered):
        nxt = ordered[k + 1][0] if k + 1 < len(ordered) else addr + 4096
        out.append((addr, min(nxt - addr, MAX_SIZE), name))
    return out


def _mappings() -> list[tuple[int, int]]:
    """This process's mapped address ranges (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        return [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in f]


def dump_code(directory: str) -> int:
    """Write each JIT function's machine code to DIR/<start-hex>.bin (for an annotated profile:
    benchmarks/annotate.py disassembles them and places perf samples on instructions)."""
    import ctypes
    os.makedirs(directory, exist_ok=True)
    entries_ = entries()
    maps = _mappings()
    for addr, size, name in entries_:
        end = next((hi for lo, hi in maps if lo <= addr < hi), addr)    # two functions' code may lie in
        with open(os.path.join(directory, f"{addr:x}.bin"), "wb") as f:    # different mappings: read none
            f.write(ctypes.string_at(addr, min(size, end - addr)))       # past the one this function is in
    with open(os.path.join(directory, "map"), "w") as f:
        for addr, size, name in entries_:
            f.write(f"{addr:x} {size:x} {name}\n")
    return len(entries_)


def write(path: str | None = None) -> str | None:
    """Write the map if NPERF_PERF_MAP is set (or a path is given); returns the path written."""
    if path is None:
        if not enabled():
            return None
        path = f"/tmp/perf-{os.getpid()}.map"
    with open(path, "w") as f:
        for addr, size, name in entries():
            f.write(f"{addr:x} {size:x} {name}\n")
    if os.environ.get("NPERF_PERF_CODE"):
        dump_code(os.environ["NPERF_PERF_CODE"])
    return path
