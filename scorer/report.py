"""Stage 5 — report: result records → table, JSON, JSONL or CSV.

Streaming formats (JSONL, CSV) write and flush each record as it arrives, so a crash or
Ctrl-C keeps everything already scored; JSON and the table need the whole run and are
written on close (with whatever was scored, if the run was interrupted).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import UsageError
from .record import ScoreResult

FORMATS = ("table", "json", "jsonl", "csv")

_BASE_COLUMNS = (
    "path", "sha256", "prompt", "status", "score", "summary", "error.code", "error.message",
    "render.width", "render.height", "render.sha256", "config_sha256",
    "svgscore_version", "record_version", "provenance.source_sha256", "provenance.config",
    "provenance.renderer.backend", "provenance.renderer.version", "provenance.renderer.native",
    "provenance.python", "provenance.platform",
)  # fmt: skip


def flatten(record: dict[str, Any], component_names: Sequence[str]) -> dict[str, Any]:
    """One CSV row: nested fields as dotted columns; components as ``<name>.value/.weight/.explanation``."""
    row: dict[str, Any] = {}
    for column in _BASE_COLUMNS:
        value: Any = record
        for key in column.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        row[column] = value
    # Per-measure provenance (model ids, checkpoint hashes, availability) varies by measure: one JSON cell.
    row["provenance.measures"] = json.dumps(record["provenance"]["measures"], sort_keys=True, ensure_ascii=False)
    for name in component_names:
        component = record["components"].get(name) or {}
        for key in ("value", "weight", "explanation"):
            row[f"{name}.{key}"] = component.get(key)
    return row


class Report:
    """Writes results in one format to one stream."""

    def __init__(self, fmt: str, stream: TextIO, component_names: Sequence[str]) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self.stream = stream
        self.component_names = list(component_names)
        self.results: list[ScoreResult] = []
        self._csv: csv.DictWriter[str] | None = None

    def add(self, result: ScoreResult) -> None:
        if self.fmt == "jsonl":
            self.stream.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            self.stream.flush()
        elif self.fmt == "csv":
            if self._csv is None:
                columns = list(flatten(result.to_dict(), self.component_names))
                self._csv = csv.DictWriter(self.stream, fieldnames=columns, lineterminator="\n")
                self._csv.writeheader()
            self._csv.writerow(flatten(result.to_dict(), self.component_names))
            self.stream.flush()
        else:
            self.results.append(result)

    def close(self) -> None:
        if self.fmt == "json":
            json.dump([r.to_dict() for r in self.results], self.stream, indent=2, ensure_ascii=False)
            self.stream.write("\n")
        elif self.fmt == "table":
            self._table()
        self.stream.flush()

    def _table(self) -> None:
        from rich.console import Console
        from rich.table import Table

        # Gate-only checks (weight 0) get no column: when one closes, the note says so.
        shown = [n for n in self.component_names if any(getattr(r.components.get(n), "weight", 0) for r in self.results)]
        table = Table(show_lines=False, pad_edge=False)
        table.add_column("file", no_wrap=True)
        table.add_column("score", justify="right")
        for name in shown:
            table.add_column(name, justify="right")
        table.add_column("note", max_width=60, no_wrap=True, overflow="ellipsis")
        for r in self.results:
            score = "—" if r.score is None else f"{r.score:.1f}"
            values = []
            for name in shown:
                c = r.components.get(name)
                values.append("" if c is None else "n/a" if c.value is None else f"{c.value:.2f}")
            note = f"{r.error.code}: {r.error.message}" if r.error else ("" if r.summary.startswith("weighted mean") else r.summary)
            table.add_row(r.path or "<memory>", score, *values, note)
        interactive = self.stream.isatty()
        # Piped output is not wrapped at 80 columns: the table takes the width it needs.
        Console(file=self.stream, width=None if interactive else 1000, force_terminal=interactive).print(table)


def resume_jsonl(path: Path) -> list[ScoreResult]:
    """The complete records of an interrupted JSONL run, cutting off a half-written last line.

    A process killed mid-write can leave a partial line; it is removed from the file so that
    appending continues on a clean line boundary. A complete line that is not a record means
    the wrong file: :class:`UsageError`, and the file is left as it was.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_end = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            fields = json.loads(line)
        except json.JSONDecodeError:
            break
        try:
            records.append(ScoreResult.parse(fields))
        except ValueError as exc:
            raise UsageError(f"--resume: {path} line {len(records) + 1} is not a result record ({exc}); is it the right file?") from None
        good_end += len(line)
    if good_end < len(data):
        with open(path, "r+b") as stream:
            stream.truncate(good_end)
            stream.flush()
            os.fsync(stream.fileno())
    return records
