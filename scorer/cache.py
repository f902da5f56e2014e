"""The result cache: a record per (file bytes, prompt, config, svgscore code), in SQLite.

Lives in ``$SVGSCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/svgscore``, else
``~/.cache/svgscore``. SQLite in WAL mode with a busy timeout lets concurrent runs share it;
each record is one row written in one transaction, so a crash never leaves half a record.
Only results that would come out the same on a re-run are stored: not timeouts, worker
deaths or internal errors, and not scores made while an enabled CLIP was unavailable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from .record import RECORD_VERSION

CACHE_ENV = "SVGSCORE_CACHE_DIR"
_DETERMINISTIC_ERRORS = frozenset(
    {"parse_error", "unsafe_svg", "too_large", "too_many_elements", "too_deep", "attribute_too_large", "render_error"}
)


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "svgscore"


def cacheable(record: dict[str, Any], clip_enabled: bool) -> bool:
    if record["status"] == "error":
        return record["error"]["code"] in _DETERMINISTIC_ERRORS and bool(record["sha256"])
    return not clip_enabled or record["clip"]["available"]


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of svgscore's own source: a changed check must not be answered from the cache,
    and an editable install changes its code without changing its version."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class ResultCache:
    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or default_cache_dir()) / "results.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    @staticmethod
    def key(sha256: str, prompt: str, config_sha256: str, version: str) -> str:
        parts = (sha256, prompt, config_sha256, version, str(RECORD_VERSION), code_fingerprint())
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT record FROM results WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        # The path is where the bytes were found this time, not part of what they score.
        stored = {k: v for k, v in record.items() if k != "path"}
        self._db.execute("INSERT OR REPLACE INTO results (key, record) VALUES (?, ?)", (key, json.dumps(stored)))

    def clear(self) -> int:
        count = self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        self._db.execute("DELETE FROM results")
        self._db.execute("VACUUM")
        return int(count)

    def close(self) -> None:
        self._db.close()
