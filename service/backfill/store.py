"""The checkpoint: a small SQLite file beside the output (``OUT.checkpoint.sqlite``).

Items are numbered in source order (``seq``). A batch's rows are committed here first;
then they are appended to the output file, which is fsynced, and the new file length is
committed. After a crash (``kill -9`` anywhere), resuming truncates the output to the last
committed length, appends the rows that were committed but not yet written, and carries on
from the first item without a row: every item ends up in the output exactly once, and no
committed item is drafted again. Drafts are kept by image content hash, so a duplicate
image is drafted once in the whole run, across restarts.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS drafts (key TEXT PRIMARY KEY, draft TEXT NOT NULL);
"""


class CheckpointMismatch(Exception):
    """The checkpoint beside the output belongs to another source or other settings."""


class Checkpoint:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --------------------------------------------------------------- run identity

    def bind(self, identity: dict) -> None:
        """Remember what this run is; refuse to resume a different one."""
        wanted = json.dumps(identity, sort_keys=True)
        row = self.db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('identity', ?)", (wanted,))
        elif row[0] != wanted:
            old = json.loads(row[0])
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise CheckpointMismatch(
                f"{self.path} belongs to a run with other {', '.join(diff)}; pass --restart to start over "
                "or choose another --out.")

    def _meta_int(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    # --------------------------------------------------------------- rows

    @property
    def done(self) -> int:
        """Items with a committed row (they are always the first ``done`` items of the source)."""
        row = self.db.execute("SELECT MAX(seq) FROM rows").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def id_at(self, seq: int) -> str | None:
        row = self.db.execute("SELECT id FROM rows WHERE seq=?", (seq,)).fetchone()
        return row[0] if row else None

    def commit(self, rows: list[tuple[int, dict]], drafts: dict[str, str]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO drafts VALUES (?, ?)", drafts.items())
            self.db.executemany("INSERT INTO rows VALUES (?, ?, ?)",
                                [(seq, row["id"], json.dumps(row, ensure_ascii=False)) for seq, row in rows])

    def rows(self, start: int = 0) -> Iterator[tuple[int, dict]]:
        cursor = self.db.execute("SELECT seq, row FROM rows WHERE seq >= ? ORDER BY seq", (start,))
        for seq, row in cursor:
            yield seq, json.loads(row)

    # --------------------------------------------------------------- output position

    @property
    def written(self) -> tuple[int, int]:
        """(rows written to the output, its length in bytes then)."""
        return self._meta_int("written_rows"), self._meta_int("written_bytes")

    def mark_written(self, rows: int, size: int) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('written_rows', ?)", (str(rows),))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('written_bytes', ?)", (str(size),))

    # --------------------------------------------------------------- drafts

    def drafts(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        return dict(self.db.execute(f"SELECT key, draft FROM drafts WHERE key IN ({marks})", keys).fetchall())

    def recent_drafts(self, limit: int) -> dict[str, str]:
        """The ``limit`` drafts stored last (INSERT OR REPLACE gives a re-stored key a new rowid)."""
        return dict(self.db.execute("SELECT key, draft FROM drafts ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (decision,) in self.db.execute("SELECT json_extract(row, '$.decision') FROM rows"):
            out[decision] = out.get(decision, 0) + 1
        return out

    def error_codes(self) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT json_extract(row, '$.error_code') c, COUNT(*) FROM rows WHERE c IS NOT NULL GROUP BY c"))
