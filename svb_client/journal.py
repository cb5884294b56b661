"""The batch journal (SQLite): what a batch is, which chunks are done, every decision.

Every mode journals (masked, strict, compute-to-data). A batch is written to the journal in
full before anything is sent: accepted households with their chunk and slot (as validated
:class:`shared.chunk.HouseholdChunk`), what the mode sends with them (HE thresholds, a
compute-to-data run's salt), and rejected households with their reason. Each chunk's
decisions are then stored in one transaction together with marking the chunk done, so after
a crash at any
point a resumed run sends exactly the chunks that are not done: no household is lost and
none is decided twice. A compute-to-data chunk also keeps its signed run statement.

The journal holds no key and no amount from UWV; it does hold SVB's own input (BSNs,
thresholds), so it lives with SVB's data and is protected like it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.chunk import HouseholdChunk, HouseholdError
from shared.errors import Error

IntArray = npt.NDArray[np.int64]
SCHEMA_VERSION: Final = 2

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


class Pending:
    """The chunks a run still has to send, read from the journal one at a time as they are
    needed (iterated to send, looked up by index when an answer arrives), so the exchange holds
    a few chunks in memory, however large the batch."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.indices = journal.pending_indices()
        self.households = journal.pending_households()

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[PendingChunk]:
        for index in self.indices:
            yield self._journal.chunk(index)

    def get(self, index: int) -> PendingChunk:
        return self._journal.chunk(index)


@dataclass(frozen=True, slots=True, eq=False)
class PendingChunk:
    """A chunk of the batch plan: its households (validated), and what its mode sends."""

    index: int
    household_ids: list[str]
    households: HouseholdChunk
    thresholds: IntArray | None = None
    """HE modes: the total threshold per household."""
    salt: bytes = b""
    """Compute-to-data: the run's salt (kept, so that a resumed run is the same request)."""

    def __post_init__(self) -> None:
        if len(self.household_ids) != len(self.households):
            raise JournalError(
                f"chunk {self.index}: {len(self.household_ids)} ids for "
                f"{len(self.households)} households"
            )


def _blob(array: npt.NDArray[np.generic] | None, dtype: str) -> bytes | None:
    return None if array is None else np.asarray(array).astype(dtype).tobytes()


def _ints(blob: bytes) -> IntArray:
    return np.frombuffer(blob, dtype="<i8").astype(np.int64)


