"""The result cache: a record per (file bytes, prompt, config, svgscore code), in SQLite.

Lives in ``$SVGSCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/svgscore``, else
``~/.cache/svgscore``. SQLite in WAL mode with a busy timeout lets concurrent runs share it;
each record is one row written in one transaction, so a crash never leaves half a record.
Only results that would come out the same on a re-run are stored (:func:`cacheable`): each
error class says whether it is ``deterministic``; scores made while a batched measure was
unavailable are not stored either.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from .record import RECORD_VERSION, ErrorInfo, ScoreResult
from .version import source_sha256

CACHE_ENV = "SVGSCORE_CACHE_DIR"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "svgscore"


def cacheable(result: ScoreResult) -> bool:
    """Whether a re-run would give this same record: not when its error (or a component's) may
    not recur, nor when a batched measure was unavailable (it may be available next time)."""
    if result.error is not None:
        return result.error.deterministic and bool(result.sha256)
    if any(not m.get("available", True) for m in result.provenance.measures.values()):
        return False
    return all(ErrorInfo(c.details["error"], "").deterministic for c in result.components.values() if "error" in c.details)


class ResultCache:
    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or default_cache_dir()) / "results.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    @staticmethod
    def key(sha256: str, prompt: str, config_sha256: str, version: str) -> str:
        parts = (sha256, prompt, config_sha256, version, str(RECORD_VERSION), source_sha256())
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
