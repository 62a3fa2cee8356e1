"""`--series FILE`: every role's per-second figures, kept as CSV or JSON lines.

One row per role per second: `role`, `elapsed` (the role's second, from 1)
and the fields of that second as the role sends them over IPC (a role's
`second()` figures: rates per second, gauges, and counts since start for
the `drop_*`, `drops` and `retransmits` fields). The format is chosen by the
extension: `.csv` (columns are the union of every row's fields in order of
first appearance, so the header is written when the file is closed) or
`.jsonl`/`.json` (one JSON object per line, written and flushed as the
seconds arrive).
"""
import csv
import json
import os

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


class SeriesError(ValueError):
    """A series file nperf cannot write (the message names the file and why)."""


def series_path(path: str) -> str:
    """`path` if its extension names a format (argparse type of --series)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise SeriesError(f"{path}: unknown extension {ext or '(none)'!r}; use .csv, .jsonl or .json")
    return path


class SeriesWriter:
    def __init__(self, path: str):
        self.path = series_path(path)
        self.format = FORMATS[os.path.splitext(path)[1].lower()]
        self.rows: list[dict] = []
        try:
            self.file = open(path, "w", newline="")
        except OSError as e:
            raise SeriesError(f"--series {path}: {e.strerror}") from None

    def add(self, role: str, elapsed: int, fields: dict) -> None:
        row = {"role": role, "elapsed": elapsed, **fields}
        if self.format == "jsonl":
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        else:
            self.rows.append(row)

    def close(self) -> None:
        if self.file.closed:
            return
        if self.format == "csv":
            columns = list(dict.fromkeys(k for row in self.rows for k in row))
            w = csv.DictWriter(self.file, columns, lineterminator="\n")
            w.writeheader()
            w.writerows(self.rows)
        self.file.close()

