"""Map a config's `core_id` onto this machine, and build the EAL core option.

The seed files name cores 2..7 and small machines have fewer. The config's
core id stays the DPDK *lcore id* (processes that share a packet pool must
use distinct lcore ids: the pool's per-lcore caches live in shared memory),
while the CPU it runs on is the same core when it exists, otherwise
`core_id mod #cpus` with a one-line warning. `--core N` picks the CPU.
"""
import os

MAX_LCORE = 128           # RTE_MAX_LCORE of Debian's DPDK 22.11


class CoreError(ValueError):
    """A core choice that cannot work; the message says what to change."""


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def place(core_id: int, override: int | None, who: str) -> tuple[int, int, str | None]:
    """(lcore id, cpu, warning or None) for a process configured on `core_id`."""
    cpus = available_cpus()
    if not 0 <= core_id < MAX_LCORE:
        raise CoreError(f"{who}: core_id {core_id} is outside 0..{MAX_LCORE - 1}")
    if override is not None:
        if override not in cpus:
            raise CoreError(f"{who}: --core {override} is not a CPU of this machine "
                            f"(available: {_span(cpus)})")
        return core_id, override, None
    if core_id in cpus:
        return core_id, core_id, None
    cpu = cpus[core_id % len(cpus)]
    return core_id, cpu, (f"{who}: core {core_id} does not exist here (CPUs {_span(cpus)}); "
                          f"running on CPU {cpu} (choose with --core N)")


def _span(cpus: list[int]) -> str:
    if cpus == list(range(cpus[0], cpus[-1] + 1)):
        return f"{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 else str(cpus[0])
    return ",".join(map(str, cpus))
