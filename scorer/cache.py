"""The result cache: a record per (file bytes, prompt, judge), in SQLite. The judge is what in
the provenance can move scores: svgscore's version and code, the config, the renderer and its
native library, OCR models, plugins (a cairo upgrade re-scores).

Lives in ``$SVGSCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/svgscore``, else
``~/.cache/svgscore``. SQLite in WAL mode with a busy timeout lets concurrent runs share it;
each record is one row written in one transaction, so a crash never leaves half a record.
Only results that would come out the same on a re-run are stored (:func:`cacheable`): each
error class says whether it is ``deterministic``; scores made while a batched measure was
unavailable are not stored either.

The cache only saves time, so it never fails a run: a corrupt or truncated database is moved
aside (``results.sqlite3.corrupt``) and started afresh; one another process keeps locked past
the busy timeout, or any other SQLite or file error, turns the cache off for the rest of the
run. Either way a warning says so once (``ResultCache.problem`` keeps it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .config import CACHE_ENV, default_cache_dir  # noqa: F401  (CACHE_ENV: for the CLI's help)
from .record import RECORD_VERSION, ErrorInfo, ScoreResult

_log = logging.getLogger(__name__)
T = TypeVar("T")
BUSY_TIMEOUT_S = 5.0  # each write is one small row: a lock held longer than this is not a neighbour's write


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
        self.problem: str | None = None  # why the cache is off for this run, if it is
        self._db: sqlite3.Connection | None = None
        self._guard(self._open, None)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
        except BaseException:
            db.close()
            raise
        self._db = db

    def _guard(self, operation: Callable[[], T], default: T, *, recreated: bool = False) -> T:
        """``operation()``; on a corrupt database, once, a fresh one and ``operation()`` again;
        on any other failure, ``default`` and the cache off for the rest of the run."""
        if self.problem is not None:
            return default
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if recreated or not (getattr(exc, "sqlite_errorname", "") or "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                return self._disable(f"{exc}", default)
            self._set_aside(exc)
        except OSError as exc:
            return self._disable(f"{exc.strerror or exc}: {exc.filename or self.path}", default)
        try:
            self._open()
        except (sqlite3.Error, OSError) as exc:
            return self._disable(f"cannot start a new one: {exc}", default)
        return self._guard(operation, default, recreated=True)

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        """Move a corrupt database (and its WAL files) aside: it only held re-computable records."""
        if self._db is not None:
            self._db.close()
            self._db = None
        aside = self.path.with_name(self.path.name + ".corrupt")
        for suffix in ("-wal", "-shm"):  # a stale WAL must not be replayed into the new file
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(self.path, aside)
        _log.warning("result cache %s was unreadable (%s): moved to %s, starting a new one", self.path, exc, aside.name)

    def _disable(self, reason: str, default: T) -> T:
        self.problem = f"result cache {self.path} unusable ({reason}); continuing without it"
        _log.warning("%s", self.problem)
        if self._db is not None:
            self._db.close()
            self._db = None
        return default

    @staticmethod
    def key(sha256: str, prompt: str, judge: str) -> str:
        """``judge``: what in the scorer's provenance can move scores, canonical (``Scorer._cache_judge``)."""
        parts = (sha256, prompt, judge, str(RECORD_VERSION))
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def get(self, key: str) -> ScoreResult | None:
        """The cached record, without a path (the caller knows where the bytes are this time)."""

        def read() -> str | None:
            assert self._db is not None
            row = self._db.execute("SELECT record FROM results WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

        stored = self._guard(read, None)
        if stored is None:
            return None
        try:
            return ScoreResult.parse({**json.loads(stored), "path": None})
        except ValueError:
            return None  # not a record this version reads: scored again, and replaced

    def put(self, key: str, result: ScoreResult) -> None:
        # The path is where the bytes were found this time, not part of what they score.
        stored = json.dumps({k: v for k, v in result.to_dict().items() if k != "path"})

        def write() -> None:
            assert self._db is not None
            self._db.execute("INSERT OR REPLACE INTO results (key, record) VALUES (?, ?)", (key, stored))

        self._guard(write, None)

    def clear(self) -> int:
        def delete() -> int:
            assert self._db is not None
            count = self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            self._db.execute("DELETE FROM results")
            self._db.execute("VACUUM")
            return int(count)

        return self._guard(delete, 0)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
