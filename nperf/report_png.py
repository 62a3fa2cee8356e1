"""`nperf report RUN.json --png DIR`: the charts of `nperf.charts` as PNG files, one per chart.

matplotlib with the Agg backend: no display needed, so it works on a
headless test machine and in CI. Files are named after the chart ids
(rates.png, concurrency.png, throughput.png, latency.png,
distribution.png, errors.png).
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from nperf.charts import Chart, charts  # noqa: E402
from nperf.report_html import PHASE_COLOURS  # noqa: E402


def draw(c: Chart, path: str) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    if c.kind == "bar":
        names = list(dict.fromkeys(x for t in c.traces for x in t.x))
        width = 0.8 / max(len(c.traces), 1)
        for i, t in enumerate(c.traces):
            if c.log_x:             # bins are values: bars at their own x
                ax.bar(t.x, t.y, width=[x * 0.03 for x in t.x], label=t.name)
            else:
                pos = [names.index(x) + i * width for x in t.x]
                ax.bar(pos, t.y, width=width, label=t.name)
        if not c.log_x:
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=45, ha="right",
                          fontsize=7)
    else:
        for t in c.traces:
            ax.plot(t.x, t.y, marker=".", label=t.name)
        for phase, start, end in c.phases:
            ax.axvspan(start, end, color=PHASE_COLOURS.get(phase, "#eeeeee"), alpha=0.6, zorder=0)
            ax.text(start, 1.0, f" {phase}", transform=ax.get_xaxis_transform(), va="top", fontsize=7)
    if c.log_x:
        ax.set_xscale("log")
    ax.set_title(c.title)
    ax.set_xlabel(c.x_label)
    ax.set_ylabel(c.y_label)
    if c.traces:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write(result, directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for c in charts(result):
        paths.append(os.path.join(directory, f"{c.id}.png"))
        draw(c, paths[-1])
    return paths
