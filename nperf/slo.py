"""`--slo 'p99<5ms'`: pass/fail thresholds on a run's headline figures (see nperf.headline).

A threshold is `FIGURE OP VALUE[UNIT]` with OP one of < <= > >=. Latency
figures (p50, p90, p99, p99.9 or p999, max) need a unit: us, ms or s.
`fail_rate` is a fraction (0.001) or a percentage (0.1%). Rates (cps, rps)
and counts (failures, drops, retransmissions) are plain numbers. Anything
else is refused before the run starts, so a typo never passes silently.
"""
import operator
import re
from typing import NamedTuple

from nperf.headline import FIGURES, show

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}          # to ms
_RX = re.compile(r"^\s*(p99\.9|[a-z_][a-z0-9_]*)\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z%]*)\s*$")


class SloError(ValueError):
    """A threshold that cannot be read (the message says what is expected)."""


class Slo(NamedTuple):
    text: str
    figure: str
    op: str
    limit: float          # in the figure's own unit (ms, a fraction, a count)


def parse(text: str) -> Slo:
    m = _RX.match(text)
    if not m:
        raise SloError(f"{text!r}: expected FIGURE OP VALUE, e.g. 'p99<5ms', 'fail_rate<0.1%', 'cps>100000'")
    name, op, number, unit = m.groups()
    figure = "p999" if name == "p99.9" else name
    if figure not in FIGURES:
        raise SloError(f"{text!r}: unknown figure {name!r}; one of {', '.join(FIGURES)}")
    value = float(number)
    if FIGURES[figure][1] == "ms":
        if unit not in TIME_UNITS:
            raise SloError(f"{text!r}: {name} needs a time unit: us, ms or s")
        value *= TIME_UNITS[unit]
    elif figure == "fail_rate":
        if unit not in ("", "%"):
            raise SloError(f"{text!r}: fail_rate is a fraction (0.001) or a percentage (0.1%)")
        value = value / 100 if unit == "%" else value
    elif unit:
        raise SloError(f"{text!r}: {name} takes a plain number, without {unit!r}")
    return Slo(text.strip(), figure, op, value)


def evaluate(slos: list[Slo], figures: dict[str, float]) -> tuple[list[str], bool]:
    """(a line per threshold, whether all passed)."""
    lines, ok = [], True
    for s in slos:
        value = figures[s.figure]
        passed = OPS[s.op](value, s.limit)
        ok &= passed
        lines.append(f"slo {'ok    ' if passed else 'FAILED'} {s.text}: {s.figure} is {show(s.figure, value)}")
    return lines, ok