def _ints_or_none(blob: bytes | None) -> IntArray | None:
    return None if blob is None else _ints(blob)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._owner = threading.get_ident()
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        with _sqlite_errors(path, "open it"):
            self._db = sqlite3.connect(path, isolation_level=None)
            self._open()

    def _reader(self) -> sqlite3.Connection:
        """A connection for reading chunks in this thread: a transport may consume the chunks
        to send in a thread of its own (gRPC's request iterator) while answers are journalled
        here; WAL lets each read from its own connection."""
        me = threading.get_ident()
        if me == self._owner:
            return self._db
        with self._readers_lock:
            db = self._readers.get(me)
            if db is None:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._readers[me] = db
            return db

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS chunks (
              idx INTEGER PRIMARY KEY, household_ids TEXT NOT NULL, member_counts BLOB NOT NULL,
              member_bsns BLOB NOT NULL, is_couple BLOB, known_income BLOB, thresholds BLOB,
              salt BLOB NOT NULL DEFAULT x'', cost_sharers BLOB,
              done INTEGER NOT NULL DEFAULT 0, decisions BLOB, slot_errors TEXT,
              receipt BLOB, receipt_digest TEXT);
            CREATE TABLE IF NOT EXISTS rejected (
              seq INTEGER PRIMARY KEY, household_id TEXT NOT NULL, reason TEXT NOT NULL);
            """
        )
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
        if "cost_sharers" not in columns:  # a journal of before the compute-to-data column
            self._db.execute("ALTER TABLE chunks ADD COLUMN cost_sharers BLOB")
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise JournalError(
                f"{self.path} was written by another svb-client version (journal schema "
                f"{row[0]}, this one writes {SCHEMA_VERSION}); finish that batch with that "
                "version, or start over with --fresh"
            )

    def close(self) -> None:
        with _sqlite_errors(self.path, "close it"):
            with self._readers_lock:
                for db in self._readers.values():
                    db.close()
                self._readers.clear()
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
        chunks: Iterable[PendingChunk],
        rejected: Iterable[tuple[str, str]],
    ) -> None:
        """Write the whole batch plan in one transaction; ``chunks`` is read to its end
        before ``rejected`` (so both may be generators over a file being validated)."""
        with _sqlite_errors(self.path, "write the batch plan"):
            self._create(identity, chunks, rejected)

    def _create(
        self,
        identity: dict[str, str],
        chunks: Iterable[PendingChunk],
        rejected: Iterable[tuple[str, str]],
    ) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM meta")
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM rejected")
            db.executemany(
                "INSERT INTO chunks (idx, household_ids, member_counts, member_bsns, is_couple, "
                "known_income, thresholds, salt, cost_sharers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        c.index,
                        "\n".join(c.household_ids),
                        _blob(c.households.member_counts, "<i8"),
                        _blob(c.households.member_bsns, "<i8"),
                        _blob(c.households.is_couple, "u1"),
                        _blob(c.households.known_income_cents, "<i8"),
                        _blob(c.thresholds, "<i8"),
                        c.salt,
                        _blob(c.households.cost_sharers, "<i8"),
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

    def note(self, key: str) -> str | None:
        """A note kept with the batch (e.g. the sealed request awaiting its response)."""
        with _sqlite_errors(self.path, "read it"):
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (f"note:{key}",))
            found = row.fetchone()
        return None if found is None else str(found[0])

    def set_note(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` with the batch (replacing an earlier one); fsynced."""
        with _sqlite_errors(self.path, "write a note"):
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"note:{key}", value)
            )

    def counts(self) -> tuple[int, int]:
        """(chunks in the batch, chunks done)."""
        with _sqlite_errors(self.path, "read it"):
            row = self._db.execute("SELECT count(*), coalesce(sum(done), 0) FROM chunks").fetchone()
        return int(row[0]), int(row[1])

    def pending(self) -> Iterator[PendingChunk]:
        """The chunks without a recorded result, in order; each is validated again."""
        for index in self.pending_indices():
            yield self.chunk(index)

    def pending_indices(self) -> list[int]:
        """The indices of the chunks without a recorded result, in order."""
        with _sqlite_errors(self.path, "read it"):
            rows = self._db.execute("SELECT idx FROM chunks WHERE done = 0 ORDER BY idx")
            return [int(idx) for (idx,) in rows]

    def pending_households(self) -> int:
        """Households in the chunks without a recorded result (8 bytes of counts each)."""
        with _sqlite_errors(self.path, "read it"):
            row = self._db.execute(
                "SELECT coalesce(sum(length(member_counts)), 0) FROM chunks WHERE done = 0"
            ).fetchone()
        return int(row[0]) // 8

    def chunk(self, index: int) -> PendingChunk:
        """One chunk of the plan, read from disk and validated again (done or not)."""
        with _sqlite_errors(self.path, "read it"):
            row = (
                self._reader()
                .execute(
                    "SELECT household_ids, member_counts, member_bsns, is_couple, known_income, "
                    "thresholds, salt, cost_sharers FROM chunks WHERE idx = ?",
                    (index,),
                )
                .fetchone()
            )
        if row is None:
            raise JournalError(f"{self.path}: the batch has no chunk {index}")
        ids, counts, bsns, couple, known, thresholds, salt, sharers = row
        try:
            households = HouseholdChunk(
                _ints(counts),
                _ints(bsns),
                None if couple is None else np.frombuffer(couple, dtype="u1") == 1,
                _ints_or_none(known),
                _ints_or_none(sharers),
            )
        except HouseholdError as exc:
            raise JournalError(f"{self.path}: chunk {index} is damaged: {exc}") from None
        return PendingChunk(
            index=index,
            household_ids=str(ids).split("\n"),
            households=households,
            thresholds=_ints_or_none(thresholds),
            salt=bytes(salt),
        )

    def record(
        self,
        index: int,
        decisions: npt.NDArray[np.int8],
        slot_errors: dict[int, str],
        *,
        receipt: bytes = b"",
        receipt_digest: str = "",
    ) -> None:
        """Store one chunk's decisions (and a mode's receipt, e.g. a signed run statement) and
        mark it done, atomically (fsynced)."""
        with _sqlite_errors(self.path, f"record chunk {index}"):
            cur = self._db.execute(
                "UPDATE chunks SET done = 1, decisions = ?, slot_errors = ?, receipt = ?, "
                "receipt_digest = ? WHERE idx = ? AND done = 0",
                (
                    decisions.astype(np.int8).tobytes(),
                    json.dumps(slot_errors),
                    receipt or None,
                    receipt_digest or None,
                    index,
                ),
            )
        if cur.rowcount != 1:
            raise JournalError(f"chunk {index} is unknown or already decided; not recorded twice")

    def receipts(self) -> Iterator[tuple[bytes, str]]:
        """(receipt, its digest) of every done chunk that has one, in chunk order."""
        with _sqlite_errors(self.path, "read it"):
            for receipt, receipt_digest in self._db.execute(
                "SELECT receipt, receipt_digest FROM chunks WHERE done = 1 AND receipt IS NOT NULL "
                "ORDER BY idx"
            ):
                yield bytes(receipt), str(receipt_digest or "")

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
