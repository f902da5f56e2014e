"""Judges' answers, kept by question: SQLite ``judge.sqlite3`` beside the result cache.

A question's key is a hash of everything that decides the answer: the picture's pixels as
sent, the prompt, the endpoint's model id and request settings (kind, temperature, seed,
max_tokens, extra_body), the rubric's version and content hash, the mode and the sample
number — not the base URL nor the key, so the same model moved to another host is still
answered from here. Only answers that parsed are stored. Like the result cache, it only
saves money and time: any SQLite or file error turns it off for the run, with a warning.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)
FILE_NAME = "judge.sqlite3"


class AnswerCache:
    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self.problem: str | None = None  # why the cache is off for this run, if it is
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
        except (sqlite3.Error, OSError) as exc:
            self._disable(exc)

    def get(self, key: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
            return json.loads(row[0]) if row else None
        except (sqlite3.Error, ValueError) as exc:
            self._disable(exc)
            return None

    def put(self, key: str, answer: dict[str, Any]) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", (key, json.dumps(answer)))
        except sqlite3.Error as exc:
            self._disable(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _disable(self, exc: BaseException) -> None:
        self.problem = f"judge answer cache {self.path} unusable ({exc}); continuing without it"
        _log.warning("%s", self.problem)
        self.close()
