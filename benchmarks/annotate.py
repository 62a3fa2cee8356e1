"""Where inside the JIT kernels perf's samples fall: an annotated listing per hot function.

    NPERF_PERF_MAP=1 NPERF_PERF_CODE=/tmp/code <run nperf or a benchmark> &
    perf record -a -o /tmp/perf.data -- sleep 5
    python benchmarks/annotate.py /tmp/perf.data /tmp/code PID [--top 3] [--lines 40]

Reads `perf script` sample addresses of process PID, finds the function
each falls in (the map written by nperf.perf_map), disassembles that
function's saved machine code with objdump, and prints its hottest
instructions with their share of the function's samples. A developer tool;
it prints figures and asserts nothing.
"""
import argparse
import collections
import os
import subprocess


def functions(code_dir: str) -> list[tuple[int, int, str]]:
    out = []
    with open(os.path.join(code_dir, "map")) as f:
        for line in f:
            a, n, name = line.split(maxsplit=2)
            out.append((int(a, 16), int(n, 16), name.strip()))
    return sorted(out)


def samples(perf_data: str, pid: int) -> list[int]:
    r = subprocess.run(["perf", "script", "-i", perf_data, "--pid", str(pid), "-F", "ip"],
                       capture_output=True, text=True, check=True)
    return [int(x, 16) for x in r.stdout.split()]


def disassemble(code_dir: str, start: int) -> dict[int, str]:
    r = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f"--adjust-vma={start:#x}",
                        os.path.join(code_dir, f"{start:x}.bin")], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        head, _, rest = line.partition(":\t")
        try:
            addr = int(head.strip(), 16)
        except ValueError:
            continue
        out[addr] = rest.split("\t")[-1].strip()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("perf_data")
    p.add_argument("code_dir")
    p.add_argument("pid", type=int)
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--lines", type=int, default=40)
    a = p.parse_args()
    funcs = functions(a.code_dir)
    starts = [f[0] for f in funcs]
    import bisect
    per_func = collections.Counter()
    per_ip = collections.Counter()
    total = 0
    for ip in samples(a.perf_data, a.pid):
        total += 1
        k = bisect.bisect_right(starts, ip) - 1
        if k >= 0 and ip < funcs[k][0] + funcs[k][1]:
            per_func[k] += 1
            per_ip[ip] += 1
    print(f"{total} samples of pid {a.pid}")
    for k, n in per_func.most_common(a.top):
        start, size, name = funcs[k]
        print(f"\n== {name} ({n} samples, {100 * n / total:.1f} %)")
        asm = disassemble(a.code_dir, start)
        hot = sorted(((per_ip[ip], ip) for ip in asm if per_ip[ip]), reverse=True)[:a.lines]
        for cnt, ip in sorted(hot, key=lambda x: x[1]):
            print(f"  {100 * cnt / n:5.1f}%  +{ip - start:5x}  {asm[ip]}")


if __name__ == "__main__":
    main()
