"""Differencing protection: the durable charge ledger (budget per BSN per year, retries, batches).

A yes/no per household still leaks income when SVB may ask again and again with a moving
threshold (a binary search on one person's income takes ~20 questions), and SVB need not use
our client: every rule below holds against messages crafted by hand (DESIGN §4).

- **Budget.** Every member of every evaluated household is charged one evaluation per calendar
  year the reference period touches (a period 2024-11..2025-01 costs one in 2024 and one in
  2025; a per-period key would let SVB reset the count by shifting the period a month). A
  household is refused once any member has used ``limit`` evaluations in a year, all modes
  together, or ``mode_limits[mode]`` in that mode.
- **Once per batch.** A BSN takes part in at most one household per batch: a later occurrence
  (in the same chunk, another chunk, or a re-sent chunk of the same batch) is a refused
  household, not charged. The batch's BSNs are the durable ``members`` of its charge rows, so
  the rule survives a restart.
- **Retries.** A chunk is identified by ``(batch_id, chunk_index)`` *and* the digest of its
  content (:func:`uwv_server.service.chunk_digest`: header, households, members). The same id
  with the same digest gets the stored refusals and answer back, byte for
  byte, and is not charged again (a fresh masked sample of the same difference would leak
  more); the same id with another digest raises :class:`ReplayConflict` and is recorded in
  ``conflicts`` for the audit log. A batch id is bound to its header the same way.
- **Charges are the record.** One append-only row per charged chunk, written (``synchronous=
  FULL``) before the chunk is evaluated; its answer is stored before it is sent. The audit
  trail logs every row exactly once (``entry``), crash or not (:mod:`uwv_server.audit_trail`).

The per-BSN counts are rebuilt from the rows at start-up and kept in memory: charging a
national batch writes one small row per chunk instead of rewriting thousands of randomly
placed B-tree pages. They are sorted numpy levels (:class:`BsnCounts`), 12 bytes per BSN per
year and again per mode and year: a year of 1M households (1.44M BSNs) takes 33 MiB, where
``Counter``s took ~204 MiB; an open batch's once-only set takes 8 bytes per BSN. Measured with
``benchmarks/bench_budget.py`` at 1M households (2 shared cores, numpy 2.4): budget time 1.9 s
for a fresh batch, 2.4 s on top of one, 8.5 s when every household is refused (Counters and
``np.union1d``: 8.0 s, 8.1 s, 23 s); start-up replay 0.6 s, peak +95 MiB (0.7 s, +273 MiB).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from shared.errors import Error, InputError
from shared.models import Period
from uwv_server.budget_counts import SeenBsns, YearCounts

IntArray = npt.NDArray[np.int64]

DEFAULT_LIMIT: Final = 12
"""Evaluations per BSN per calendar year, all modes: monthly screening fits, a search does not."""
MODES: Final = ("masked", "strict", "enclave")
ENCLAVE_PREFIX: Final = "enclave:"
"""Ledger batch ids of compute-to-data runs: ``enclave:<run_id>`` (HE batch ids may not use it)."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id    TEXT PRIMARY KEY,
    header      TEXT NOT NULL,
    meta        TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    last_entry  INTEGER
);
CREATE TABLE IF NOT EXISTS charges (
    batch_id    TEXT    NOT NULL,
    chunk_index INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    mode        TEXT    NOT NULL,
    years       TEXT    NOT NULL,
    members     BLOB    NOT NULL,
    charged     BLOB    NOT NULL,
    refused     TEXT    NOT NULL,
    households  INTEGER NOT NULL,
    audit       BLOB    NOT NULL,
    at          TEXT    NOT NULL,
    entry       INTEGER,
    pending     TEXT,
    PRIMARY KEY (batch_id, chunk_index)
);
CREATE TABLE IF NOT EXISTS answers (
    batch_id    TEXT    NOT NULL,
    chunk_index INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    answer      BLOB    NOT NULL,
    PRIMARY KEY (batch_id, chunk_index)
);
CREATE TABLE IF NOT EXISTS conflicts (
    id          INTEGER PRIMARY KEY,
    batch_id    TEXT    NOT NULL,
    chunk_index INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    entry       INTEGER,
    pending     TEXT
);
CREATE TABLE IF NOT EXISTS pending_entries (
    leaf_hash   TEXT PRIMARY KEY,
    batch_id    TEXT NOT NULL,
    leaf        BLOB NOT NULL
);
"""
"""``charges``: one row per charged chunk; ``members`` every BSN of the chunk (the batch's
once-only set), ``charged`` those charged (sorted int64 little-endian), ``audit`` the chunk's
digest for the audit entry, ``entry`` the log index of the entry that recorded it (``pending``
while that entry is being appended). ``answers``: the answer sent, stored before sending."""

_OPEN_BATCHES: Final = 16
"""Batches whose BSN sets are kept in memory (others are reloaded from their rows)."""


_REPLAY_SLICE: Final = 1 << 20
"""BSNs of charge rows the start-up replay counts at once (8 MiB)."""


class BudgetError(Error):
    """The budget database cannot be opened or written."""


class ReplayConflict(InputError):
    """An id that was already used, now with other content: refused (and logged)."""

    code = "replay"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one household of a chunk is not evaluated: ``code`` is ``budget`` or ``duplicate``."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Stored:
    """What a chunk id already has: its refusals and (once evaluated) the answer sent."""

    refused: dict[int, Refusal]
    answer: bytes | None


@dataclass(frozen=True, slots=True)
class ChargeRow:
    """One charged chunk as the audit trail sees it."""

    chunk_index: int
    households: int
    charged: int
    refused: int
    audit_digest: bytes
    result_digest: bytes | None
    at: str


@dataclass(frozen=True, slots=True)
class Unlogged:
    """The charges and conflicts of a batch that no audit entry records yet."""

    batch_id: str
    meta: dict[str, str]
    opened_at: str
    rows: list[ChargeRow]
    conflicts: list[int]
    last_entry: int | None


def budget_reason(members: list[int], years: list[int], limit: int, mode: str = "") -> str:
    """The text a refused household gets (positions of the members, never their BSNs)."""
    who = ", ".join(str(m) for m in members)
    what = f"{limit} {mode} evaluations" if mode else f"{limit} evaluations"
    return (
        f"budget exhausted: member(s) at position {who} of this household already took part "
        f"in {what} in {', '.join(str(y) for y in years)}; "
        "no further screening of this household is allowed in that year"
    )


def duplicate_reason(members: list[int]) -> str:
    who = ", ".join(str(m) for m in members)
    return (
        f"member(s) at position {who} of this household already appear in an earlier household "
        "of this batch; a person is evaluated at most once per batch"
    )


def pack_blobs(items: Sequence[bytes]) -> bytes:
    """Length-prefixed concatenation (u32 count, then u64 length + bytes per item)."""
    out = [struct.pack("<I", len(items))]
    for item in items:
        out.append(struct.pack("<Q", len(item)))
        out.append(item)
    return b"".join(out)


def unpack_blobs(data: bytes) -> list[bytes]:
    (count,) = struct.unpack_from("<I", data, 0)
    pos, items = 4, []
    for _ in range(count):
        (n,) = struct.unpack_from("<Q", data, pos)
        items.append(data[pos + 8 : pos + 8 + n])
        pos += 8 + n
    return items


def _by_slot(
    mask: npt.NDArray[np.bool_], slot_of: IntArray
) -> tuple[IntArray, list[tuple[int, int, int]]]:
    """The members in ``mask`` (their indices, in order) and, for each slot among them,
    ``(slot, start, stop)`` into those indices. One pass, as ``slot_of`` is sorted: a test of
    every member per slot would be quadratic in a chunk whose households are all refused."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return idx, []
    slots = slot_of[idx]
    cuts = (np.flatnonzero(slots[1:] != slots[:-1]) + 1).tolist()
    starts, stops = [0, *cuts], [*cuts, len(idx)]
    return idx, list(zip(slot_of[idx[starts]].tolist(), starts, stops, strict=True))


