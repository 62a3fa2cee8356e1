"""Reading a run report (`nperf run --report FILE`) back: `nperf report` and `nperf compare`.

A file is read only if its `schema_version` is one this nperf writes; a file
of another version, or not a run report at all, is refused with one line.
"""
import msgspec

from nperf.api import SCHEMA_VERSION, RunResult


class ReportFileError(ValueError):
    """A report file that cannot be read (the message names the file)."""


def load(path: str) -> RunResult:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ReportFileError(f"{path}: {e.strerror}") from None
    try:
        head = msgspec.json.decode(data)
    except msgspec.DecodeError as e:
        raise ReportFileError(f"{path}: not JSON ({e})") from None
    if not isinstance(head, dict) or "schema_version" not in head:
        raise ReportFileError(f"{path}: not an nperf run report (no schema_version; written by `nperf run --report`)")
    if head["schema_version"] != SCHEMA_VERSION:
        raise ReportFileError(f"{path}: schema_version {head['schema_version']!r}; this nperf reads {SCHEMA_VERSION}")
    try:
        return msgspec.json.decode(data, type=RunResult)
    except msgspec.ValidationError as e:
        raise ReportFileError(f"{path}: {e}") from None
