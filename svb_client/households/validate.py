"""Validate a household file out of core: memory bounded, however many households it has.

A household's rows may be anywhere in the file and a BSN may turn up in two households, so the
checks that span rows need the whole file. Instead of holding it, the rows go (as they are
read, a part at a time, after :func:`~svb_client.households.rows.row_checks`) into a Parquet
file in a private temporary folder, which DuckDB scans; its grouping, joins and sorts spill
to that folder beyond :data:`MEMORY_LIMIT`. Out come the accepted households in file order,
a part at a time, and then the rejected ones.

The rules, in the order in which they decide a household's reason (its first problem wins):

1. a wrong row (line and field named): :mod:`svb_client.households.rows`;
2. a BSN also in another household: every household involved is rejected;
3. rows of one household that disagree on ``cost_sharers``, then on ``category``;
4. whatever :func:`shared.chunk.household_problems` finds (the rules UWV's services apply
   too: members, a couple of one, the same BSN twice, known income).

Households are identified by their trimmed id; a row without one is rejected on its own, as
``<no id, line N>``. Nothing is dropped silently: every household ends up either accepted
or rejected. The folder holds SVB's input (BSNs), so it is made beside the batch's journal
(see :func:`svb_client.pipeline.run.run_screen`) and removed when validation ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared.chunk import household_problems
from shared.errors import InputError
from svb_client.households.batch import HouseholdBatch
from svb_client.households.rows import read_parts, row_checks

MEMORY_LIMIT: Final = "128MB"
"""DuckDB's working memory while validating; beyond it, it spills to the temporary folder."""
PART_HOUSEHOLDS: Final = 65_536
"""Households per part that :func:`read_households` collects (any size works)."""

_RANK_RULE: Final = 1 << 42  # above twice any line number


def _rank(rule: int, line: int, side: int = 0) -> int:
    """Orders a household's problems: by rule (above), then line, then which side of a pair."""
    return rule * _RANK_RULE + 2 * line + side


_SCHEMA: Final = "CREATE TABLE problems (hid VARCHAR, rank BIGINT, message VARCHAR)"
_ROWS: Final = pa.schema(
    [
        ("line", pa.int64()),
        ("hid", pa.string()),
        ("bsn", pa.int64()),
        ("cat", pa.string()),
        ("known", pa.int64()),
        ("sharers", pa.int64()),
    ]
)
"""The checked rows, written to a Parquet file that DuckDB scans (faster than inserting)."""


def _add_problems(con: duckdb.DuckDBPyConnection, found: list[tuple[str, int, str]]) -> None:
    """Insert (household id, rank, message) rows as one Arrow table (many rows stay fast)."""
    if found:
        hids, ranks, messages = zip(*found, strict=True)
        incoming = pa.table(
            {
                "hid": pa.array(hids, pa.string()),
                "rank": pa.array(ranks, pa.int64()),
                "message": pa.array(messages, pa.string()),
            }
        )
        con.register("incoming_problems", incoming)
        con.execute("INSERT INTO problems SELECT * FROM incoming_problems")
        con.unregister("incoming_problems")


