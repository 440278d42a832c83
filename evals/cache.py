"""Cache of target (and judge) outputs: SQLite, keyed by the request body + the target's version.

The key is sha256 over the endpoint, the exact JSON body sent (model, messages, parameters, seed,
prompt reference, retrieval settings) and the target version (kind, the prompt version a label
resolved to, rails, the suite's `version` tag). A rerun with nothing changed makes no call; change
the model, a parameter, the prompt version or the tag and the item is called again. Failed calls are
never cached. Default file: var/evals-cache/outputs.sqlite3 (`--cache-dir`, `--no-cache`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    created REAL NOT NULL,
    output TEXT NOT NULL
)
"""


class OutputCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @classmethod
    def in_dir(cls, folder: Path) -> OutputCache:
        return cls(folder / "outputs.sqlite3")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT output FROM outputs WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])  # type: ignore[no-any-return]

    def put(self, key: str, target: str, output: dict[str, Any]) -> None:
        blob = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO outputs (key, target, created, output) VALUES (?, ?, ?, ?)",
                             (key, target, time.time(), blob))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
