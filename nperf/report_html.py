"""`nperf report RUN.json --html FILE`: one self-contained HTML file, readable offline.

plotly.js is embedded in the file (`include_plotlyjs=True`, once, with the
first chart): no CDN, nothing fetched, so the file can be mailed or
archived with the run. The page holds the summary, the charts of
`nperf.charts` (phases shaded) and every role's configuration.
"""
import html
import json

import plotly.graph_objects as go

from nperf.charts import Chart, charts

PHASE_COLOURS = {"prepare": "#dddddd", "ramp-up": "#cfe3ff", "sustain": "#d5f5d5", "ramp-down": "#ffe9c7",
                 "close": "#f2d7f7", "done": "#eeeeee"}


def figure(c: Chart) -> go.Figure:
    fig = go.Figure()
    for t in c.traces:
        if c.kind == "bar":
            fig.add_trace(go.Bar(name=t.name, x=t.x, y=t.y))
        else:
            fig.add_trace(go.Scatter(name=t.name, x=t.x, y=t.y, mode="lines+markers"))
    for phase, start, end in c.phases:
        fig.add_vrect(x0=start, x1=end, fillcolor=PHASE_COLOURS.get(phase, "#eeeeee"), opacity=0.5, layer="below",
                      line_width=0, annotation_text=phase, annotation_position="top left")
    fig.update_layout(title=c.title, xaxis_title=c.x_label, yaxis_title=c.y_label, barmode="group",
                      template="plotly_white", height=420)
    if c.log_x:
        fig.update_xaxes(type="log")
    return fig


def write(result, summary: str, path: str) -> None:
    parts = []
    for i, c in enumerate(charts(result)):
        parts.append(figure(c).to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{c.id}"))
    config = "".join(f"<h3>{html.escape(r.name)} <small>{html.escape(r.config)}</small></h3>"
                     f"<pre>{html.escape(json.dumps(r.configuration, indent=1))}</pre>" for r in result.roles)
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>nperf run report</title>"
            "<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em}</style></head>"
            f"<body><h1>nperf run report</h1><pre>{html.escape(summary)}</pre>{''.join(parts)}"
            f"<h2>Configuration</h2>{config}</body></html>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