def _stream(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql`` a record batch at a time, from a cursor of its own (so ``con`` can
    write meanwhile)."""
    cursor = con.cursor()
    try:
        for batch in cursor.sql(sql).to_arrow_reader(PART_HOUSEHOLDS):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            yield list(zip(*columns, strict=True))
    finally:
        cursor.close()


class ValidatedHouseholds:
    """A household file after validation, read back a part at a time.

    Iterate :meth:`parts` once, to the end, before :meth:`rejected`: the last rules are
    applied as the parts are made.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, path: Path, rows: int, candidates: int
    ) -> None:
        self._con = con
        self._path = path
        self.rows = rows
        """Rows in the file (without its header)."""
        self.candidates = candidates
        """Households that passed rules 1-3: :meth:`parts` accepts these but those that
        fail rule 4."""
        self._parts_done = False

    def parts(
        self, size: int, on_households: Callable[[int], None] | None = None
    ) -> Iterator[HouseholdBatch]:
        """The accepted households in file order (a household at its first row, its members
        in file order), ``size`` at a time (the last part may be smaller). ``on_households``
        is told how many of the :attr:`candidates` each step has checked (for a progress
        line)."""
        if size < 1:
            raise ValueError("part size must be at least 1")
        with _duckdb_errors(self._path, "group the households"):
            # The members of the households that passed rules 1-3 in file order (one sort,
            # which spills), each row with its household's columns.
            cursor = self._con.cursor()
            try:
                reader = cursor.sql(
                    "SELECT c.first_line, r.line, r.bsn, c.hid, c.cat_min, c.known_sum, "
                    "c.sharers_min FROM member_rows r JOIN candidates c USING (hid) "
                    "ORDER BY c.first_line, r.line"
                ).to_arrow_reader(PART_HOUSEHOLDS)
                waiting: list[HouseholdBatch] = []
                held = 0
                for members in _whole_households(reader):
                    accepted, checked = self._rule_four(members)
                    if on_households is not None:
                        on_households(checked)
                    waiting.append(accepted)
                    held += len(accepted)
                    if held >= size:
                        *full, rest = HouseholdBatch.concat(waiting).split(size, keep_rest=True)
                        yield from full
                        waiting, held = [rest], len(rest)
                if held:
                    yield HouseholdBatch.concat(waiting)
            finally:
                cursor.close()
        self._parts_done = True

    def _rule_four(self, members: pa.Table) -> tuple[HouseholdBatch, int]:
        """The households of ``members`` (rows of whole households, a household's rows
        together) that pass :func:`household_problems`, and how many households it had; the
        others are recorded as problems (rule 4)."""
        first_line = members.column("first_line").to_numpy().astype(np.int64)
        lines = members.column("line").to_numpy().astype(np.int64)
        bsns = members.column("bsn").to_numpy().astype(np.int64)
        starts = np.flatnonzero(np.diff(first_line, prepend=-1) != 0)
        size = np.diff(starts, append=len(first_line)).astype(np.int64)
        head = pa.array(starts)
        ids = [str(v) for v in members.column("hid").take(head).to_pylist()]
        categories = [str(v) for v in members.column("cat_min").take(head).to_pylist()]
        known = members.column("known_sum").take(head).to_numpy().astype(np.int64)
        sharers = members.column("sharers_min").take(head).to_numpy().astype(np.int64)
        problems = household_problems(
            size,
            bsns,
            is_couple=np.array([c == "couple" for c in categories], dtype=np.bool_),
            known_income_cents=known,
        )
        found = []
        for slot, problem in problems.items():
            at = lines[starts[slot]] if problem.member < 0 else lines[starts[slot] + problem.member]
            message = f"line {int(at)}: household {ids[slot]!r}: {problem.reason}"
            found.append((ids[slot], _rank(4, int(at)), message))
        _add_problems(self._con, found)
        keep = np.ones(len(size), dtype=np.bool_)
        keep[list(problems)] = False
        member_keep = np.repeat(keep, size)
        accepted = HouseholdBatch(
            household_ids=[h for h, k in zip(ids, keep, strict=True) if k],
            categories=[c for c, k in zip(categories, keep, strict=True) if k],
            known_income_cents=known[keep],
            member_counts=size[keep],
            member_bsns=bsns[member_keep],
            rejected=[],
            rows=int(member_keep.sum()),
            cost_sharers=sharers[keep],
        )
        return accepted, len(size)

    def rejected(self) -> Iterator[tuple[str, str]]:
        """(household id, reason) of every rejected household, by id; after :meth:`parts`."""
        if not self._parts_done:
            raise RuntimeError("read every part before the rejected households")
        with _duckdb_errors(self._path, "list the rejected households"):
            for rows in _stream(
                self._con,
                "SELECT hid, arg_min(message, rank) FROM problems GROUP BY hid ORDER BY hid",
            ):
                yield from ((str(hid), str(reason)) for hid, reason in rows)


def _whole_households(reader: pa.RecordBatchReader) -> Iterator[pa.Table]:
    """Member rows sorted by household (``first_line``), regrouped so that no household is
    split between two tables: a batch's last household waits for the next batch."""
    carry: pa.Table | None = None
    for batch in reader:
        table = pa.Table.from_batches([batch])
        if carry is not None:
            table = pa.concat_tables([carry, table])
        if table.num_rows == 0:
            continue
        first_line = table.column("first_line").to_numpy()
        last = int(np.searchsorted(first_line, first_line[-1]))  # where the last one starts
        if last:
            yield table.slice(0, last).combine_chunks()
        carry = table.slice(last)
    if carry is not None and carry.num_rows:
        yield carry.combine_chunks()


@contextmanager
def _duckdb_errors(path: Path, doing: str) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        raise InputError(
            f"{path}: cannot {doing} while validating (DuckDB: {exc}); check the free space "
            "beside the journal"
        ) from None


def _load(con: duckdb.DuckDBPyConnection, path: Path, rows_file: Path) -> int:
    """Every row into ``rows_file`` (the view ``member_rows``), every wrong row into
    ``problems`` (rule 1); the row count."""
    with pq.ParquetWriter(rows_file, _ROWS, compression="none") as writer:
        line = _write_rows(con, path, writer)
    quoted = str(rows_file).replace("'", "''")  # a folder may be called o'brien
    con.execute(f"CREATE VIEW member_rows AS SELECT * FROM read_parquet('{quoted}')")
    return line - 2