class SqliteBudget:
    """The durable ledger behind :class:`uwv_server.service.BudgetPolicy` (every mode)."""

    def __init__(
        self,
        path: Path,
        *,
        limit: int = DEFAULT_LIMIT,
        mode_limits: Mapping[str, int] | None = None,
    ) -> None:
        if limit < 1:
            raise BudgetError(f"budget limit must be at least 1, got {limit}")
        self.limit = limit
        self.mode_limits = dict(mode_limits or {})
        for mode, n in self.mode_limits.items():
            if mode not in MODES:
                raise BudgetError(f"budget for unknown mode {mode!r}; modes are {MODES}")
            if not 1 <= n <= limit:
                raise BudgetError(f"budget of mode {mode} must be 1..{limit} (the total), got {n}")
        self.path = path
        self._lock = threading.Lock()
        self._counts = YearCounts()
        self._seen: OrderedDict[str, SeenBsns] = OrderedDict()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate_v1()
            self._db.executescript(_SCHEMA)
            self._replay()
        except sqlite3.Error as exc:
            raise BudgetError(f"{path}: cannot open the budget database: {exc}") from None

    def limit_of(self, mode: str) -> int:
        return self.mode_limits.get(mode, self.limit)

    def _migrate_v1(self) -> None:
        """A budget database of the first release (charges without digests, modes, members):
        keep every charge, as mode ``legacy`` and already logged (that release logged batches
        from memory), so the yearly counts carry over and nothing is logged twice."""
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(charges)")]
        if not columns or "digest" in columns:
            return
        rows = self._db.execute(
            "SELECT batch_id, chunk_index, years, charged, refused FROM charges"
        ).fetchall()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("ALTER TABLE charges RENAME TO charges_v1")
            charges = next(t for t in _SCHEMA.split(";") if "TABLE IF NOT EXISTS charges" in t)
            self._db.execute(charges)  # not executescript: it would commit the transaction
            for batch_id, chunk_index, years, charged, refused in rows:
                reasons = {k: ["budget", str(v)] for k, v in json.loads(refused).items()}
                self._db.execute(
                    "INSERT INTO charges (batch_id, chunk_index, digest, mode, years, members,"
                    " charged, refused, households, audit, at, entry)"
                    " VALUES (?, ?, '', 'legacy', ?, ?, ?, ?, 0, x'', '', -1)",
                    (batch_id, chunk_index, years, charged, charged, json.dumps(reasons)),
                )
            self._db.execute("DROP TABLE charges_v1")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _replay(self) -> None:
        """Rebuild the in-memory counts from the durable charges (start-up), in slices of
        about ``_REPLAY_SLICE`` BSNs: fewer merges than row by row, and the memory it takes
        is that of the counts plus one slice, not of every BSN ever charged."""
        pending: dict[tuple[str, tuple[int, ...]], list[IntArray]] = {}
        size: dict[tuple[str, tuple[int, ...]], int] = {}
        for mode, years, charged in self._db.execute("SELECT mode, years, charged FROM charges"):
            key = (str(mode), tuple(int(y) for y in json.loads(years)))
            pending.setdefault(key, []).append(np.frombuffer(charged, dtype="<i8"))
            size[key] = size.get(key, 0) + len(charged) // 8
            if size[key] >= _REPLAY_SLICE:
                self._counts.add(key[0], key[1], np.concatenate(pending.pop(key)))
                del size[key]
        for (mode, years), arrays in pending.items():
            self._counts.add(mode, years, np.concatenate(arrays))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, what: str, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self._db.execute(sql, args).fetchall()]
        except sqlite3.Error as exc:
            raise BudgetError(f"{self.path}: {what}: {exc}") from None

    # --- batches ---------------------------------------------------------------------------

    def open_batch(
        self, batch_id: str, header_digest: str, meta: Mapping[str, str], at: datetime
    ) -> bool:
        """Bind ``batch_id`` to its header; True if the batch was opened before (a resume).

        :class:`ReplayConflict` (recorded) if the id was used with another header.
        """
        with self._lock:
            row = self._run(
                "batch not opened", "SELECT header FROM batches WHERE batch_id = ?", (batch_id,)
            )
            if row and row[0][0] != header_digest:
                self._conflict(batch_id, -1, at)
                raise ReplayConflict(
                    f"batch_id {batch_id!r} was used before with another header (context, mode, "
                    "period or rule); a batch id names one batch: use a new id"
                )
            if not row:
                self._run(
                    "batch not opened",
                    "INSERT INTO batches (batch_id, header, meta, opened_at) VALUES (?, ?, ?, ?)",
                    (batch_id, header_digest, json.dumps(dict(meta)), at.isoformat()),
                )
            return bool(row)

    def conflict(self, batch_id: str, chunk_index: int, at: datetime) -> None:
        """Record a refused reuse of an id (for the audit log)."""
        with self._lock:
            self._conflict(batch_id, chunk_index, at)

    def _conflict(self, batch_id: str, chunk_index: int, at: datetime) -> None:
        self._run(
            "conflict not recorded",
            "INSERT INTO conflicts (batch_id, chunk_index, at) VALUES (?, ?, ?)",
            (batch_id, chunk_index, at.isoformat()),
        )

    # --- chunks ----------------------------------------------------------------------------

    def lookup(self, batch_id: str, chunk_index: int, digest: str, at: datetime) -> Stored | None:
        """What this chunk id already has; None if it is new.

        :class:`ReplayConflict` (recorded) if it was charged with other content.
        """
        with self._lock:
            row = self._run(
                "lookup failed",
                "SELECT digest, refused FROM charges WHERE batch_id = ? AND chunk_index = ?",
                (batch_id, chunk_index),
            )
            if not row:
                return None
            if row[0][0] != digest:
                self._conflict(batch_id, chunk_index, at)
                raise ReplayConflict(
                    f"chunk {chunk_index} of batch {batch_id!r} was answered before with other "
                    "content; a retry must re-send exactly the same chunk (refused and logged)"
                )
            answer = self._run(
                "lookup failed",
                "SELECT answer FROM answers WHERE batch_id = ? AND chunk_index = ?",
                (batch_id, chunk_index),
            )
        refused = {
            int(k): Refusal(str(v[0]), str(v[1])) for k, v in json.loads(str(row[0][1])).items()
        }
        return Stored(refused, bytes(answer[0][0]) if answer else None)

    def charge(
        self,
        *,
        batch_id: str,
        chunk_index: int,
        digest: str,
        mode: str,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
        audit_digest: bytes,
        at: datetime,
    ) -> dict[int, Refusal]:
        """Charge one evaluation per member of every household that may be evaluated.

        Returns ``{slot: refusal}`` for households that must not be evaluated (a member
        already in this batch, or a member's budget spent); those are not charged. Call
        :meth:`lookup` first: charging an id twice is a :class:`BudgetError`.
        """
        if mode not in MODES:
            raise BudgetError(f"unknown mode {mode!r}")
        years = list(range(period.start.year, period.end.year + 1))
        with self._lock:
            try:
                return self._charge(
                    batch_id, chunk_index, digest, mode, years, member_bsns, member_counts,
                    audit_digest, at,
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise BudgetError(
                    f"chunk {chunk_index} of batch {batch_id!r} is already charged"
                ) from None
            except sqlite3.Error as exc:
                raise BudgetError(f"{self.path}: budget not charged: {exc}") from None

    def _seen_of(self, batch_id: str) -> SeenBsns:
        seen = self._seen.get(batch_id)
        if seen is None:
            seen = SeenBsns()
            for (members,) in self._db.execute(
                "SELECT members FROM charges WHERE batch_id = ?", (batch_id,)
            ):
                seen.add(np.frombuffer(members, dtype="<i8").astype(np.int64))
            self._seen[batch_id] = seen
            while len(self._seen) > _OPEN_BATCHES:
                self._seen.popitem(last=False)
        self._seen.move_to_end(batch_id)
        return seen

    def _charge(
        self,
        batch_id: str,
        chunk_index: int,
        digest: str,
        mode: str,
        years: list[int],
        member_bsns: IntArray,
        member_counts: IntArray,
        audit_digest: bytes,
        at: datetime,
    ) -> dict[int, Refusal]:
        bsns = np.asarray(member_bsns, dtype=np.int64)
        counts = np.asarray(member_counts, dtype=np.int64)
        slot_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        position = np.arange(len(bsns), dtype=np.int64) - np.repeat(
            np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64), counts
        )
        # One sort serves every lookup below (searchsorted with sorted keys is ~2x faster).
        order = np.argsort(bsns, kind="stable")
        ordered = bsns[order]
        seen = self._seen_of(batch_id)
        # Once per batch: earlier chunks of the batch, then earlier slots of this chunk.
        duplicate = np.empty(len(bsns), dtype=np.bool_)
        duplicate[order] = seen.contains(ordered)
        again = np.zeros(len(bsns), dtype=np.bool_)  # not the first occurrence in this chunk
        again[order[1:]] = ordered[1:] == ordered[:-1]
        duplicate |= again
        spent_in = np.zeros(len(bsns), dtype=np.int64)  # the first year a member is spent
        blocked = np.zeros(len(bsns), dtype=np.bool_)
        mode_limit = self.limit_of(mode)
        # A mode's count never exceeds the total: without a lower limit of its own, the total
        # already refuses everyone the mode would (half the lookups of the default set-up).
        checks = [(None, self.limit)] + ([(mode, mode_limit)] if mode_limit < self.limit else [])
        for year in years:
            for in_mode, limit in checks:
                hit = np.empty(len(bsns), dtype=np.bool_)
                hit[order] = self._counts.used(year, ordered, in_mode) >= limit
                spent_in[hit & ~blocked] = year
                blocked |= hit
        refused: dict[int, Refusal] = {}
        idx, runs = _by_slot(duplicate, slot_of)
        where = position[idx].tolist()
        for slot, start, stop in runs:
            refused[slot] = Refusal("duplicate", duplicate_reason(where[start:stop]))
        per_mode = mode_limit < self.limit
        idx, runs = _by_slot(blocked, slot_of)
        where, spent = position[idx].tolist(), spent_in[idx].tolist()
        for slot, start, stop in runs:
            if slot in refused:
                continue
            refused[slot] = Refusal(
                "budget",
                budget_reason(
                    where[start:stop],
                    sorted(set(spent[start:stop])),
                    mode_limit if per_mode else self.limit,
                    mode if per_mode else "",
                ),
            )
        refused_slots = np.array(sorted(refused), dtype=np.int64)
        charged = np.sort(bsns[~np.isin(slot_of, refused_slots)])
        # Durable first: the row is the charge; memory follows once it is committed.
        self._db.execute(
            "INSERT INTO charges (batch_id, chunk_index, digest, mode, years, members, charged,"
            " refused, households, audit, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                batch_id,
                chunk_index,
                digest,
                mode,
                json.dumps(years),
                bsns.astype("<i8").tobytes(),
                charged.astype("<i8").tobytes(),
                json.dumps({str(k): [v.code, v.reason] for k, v in refused.items()}),
                len(counts),
                audit_digest,
                at.isoformat(),
            ),
        )
        seen.add(bsns)
        self._counts.add(mode, years, charged)
        return refused

    def store_answer(self, batch_id: str, chunk_index: int, digest: str, answer: bytes) -> None:
        """Keep the answer of a charged chunk (durably, before it is sent)."""
        with self._lock:
            self._run(
                "answer not stored",
                "INSERT INTO answers (batch_id, chunk_index, digest, answer) VALUES (?, ?, ?, ?)",
                (batch_id, chunk_index, digest, answer),
            )

    def refund(self, batch_id: str, chunk_index: int) -> None:
        """Undo the charge of a chunk whose evaluation failed (no answer was ever sent)."""
        with self._lock:
            row = self._run(
                "refund failed",
                "SELECT mode, years, charged FROM charges WHERE batch_id = ? AND chunk_index = ?"
                " AND entry IS NULL AND pending IS NULL AND NOT EXISTS (SELECT 1 FROM answers a"
                " WHERE a.batch_id = charges.batch_id AND a.chunk_index = charges.chunk_index)",
                (batch_id, chunk_index),
            )
            if not row:
                return
            mode, years, charged = row[0]
            self._run(
                "refund failed",
                "DELETE FROM charges WHERE batch_id = ? AND chunk_index = ?",
                (batch_id, chunk_index),
            )
            bsns = np.frombuffer(charged, dtype="<i8").astype(np.int64)
            self._counts.add(str(mode), json.loads(str(years)), bsns, sign=-1)
            self._seen.pop(batch_id, None)  # rebuilt from the remaining rows when next needed

    def used(self, bsn: int, year: int, mode: str | None = None) -> int:
        """Evaluations charged to ``bsn`` in ``year`` (in ``mode``, or all modes)."""
        with self._lock:
            return int(self._counts.used(year, np.array([bsn], dtype=np.int64), mode)[0])

    # --- the audit trail's view ------------------------------------------------------------

    def unlogged(self, batch_id: str) -> Unlogged | None:
        """The batch's charges and conflicts that no audit entry holds yet (None: nothing)."""
        with self._lock:
            meta = self._run(
                "read failed",
                "SELECT meta, opened_at, last_entry FROM batches WHERE batch_id = ?",
                (batch_id,),
            )
            rows = self._run(
                "read failed",
                "SELECT c.chunk_index, c.households, length(c.charged) / 8, c.refused, c.audit,"
                " c.at, a.answer FROM charges c LEFT JOIN answers a ON a.batch_id = c.batch_id"
                " AND a.chunk_index = c.chunk_index WHERE c.batch_id = ? AND c.entry IS NULL"
                " AND c.pending IS NULL ORDER BY c.chunk_index",
                (batch_id,),
            )
            conflicts = self._run(
                "read failed",
                "SELECT id FROM conflicts WHERE batch_id = ? AND entry IS NULL"
                " AND pending IS NULL ORDER BY id",
                (batch_id,),
            )
        if not rows and not conflicts:
            return None
        out = [
            ChargeRow(
                chunk_index=int(r[0]),
                households=int(r[1]),
                charged=int(r[2]),
                refused=len(json.loads(str(r[3]))),
                audit_digest=bytes(r[4]),
                result_digest=None
                if r[6] is None
                else hashlib.sha256(
                    b"".join(hashlib.sha256(x).digest() for x in unpack_blobs(bytes(r[6])))
                ).digest(),
                at=str(r[5]),
            )
            for r in rows
        ]
        m, opened, last = meta[0] if meta else ("{}", out[0].at if out else "", None)
        return Unlogged(
            batch_id=batch_id,
            meta={str(k): str(v) for k, v in json.loads(str(m)).items()},
            opened_at=str(opened),
            rows=out,
            conflicts=[int(c[0]) for c in conflicts],
            last_entry=None if last is None else int(last),
        )

    def batches_unlogged(self) -> list[str]:
        """Batch ids with charges or conflicts that no audit entry holds (crash recovery)."""
        with self._lock:
            rows = self._run(
                "read failed",
                "SELECT batch_id FROM charges WHERE entry IS NULL AND pending IS NULL UNION "
                "SELECT batch_id FROM conflicts WHERE entry IS NULL AND pending IS NULL",
            )
        return sorted(str(r[0]) for r in rows)

    def prepare_log(self, work: Unlogged, leaf: bytes, leaf_hash: str) -> None:
        """Mark ``work`` as being appended as ``leaf`` (so a crash mid-append is resolved)."""
        chunks = [r.chunk_index for r in work.rows]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO pending_entries VALUES (?, ?, ?)", (leaf_hash, work.batch_id, leaf)
                )
                self._db.executemany(
                    "UPDATE charges SET pending = ? WHERE batch_id = ? AND chunk_index = ?",
                    [(leaf_hash, work.batch_id, c) for c in chunks],
                )
                self._db.executemany(
                    "UPDATE conflicts SET pending = ? WHERE id = ?",
                    [(leaf_hash, c) for c in work.conflicts],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise BudgetError(f"{self.path}: audit entry not prepared: {exc}") from None

    def logged(self, leaf_hash: str, index: int | None) -> None:
        """The pending entry ``leaf_hash`` is in the log at ``index`` (None: it is not)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute(
                    "SELECT batch_id FROM pending_entries WHERE leaf_hash = ?", (leaf_hash,)
                ).fetchone()
                for table in ("charges", "conflicts"):
                    self._db.execute(
                        f"UPDATE {table} SET entry = ?, pending = NULL WHERE pending = ?",
                        (index, leaf_hash),
                    )
                if row is not None and index is not None:
                    self._db.execute(
                        "UPDATE batches SET last_entry = ? WHERE batch_id = ?", (index, row[0])
                    )
                self._db.execute("DELETE FROM pending_entries WHERE leaf_hash = ?", (leaf_hash,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise BudgetError(f"{self.path}: audit entry not recorded: {exc}") from None

    def pending_entries(self) -> list[tuple[str, bytes]]:
        """(leaf hash, leaf) of entries whose append may not have completed."""
        with self._lock:
            rows = self._run("read failed", "SELECT leaf_hash, leaf FROM pending_entries")
        return [(str(h), bytes(b)) for h, b in rows]
