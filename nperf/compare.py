"""`nperf compare A.json B.json`: two runs' headline figures side by side, with a verdict each.

A verdict knows which way is better (more CPS, less latency, fewer
failures) and calls a change within `tolerance` (a fraction of the larger
value) "same": this machine's rates swing by a few percent between
identical runs, and a 0.3 % change is not news.
"""
from nperf.headline import FIGURES, figures, show


def verdict(name: str, a: float, b: float, tolerance: float) -> str:
    if abs(b - a) <= tolerance * max(abs(a), abs(b)):
        return "same"
    return "better" if (b - a) * FIGURES[name][2] > 0 else "worse"


def table(a, b, tolerance: float, titles: tuple[str, str] = ("A", "B")) -> str:
    fa, fb = figures(a), figures(b)
    rows = [("figure", titles[0], titles[1], "delta", "delta %", "verdict")]
    for name, (label, _, _) in FIGURES.items():
        x, y = fa[name], fb[name]
        pct = f"{(y - x) / x * 100:+.1f} %" if x else ("0.0 %" if y == x else "new")
        rows.append((label, show(name, x), show(name, y), _delta(name, y - x), pct, verdict(name, x, y, tolerance)))
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(r, width)))
                     .rstrip() for r in rows)


def _delta(name: str, d: float) -> str:
    text = show(name, abs(d))
    return ("+" if d > 0 else "-" if d < 0 else "") + text
