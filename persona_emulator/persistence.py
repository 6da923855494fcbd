"""Write-behind persistence for the emulator's state: one SQLite table of JSON records.

Changes are written in batches (only the records that changed, never the whole state) by the
store's flusher thread, a fraction of a second after they happen, and at shutdown; a crash loses
at most that fraction of a second. The file is the emulator's own: nothing else reads it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any


class RecordFile:
    """`records(kind, id, body)`: every stored object by kind (inquiry, session, …) and id."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (kind, id))"
        )

    def load(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every stored record as (kind, fields), in the order they were first written."""
        for kind, body in self._db.execute("SELECT kind, body FROM records ORDER BY rowid"):
            yield kind, json.loads(body)

    def write(self, upserts: Iterable[tuple[str, str, str]], deletes: Iterable[tuple[str, str]], wipe: bool) -> None:
        """One transaction: optionally empty the table, then write and delete the given records."""
        with self._db:
            self._db.execute("BEGIN")
            if wipe:
                self._db.execute("DELETE FROM records")
            self._db.executemany("DELETE FROM records WHERE kind = ? AND id = ?", list(deletes))
            self._db.executemany(
                "INSERT INTO records (kind, id, body) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                list(upserts),
            )

    def close(self) -> None:
        self._db.close()
