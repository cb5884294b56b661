"""The batch journal (SQLite): what a batch is, which chunks are done, every decision.

A batch is written to the journal in full before anything is sent: accepted households with
their chunk and slot, and rejected ones with their reason. Each chunk's decisions are then
stored in one transaction together with marking the chunk done, so after a crash at any
point a resumed run sends exactly the chunks that are not done: no household is lost and
none is decided twice.

The journal holds no key and no amount from UWV; it does hold SVB's own input (BSNs,
thresholds), so it lives with SVB's data and is protected like it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import Error

IntArray = npt.NDArray[np.int64]
SCHEMA_VERSION: Final = 1

ELIGIBLE: Final = 1
NOT_ELIGIBLE: Final = 0
NO_DECISION: Final = -1


class JournalError(Error):
    """The journal belongs to another batch, or cannot be read or written."""


@contextmanager
def _sqlite_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn SQLite's errors (disk full, I/O error, not a database, locked …) into one
    :class:`JournalError` naming the file: the user gets a line, not a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise JournalError(
            f"journal {path}: cannot {doing} ({exc}); check the file and its folder, or pass "
            "another --journal"
        ) from None


@dataclass(frozen=True, slots=True)
class PendingChunk:
    index: int
    household_ids: list[str]
    member_counts: IntArray
    member_bsns: IntArray
    thresholds: IntArray


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        with _sqlite_errors(path, "open it"):
            self._db = sqlite3.connect(path, isolation_level=None)
            self._open()

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS chunks (
              idx INTEGER PRIMARY KEY, household_ids TEXT NOT NULL, member_counts BLOB NOT NULL,
              member_bsns BLOB NOT NULL, thresholds BLOB NOT NULL,
              done INTEGER NOT NULL DEFAULT 0, decisions BLOB, slot_errors TEXT);
            CREATE TABLE IF NOT EXISTS rejected (
              seq INTEGER PRIMARY KEY, household_id TEXT NOT NULL, reason TEXT NOT NULL);
            """
        )

    def close(self) -> None:
        with _sqlite_errors(self.path, "close it"):
            self._db.close()

    def identity(self) -> dict[str, str] | None:
        with _sqlite_errors(self.path, "read it"):
            row = self._db.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def matches_or_empty(self, identity: dict[str, str]) -> bool:
        """True if the journal is for this batch (resume); False if empty; error otherwise."""
        existing = self.identity()
        if existing is None:
            return False
        differing = sorted(k for k in identity if existing.get(k) != identity[k])
        if differing:
            raise JournalError(
                f"{self.path} belongs to a different batch (differs in {', '.join(differing)}); "
                "use another --journal or --fresh to start over"
            )
        return True

    def create(
        self,
        identity: dict[str, str],
        chunks: list[PendingChunk],
        rejected: list[tuple[str, str]],
    ) -> None:
        """Write the whole batch plan in one transaction."""
        with _sqlite_errors(self.path, "write the batch plan"):
            self._create(identity, chunks, rejected)

    def _create(
        self,
        identity: dict[str, str],
        chunks: list[PendingChunk],
        rejected: list[tuple[str, str]],
    ) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM meta")
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM rejected")
            db.executemany(
                "INSERT INTO chunks (idx, household_ids, member_counts, member_bsns, thresholds) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        c.index,
                        "\n".join(c.household_ids),
                        c.member_counts.astype("<i8").tobytes(),
                        c.member_bsns.astype("<i8").tobytes(),
                        c.thresholds.astype("<i8").tobytes(),
                    )
                    for c in chunks
                ),
            )
            db.executemany("INSERT INTO rejected (household_id, reason) VALUES (?, ?)", rejected)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT INTO meta VALUES ('identity', ?)", (json.dumps(identity),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def counts(self) -> tuple[int, int]:
        """(chunks in the batch, chunks done)."""
        with _sqlite_errors(self.path, "read it"):
            row = self._db.execute("SELECT count(*), coalesce(sum(done), 0) FROM chunks").fetchone()
        return int(row[0]), int(row[1])

    def pending(self) -> Iterator[PendingChunk]:
        with _sqlite_errors(self.path, "read it"):
            rows = self._db.execute(
                "SELECT idx, household_ids, member_counts, member_bsns, thresholds FROM chunks "
                "WHERE done = 0 ORDER BY idx"
            ).fetchall()
        for idx, ids, counts, bsns, thresholds in rows:
            yield PendingChunk(
                index=int(idx),
                household_ids=str(ids).split("\n"),
                member_counts=np.frombuffer(counts, dtype="<i8").astype(np.int64),
                member_bsns=np.frombuffer(bsns, dtype="<i8").astype(np.int64),
                thresholds=np.frombuffer(thresholds, dtype="<i8").astype(np.int64),
            )

    def record(
        self, index: int, decisions: npt.NDArray[np.int8], slot_errors: dict[int, str]
    ) -> None:
        """Store one chunk's decisions and mark it done, atomically (fsynced)."""
        with _sqlite_errors(self.path, f"record chunk {index}"):
            cur = self._db.execute(
                "UPDATE chunks SET done = 1, decisions = ?, slot_errors = ? "
                "WHERE idx = ? AND done = 0",
                (decisions.astype(np.int8).tobytes(), json.dumps(slot_errors), index),
            )
        if cur.rowcount != 1:
            raise JournalError(f"chunk {index} is unknown or already decided; not recorded twice")

    def results(self) -> Iterator[tuple[str, str, str]]:
        """(household_id, decision, reason) for every household, accepted ones in file order."""
        with _sqlite_errors(self.path, "read it"):
            for ids, decisions, errors in self._db.execute(
                "SELECT household_ids, decisions, slot_errors FROM chunks WHERE done = 1 "
                "ORDER BY idx"
            ):
                values = np.frombuffer(decisions, dtype=np.int8)
                slot_errors = {int(k): v for k, v in json.loads(errors or "{}").items()}
                for slot, hid in enumerate(str(ids).split("\n")):
                    if slot in slot_errors:
                        yield hid, "rejected", slot_errors[slot]
                    elif values[slot] == ELIGIBLE:
                        yield hid, "eligible", ""
                    elif values[slot] == NOT_ELIGIBLE:
                        yield hid, "not_eligible", ""
                    else:
                        yield hid, "rejected", "no decision"
            for hid, reason in self._db.execute(
                "SELECT household_id, reason FROM rejected ORDER BY seq"
            ):
                yield str(hid), "rejected", str(reason)
