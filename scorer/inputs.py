"""Which files to score, with which prompt: paths, directories and manifests."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import Limits
from .errors import ItemError, ReadError, TooLargeError, UsageError, item_error_for

SVG_SUFFIXES = (".svg", ".svgz")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScoreItem:
    """One SVG to score: from a file (``path``) or in memory (``data``), and its prompt."""

    path: str | None
    prompt: str
    data: bytes | None = None
    error: ItemError | None = None  # known before reading: a manifest row whose generation failed

    def read(self, limits: Limits) -> FileBytes:
        """The bytes to parse (never more than the cap) and the sha256 of the *whole* file."""
        if self.error is not None:
            return FileBytes(b"", "", self.error)
        if self.data is not None:
            return FileBytes(self.data, hashlib.sha256(self.data).hexdigest())
        assert self.path is not None
        digest, kept = hashlib.sha256(), bytearray()
        try:
            with open(self.path, "rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    if len(kept) <= limits.max_bytes:
                        kept += chunk[: limits.max_bytes + 1 - len(kept)]
        except OSError as exc:
            return FileBytes(b"", "", ReadError(f"cannot read file: {exc.strerror or exc}"))
        if len(kept) > limits.max_bytes:
            return FileBytes(b"", digest.hexdigest(), TooLargeError(f"file exceeds the {limits.max_bytes:,}-byte cap"))
        return FileBytes(bytes(kept), digest.hexdigest())


@dataclass(frozen=True)
class FileBytes:
    data: bytes
    sha256: str
    error: ItemError | None = None


def discover(
    paths: Iterable[Path], prompt: str, prompts: Mapping[str, str], errors: Mapping[str, ItemError] | None = None
) -> Iterator[ScoreItem]:
    """Files given directly, and every ``*.svg``/``*.svgz`` under given directories, sorted.

    Directory walking is lazy per directory; ``prompts`` and ``errors`` (from a manifest) are
    keyed by resolved path.
    """
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SVG_SUFFIXES and p.is_file())
        else:
            files = [path]  # a missing file becomes a read_error row, not the end of the batch
        for file in files:
            key = str(file.resolve())
            yield ScoreItem(path=str(file), prompt=prompts.get(key, prompt), error=(errors or {}).get(key))


def read_manifest(path: Path) -> dict[str, str]:
    """Map each file (resolved against the manifest's folder) to its prompt.

    CSV with a header containing ``path`` and ``prompt``, or JSONL with those keys per line.
    """
    return {file: row["prompt"] for file, row in read_manifest_rows(path, required=("path", "prompt")).items()}


def manifest_errors(path: Path) -> dict[str, ItemError]:
    """The files a manifest marks as failed (``error_code``/``error_message`` columns, as
    ``svgscore generate`` writes for a sample with no usable SVG), each with its error, so
    scoring reports why there is no file rather than that it is missing."""
    return {
        file: item_error_for(row["error_code"], row.get("error_message") or row["error_code"])
        for file, row in read_manifest_rows(path).items()
        if row.get("error_code")
    }


def read_manifest_rows(path: Path, required: Iterable[str] = ("path",)) -> dict[str, dict[str, str]]:
    """Every column of a manifest (CSV with a header, or JSONL), keyed by the resolved file path.

    ``path`` values are relative to the manifest's folder; each ``required`` column must be
    non-empty on every row. Values are strings, whatever JSON type they had.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from None
    rows: list[Mapping[str, object]]
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise UsageError(f"manifest {path} line {exc.lineno}: not JSON ({exc.msg})") from None
    else:
        rows = list(csv.DictReader(text.splitlines()))
    required = tuple(required)
    mapping = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping) or not all(row.get(column) for column in required):
            raise UsageError(f"manifest {path} row {number}: needs non-empty {' and '.join(map(repr, required))}")
        resolved = str((path.parent / str(row["path"])).resolve())
        mapping[resolved] = {str(k): "" if v is None else str(v) for k, v in row.items()}
    return mapping