def _write_rows(con: duckdb.DuckDBPyConnection, path: Path, writer: pq.ParquetWriter) -> int:
    line = 2  # line 1 is the CSV header
    for part in read_parts(path):
        checked = row_checks(part)
        n = part.num_rows
        lines = np.arange(line, line + n, dtype=np.int64)
        hid = checked.household_id
        if isinstance(hid, pa.ChunkedArray):
            hid = hid.combine_chunks()
        empty = np.asarray(pc.equal(hid, "").to_numpy(zero_copy_only=False), dtype=bool)
        if empty.any():
            hid = pc.replace_with_mask(
                hid,
                pa.array(empty),
                pa.array([f"<no id, line {int(v)}>" for v in lines[empty]], pa.string()),
            )
        writer.write_table(
            pa.table(
                [
                    lines,
                    hid,
                    checked.bsn,
                    checked.category,
                    checked.known_income_cents,
                    checked.cost_sharers,
                ],
                schema=_ROWS,
            )
        )
        wrong = np.flatnonzero(checked.reasons != None)  # noqa: E711 - object array
        if len(wrong):
            ids = pc.take(hid, pa.array(wrong)).to_pylist()
            _add_problems(
                con,
                [
                    (str(h), _rank(1, int(lines[i])), f"line {int(lines[i])}: {checked.reasons[i]}")
                    for h, i in zip(ids, wrong, strict=True)
                ],
            )
        line += n
    return line


def _households(con: duckdb.DuckDBPyConnection) -> int:
    """One row per household (``households``), rules 2 and 3 into ``problems``, and the
    households without a problem so far (``candidates``, counted)."""
    con.execute(
        """
        CREATE TABLE households AS
        SELECT hid, min(line) AS first_line, count(*)::BIGINT AS size,
               min(cat) AS cat_min, max(cat) AS cat_max, sum(known)::BIGINT AS known_sum,
               min(sharers) AS sharers_min, max(sharers) AS sharers_max
        FROM member_rows GROUP BY hid
        """
    )
    # Rule 2: a BSN's first row (in file order) names its owner; every later row of another
    # household rejects that household and the owner.
    for rows in _stream(
        con,
        """
        SELECT line, bsn, hid, owner FROM (
            SELECT line, bsn, hid,
                   first_value(hid) OVER (PARTITION BY bsn ORDER BY line) AS owner
            FROM member_rows
            WHERE bsn IN (
                SELECT bsn FROM member_rows WHERE bsn > 0 GROUP BY bsn HAVING count(*) > 1
            )
        ) WHERE hid <> owner
        """,
    ):
        found: list[tuple[str, int, str]] = []
        for line, bsn, hid, owner in rows:
            text = f"bsn {bsn:09d} is also in household"
            found.append((str(hid), _rank(2, int(line)), f"line {line}: {text} {owner!r}"))
            found.append((str(owner), _rank(2, int(line), 1), f"{text} {hid!r}"))
        _add_problems(con, found)
    for rows in _stream(
        con, "SELECT hid, first_line FROM households WHERE sharers_min <> sharers_max"
    ):
        _add_problems(
            con,
            [
                (str(hid), _rank(3, int(first)), f"line {first}: household {hid!r}: "
                 "rows disagree on cost_sharers")
                for hid, first in rows
            ],
        )  # fmt: skip
    for rows in _stream(
        con,
        "SELECT g.hid, g.first_line, list(DISTINCT r.cat) FROM households g "
        "JOIN member_rows r USING (hid) WHERE g.cat_min <> g.cat_max GROUP BY g.hid, g.first_line",
    ):
        _add_problems(
            con,
            [
                (str(hid), _rank(3, int(first), 1), f"line {first}: household {hid!r}: rows "
                 f"disagree on category ({', '.join(sorted(str(v) for v in values))})")
                for hid, first, values in rows
            ],
        )  # fmt: skip
    con.execute(
        "CREATE TABLE candidates AS SELECT g.* FROM households g ANTI JOIN problems p USING (hid)"
    )
    return int(con.execute("SELECT count(*) FROM candidates").fetchall()[0][0])


@contextmanager
def validate_households(
    path: Path, *, workdir: Path | None = None, memory_limit: str = MEMORY_LIMIT
) -> Iterator[ValidatedHouseholds]:
    """Validate ``path``; the result is readable until the context ends.

    ``workdir``: where the temporary folder goes (default: the system's); it holds SVB's
    input while validating, so put it where the batch's own data lives. Raises
    :class:`InputError` for a file that cannot be read (see
    :func:`~svb_client.households.rows.read_parts`) or a database that cannot be written.
    """
    with tempfile.TemporaryDirectory(prefix=".households-", dir=workdir) as tmp:
        with _duckdb_errors(path, "open a working database"):
            con = duckdb.connect(
                str(Path(tmp) / "households.duckdb"),
                config={
                    "memory_limit": memory_limit,
                    "temp_directory": str(Path(tmp) / "spill"),
                    "preserve_insertion_order": False,
                    "threads": 1,
                },
            )
        try:
            with _duckdb_errors(path, "store the rows"):
                con.execute("SET enable_progress_bar = false")  # it would write to stdout
                con.execute(_SCHEMA)
                rows = _load(con, path, Path(tmp) / "rows.parquet")
                candidates = _households(con)
            yield ValidatedHouseholds(con, path, rows, candidates)
        finally:
            con.close()


def read_households(path: Path) -> HouseholdBatch:
    """Read and validate a whole household file into one batch (tests, the oracle, the
    plaintext baseline; a batch run reads :func:`validate_households` part by part)."""
    with validate_households(path) as validated:
        parts = list(validated.parts(PART_HOUSEHOLDS))
        rejected = list(validated.rejected())
        return HouseholdBatch.concat(parts, rejected=rejected, rows=validated.rows)
