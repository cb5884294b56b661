"""Differencing protection: a durable budget of evaluations per BSN per budget year.

A yes/no per household still leaks income when SVB may ask again and again with a moving
threshold (a binary search on one person's income takes ~20 questions). UWV therefore counts,
per BSN, how many evaluations the person took part in, and refuses a household once any
member has used up the budget. In the homomorphic mode UWV cannot see the thresholds at all,
so this budget is the whole defence there; in the compute-to-data mode thresholds can also
only come from approved rules.

Budget window: a reference period is charged against every *calendar year* it touches. A
per-period key would let SVB reset the count by shifting the period by one month; a calendar
year cannot be shifted. A period 2024-11..2025-01 charges one evaluation in 2024 and one in
2025. The limit is configurable (``limit`` evaluations per BSN per year).

Durability: SQLite in WAL mode with ``synchronous=FULL``; every chunk is one transaction, so
a restart (or a crash) never resets or half-applies a charge. Idempotence: the outcome of
each ``(batch_id, chunk_index)`` is stored with it, so a resumed batch re-sending a chunk
gets the same refusals and is not charged again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import Error
from shared.models import Period

IntArray = npt.NDArray[np.int64]

DEFAULT_LIMIT: Final = 12
"""Evaluations per BSN per calendar year: monthly screening fits, a binary search does not."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS usage (
    bsn  INTEGER NOT NULL,
    year INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (bsn, year)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS charges (
    batch_id    TEXT    NOT NULL,
    chunk_index INTEGER NOT NULL,
    refused     TEXT    NOT NULL,
    PRIMARY KEY (batch_id, chunk_index)
);
"""


class BudgetError(Error):
    """The budget database cannot be opened or written."""


def budget_reason(members: list[int], years: list[int], limit: int) -> str:
    """The text a refused household gets (positions of the members, never their BSNs)."""
    who = ", ".join(str(m) for m in members)
    return (
        f"budget exhausted: member(s) at position {who} of this household already took part "
        f"in {limit} evaluations in {', '.join(str(y) for y in years)}; "
        "no further screening of this household is allowed in that year"
    )


class SqliteBudget:
    """A durable :class:`uwv_server.service.BudgetPolicy` (also used by the enclave runs)."""

    def __init__(self, path: Path, *, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise BudgetError(f"budget limit must be at least 1, got {limit}")
        self.limit = limit
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BudgetError(f"{path}: cannot open the budget database: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def charge(
        self,
        *,
        batch_id: str,
        chunk_index: int,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
    ) -> dict[int, str]:
        """Charge one evaluation per member and year of ``period``; ``{slot: reason}`` refused.

        Refused households are not charged. Idempotent per ``(batch_id, chunk_index)``.
        """
        years = list(range(period.start.year, period.end.year + 1))
        with self._lock:
            try:
                return self._charge(batch_id, chunk_index, years, member_bsns, member_counts)
            except sqlite3.Error as exc:
                raise BudgetError(f"{self.path}: budget not charged: {exc}") from None

    def _charge(
        self,
        batch_id: str,
        chunk_index: int,
        years: list[int],
        member_bsns: IntArray,
        member_counts: IntArray,
    ) -> dict[int, str]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT refused FROM charges WHERE batch_id = ? AND chunk_index = ?",
                (batch_id, chunk_index),
            ).fetchone()
            if row is not None:
                db.execute("COMMIT")
                return {int(k): str(v) for k, v in json.loads(row[0]).items()}
            bsns = np.asarray(member_bsns, dtype=np.int64)
            counts = np.asarray(member_counts, dtype=np.int64)
            slot_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
            position = np.arange(len(bsns), dtype=np.int64) - np.repeat(
                np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64), counts
            )
            chunk_bsns = json.dumps(bsns.tolist())
            spent_in: dict[int, list[int]] = {}
            blocked = np.zeros(len(bsns), dtype=np.bool_)
            for year in years:
                # Look up only this chunk's BSNs (through the primary key), and only the
                # exhausted ones come back: the cost does not grow with the table.
                exhausted = np.fromiter(
                    (
                        r[0]
                        for r in db.execute(
                            "SELECT bsn FROM usage WHERE year = ? AND used >= ? "
                            "AND bsn IN (SELECT value FROM json_each(?))",
                            (year, self.limit, chunk_bsns),
                        )
                    ),
                    dtype=np.int64,
                )
                hit = np.isin(bsns, exhausted)
                for i in np.flatnonzero(hit):
                    spent_in.setdefault(int(i), []).append(year)
                blocked |= hit
            refused_slots = np.unique(slot_of[blocked])
            refused: dict[int, str] = {}
            for slot in refused_slots.tolist():
                members = np.flatnonzero(blocked & (slot_of == slot))
                yrs = sorted({y for m in members.tolist() for y in spent_in[m]})
                refused[slot] = budget_reason(position[members].tolist(), yrs, self.limit)
            allowed = ~np.isin(slot_of, refused_slots)
            charged = bsns[allowed].tolist()
            for year in years:
                db.executemany(
                    "INSERT INTO usage (bsn, year, used) VALUES (?, ?, 1) "
                    "ON CONFLICT (bsn, year) DO UPDATE SET used = used + 1",
                    ((b, year) for b in charged),
                )
            db.execute(
                "INSERT INTO charges (batch_id, chunk_index, refused) VALUES (?, ?, ?)",
                (batch_id, chunk_index, json.dumps({str(k): v for k, v in refused.items()})),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return refused

    def used(self, bsn: int, year: int) -> int:
        """Evaluations charged to ``bsn`` in ``year`` (operators and tests)."""
        with self._lock:
            row = self._db.execute(
                "SELECT used FROM usage WHERE bsn = ? AND year = ?", (bsn, year)
            ).fetchone()
        return 0 if row is None else int(row[0])
