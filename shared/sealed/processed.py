"""Which sealed files a receiver has already processed: the replay guard's memory.

Keyed by (sender OIN, message id). A record holds the digest of the file's signed header
(unique per file: it covers a fresh HPKE encapsulation) and of the whole file. The reader
consults it when a file is opened, before any chunk is read:

* an id never seen: a new message;
* the same id from the same file (same header digest): a repeated delivery. The reader
  reports it (:attr:`shared.sealed.reader.SealedReader.previous`); what follows is the
  caller's choice (UWV re-runs the request, whose retry logic answers from the stored
  result without charging a budget again; SVB refuses a response it already consumed);
* the same id from another file: refused (:class:`~shared.sealed.errors.ReplayRefused`).

The caller records a file with :meth:`SealedReader.mark_processed` once it has committed what
the file caused (a written response, a written outreach file).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Processed:
    """One processed sealed file."""

    sender_oin: str
    message_id: str
    header_sha256: str
    file_sha256: str


class ProcessedIds(Protocol):
    """The store of processed files (an in-memory one and a SQLite one below)."""

    def get(self, sender_oin: str, message_id: str) -> Processed | None: ...

    def add(self, record: Processed) -> None: ...


class MemoryProcessedIds:
    """A :class:`ProcessedIds` in a dict (tests, one-shot tools)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], Processed] = {}

    def get(self, sender_oin: str, message_id: str) -> Processed | None:
        return self._records.get((sender_oin, message_id))

    def add(self, record: Processed) -> None:
        self._records.setdefault((record.sender_oin, record.message_id), record)


class SqliteProcessedIds:
    """A :class:`ProcessedIds` in a SQLite file (WAL, one row per file, committed at once)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sealed_processed ("
            " sender_oin TEXT NOT NULL, message_id TEXT NOT NULL,"
            " header_sha256 TEXT NOT NULL, file_sha256 TEXT NOT NULL,"
            " PRIMARY KEY (sender_oin, message_id))"
        )

    def close(self) -> None:
        self._db.close()

    def get(self, sender_oin: str, message_id: str) -> Processed | None:
        row = self._db.execute(
            "SELECT header_sha256, file_sha256 FROM sealed_processed"
            " WHERE sender_oin = ? AND message_id = ?",
            (sender_oin, message_id),
        ).fetchone()
        if row is None:
            return None
        return Processed(sender_oin, message_id, str(row[0]), str(row[1]))

    def add(self, record: Processed) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO sealed_processed VALUES (?, ?, ?, ?)",
            (record.sender_oin, record.message_id, record.header_sha256, record.file_sha256),
        )
