"""UWV's polis store: immutable snapshots of Parquet files queried with DuckDB.

Layout of a store directory::

    store/
      CURRENT                      name of the active snapshot
      snapshots/<digest>/
        records.parquet            every polis record, sorted by (bsn, month, relation_id)
        monthly.parquet            gross and tax per (bsn, month, kind): what screening reads
        manifest.json              row counts, months covered, digest

An import writes a new snapshot next to the old ones and then switches ``CURRENT`` atomically,
so a failed or refused import never loses what was already accepted. A snapshot is named by
the SHA-256 of its ``records.parquet``, so a run can name exactly the data it used.

Screening needs, per period, each person's total net income; :meth:`Snapshot.period_totals`
computes that once per period with one DuckDB aggregation and keeps it as two sorted numpy
arrays, so a chunk lookup is a vectorised binary search.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import duckdb
import numpy as np
import numpy.typing as npt

from shared.digests import file_sha256
from shared.models import NET_INCOME, IncomeWeights, Period, SourceKind
from uwv_server.errors import ImportRefused, StoreError

IntArray = npt.NDArray[np.int64]
_KINDS: Final = tuple(SourceKind)

MAX_REPORTED_PROBLEMS: Final = 20
_KINDS_SQL: Final = "('wage', 'benefit', 'pension', 'other')"

# The elfproef in SQL over the nine-character text, as in shared.bsn.
_ELFPROEF_SQL: Final = " + ".join(
    f"{w} * CAST(substr(bsn, {i + 1}, 1) AS INTEGER)"
    for i, w in enumerate((9, 8, 7, 6, 5, 4, 3, 2, -1))
)


def _problems_sql(source: str) -> str:
    """One row per invalid input row: (line, reason). Line 1 is a CSV header."""
    return f"""
    WITH raw AS (SELECT row_number() OVER () + 1 AS line, * FROM {source}),
    checked AS (
      SELECT line, CASE
        WHEN bsn IS NULL OR NOT regexp_full_match(bsn, '[0-9]{{9}}')
          THEN 'bsn ' || coalesce('''' || bsn || '''', 'empty') || ' is not nine digits'
        WHEN bsn = '000000000' OR ({_ELFPROEF_SQL}) % 11 <> 0
          THEN 'bsn ''' || bsn || ''' fails the elfproef'
        WHEN relation_id IS NULL OR NOT regexp_full_match(relation_id, '-?[0-9]{{1,18}}')
          THEN 'relation_id ' || coalesce('''' || relation_id || '''', 'empty')
               || ' is not an integer'
        WHEN kind IS NULL OR kind NOT IN {_KINDS_SQL}
          THEN 'kind ' || coalesce('''' || kind || '''', 'empty')
               || ' is not one of wage, benefit, pension, other'
        WHEN month IS NULL OR NOT regexp_full_match(month, '[0-9]{{4}}-(0[1-9]|1[0-2])')
          THEN 'month ' || coalesce('''' || month || '''', 'empty') || ' is not YYYY-MM'
        WHEN gross_cents IS NULL OR NOT regexp_full_match(gross_cents, '-?[0-9]{{1,15}}')
          THEN 'gross_cents ' || coalesce('''' || gross_cents || '''', 'empty')
               || ' is not a whole number of cents'
        WHEN tax_cents IS NULL OR NOT regexp_full_match(tax_cents, '-?[0-9]{{1,15}}')
          THEN 'tax_cents ' || coalesce('''' || tax_cents || '''', 'empty')
               || ' is not a whole number of cents'
      END AS reason
      FROM raw
    )
    SELECT line, reason FROM checked WHERE reason IS NOT NULL ORDER BY line
    """


_COLUMNS: Final = ("bsn", "relation_id", "kind", "month", "gross_cents", "tax_cents")


def _reader_sql(path: Path) -> str:
    """The DuckDB table function reading the extract as it is."""
    quoted = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{quoted}')"
    if path.suffix.lower() == ".csv":
        return f"read_csv('{quoted}', all_varchar=true, header=true)"
    raise StoreError(f"{path}: polis extract must be .csv or .parquet")


def _source_sql(reader: str) -> str:
    """The extract with every expected column as text (validated separately)."""
    casts = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in _COLUMNS)
    return f"(SELECT {casts} FROM {reader})"


@dataclass(frozen=True, slots=True)
class ImportResult:
    snapshot: str
    rows: int
    persons: int
    rejected: int


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    return con


def import_polis(path: Path, store: Path, *, skip_invalid: bool = False) -> ImportResult:
    """Validate a polis extract and make it the store's current snapshot.

    Invalid rows refuse the whole import (listing line and reason) unless ``skip_invalid``,
    in which case they are written to ``rejects-<snapshot>.csv`` in the store.
    """
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    con = _connect()
    try:
        reader = _reader_sql(path)
        source = _source_sql(reader)
        try:
            columns = [d[0] for d in con.execute(f"SELECT * FROM {reader} LIMIT 0").description]
        except duckdb.Error as exc:
            raise StoreError(f"{path}: cannot read as polis extract: {exc}") from None
        missing = [c for c in _COLUMNS if c not in columns]
        if missing:
            raise StoreError(f"{path}: missing column(s) {', '.join(missing)}")
        con.execute(f"CREATE TEMP TABLE problems AS {_problems_sql(source)}")
        total_bad = con.execute("SELECT count(*) FROM problems").fetchone()[0]  # type: ignore[index,unused-ignore]
        if total_bad and not skip_invalid:
            shown = con.execute(f"SELECT * FROM problems LIMIT {MAX_REPORTED_PROBLEMS}").fetchall()
            raise ImportRefused(str(path), [(int(a), str(b)) for a, b in shown], int(total_bad))
        store.mkdir(parents=True, exist_ok=True)
        (store / "snapshots").mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=store))
        try:
            records = tmp / "records.parquet"
            con.execute(
                f"""COPY (
                  WITH raw AS (SELECT row_number() OVER () + 1 AS line, * FROM {source})
                  SELECT CAST(bsn AS INTEGER) AS bsn, CAST(relation_id AS BIGINT) AS relation_id,
                         kind, CAST(substr(month, 1, 4) AS INTEGER) * 12
                           + CAST(substr(month, 6, 2) AS INTEGER) - 1 AS month,
                         CAST(gross_cents AS BIGINT) AS gross_cents,
                         CAST(tax_cents AS BIGINT) AS tax_cents
                  FROM raw WHERE line NOT IN (SELECT line FROM problems)
                  ORDER BY bsn, month, relation_id, gross_cents, tax_cents
                ) TO '{records}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"""
            )
            con.execute(
                f"""COPY (SELECT bsn, month, kind, SUM(gross_cents)::BIGINT AS gross_cents,
                           SUM(tax_cents)::BIGINT AS tax_cents
                    FROM read_parquet('{records}') GROUP BY bsn, month, kind
                    ORDER BY bsn, month, kind)
                    TO '{tmp / "monthly.parquet"}' (FORMAT parquet)"""
            )
            stats = con.execute(
                f"SELECT count(*), count(DISTINCT bsn), min(month), max(month) "
                f"FROM read_parquet('{records}')"
            ).fetchone()
            assert stats is not None
            digest = file_sha256(records)
            manifest = {
                "digest": digest,
                "source": str(path),
                "rows": int(stats[0]),
                "persons": int(stats[1]),
                "first_month": None if stats[2] is None else int(stats[2]),
                "last_month": None if stats[3] is None else int(stats[3]),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
            if total_bad:
                con.execute(f"COPY problems TO '{store / f'rejects-{digest[:16]}.csv'}' (HEADER)")
            final = store / "snapshots" / digest
            if final.exists():
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, final)
            _write_current(store, digest)
            return ImportResult(digest, int(stats[0]), int(stats[1]), int(total_bad))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        con.close()


def _weighted_sql(weights: IncomeWeights) -> str:
    """``Σ_kinds w_gross·gross + w_tax·tax`` as SQL; weights are validated integers."""
    gross, tax = dict(weights.gross), dict(weights.tax)
    cases = " ".join(
        f"WHEN '{k.value}' THEN {int(gross[k])} * gross_cents + {int(tax[k])} * tax_cents"
        for k in gross
    )
    return f"CASE kind {cases} ELSE 0 END"


def _write_current(store: Path, digest: str) -> None:
    tmp = store / ".CURRENT.tmp"
    tmp.write_text(digest + "\n")
    os.replace(tmp, store / "CURRENT")


class Snapshot:
    """A read-only polis snapshot with a per-period cache of person totals."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            self.manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{directory}: snapshot manifest unreadable: {exc}") from None
        self.digest: str = str(self.manifest["digest"])
        self._cache: dict[tuple[int, int, IncomeWeights], tuple[IntArray, IntArray]] = {}
        self._person_cache: dict[tuple[int, int, str], tuple[IntArray, IntArray]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open_current(cls, store: Path) -> Snapshot:
        """Open the store's active snapshot."""
        try:
            name = (store / "CURRENT").read_text().strip()
        except OSError:
            raise StoreError(
                f"{store}: no polis loaded yet (run `uwv-server load --polis FILE --store {store}`)"
            ) from None
        return cls(store / "snapshots" / name)

    def period_totals(
        self, period: Period, weights: IncomeWeights = NET_INCOME
    ) -> tuple[IntArray, IntArray]:
        """Sorted BSNs and their weighted income total (cents) over ``period``."""
        key = (period.start.index, period.end.index, weights)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                con = duckdb.connect()
                try:
                    monthly = str(self.directory / "monthly.parquet").replace("'", "''")
                    result = con.execute(
                        f"SELECT bsn, SUM({_weighted_sql(weights)})::BIGINT AS total "
                        f"FROM read_parquet('{monthly}') WHERE month BETWEEN ? AND ? "
                        "GROUP BY bsn ORDER BY bsn",
                        [key[0], key[1]],
                    ).fetchnumpy()
                finally:
                    con.close()
                cached = (
                    np.asarray(result["bsn"], dtype=np.int64),
                    np.asarray(result["total"], dtype=np.int64),
                )
                if len(self._cache) >= 4:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = cached
            return cached

    def person_totals(self, period: Period, terms: PersonMonthTerms) -> tuple[IntArray, IntArray]:
        """Sorted BSNs and, per person, the sum over the period's months of ``terms`` (UWV's own
        per-person, per-month function of its data, e.g. an exemption), computed in plaintext.
        Cached per period and rule (``terms.rule_digest``)."""
        key = (period.start.index, period.end.index, terms.rule_digest)
        with self._lock:
            cached = self._person_cache.get(key)
            if cached is None:
                bsn, _, gross, tax = _person_month_table(self.directory, period)
                values = terms.person_month_total(period, gross, tax)
                cached = _sum_runs(bsn, values)
                if len(self._person_cache) >= 4:
                    self._person_cache.pop(next(iter(self._person_cache)))
                self._person_cache[key] = cached
            return cached

    def household_totals(
        self,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
        weights: IncomeWeights = NET_INCOME,
        person_terms: PersonMonthTerms | None = None,
    ) -> IntArray:
        """Total income per household (``weights`` per kind, plus ``person_terms`` per person
        and month if given); a BSN without records counts as zero.

        Unknown BSNs and persons without records are indistinguishable on purpose: SVB must
        not learn whether a BSN is known at UWV.
        """
        totals = self._household_sum(
            self.period_totals(period, weights), member_bsns, member_counts
        )
        if person_terms is not None and person_terms.person_terms:
            person = self.person_totals(period, person_terms)
            totals = totals + self._household_sum(person, member_bsns, member_counts)
        return totals

    @staticmethod
    def _household_sum(
        table: tuple[IntArray, IntArray], member_bsns: IntArray, member_counts: IntArray
    ) -> IntArray:
        bsns, totals = table
        if len(bsns) == 0:
            return np.zeros(len(member_counts), dtype=np.int64)
        idx = np.searchsorted(bsns, member_bsns)
        idx_c = np.minimum(idx, len(bsns) - 1)
        found = bsns[idx_c] == member_bsns
        per_member = np.where(found, totals[idx_c], 0)
        return _per_household(per_member, member_counts)

    def household_kind_sums(
        self, period: Period, member_bsns: IntArray, member_counts: IntArray
    ) -> tuple[dict[SourceKind, IntArray], dict[SourceKind, IntArray]]:
        """Per source kind, each household's gross and tax totals over ``period``."""
        return kind_sums(self.directory, period, member_bsns, member_counts)


def kind_sums(
    snapshot_dir: Path, period: Period, member_bsns: IntArray, member_counts: IntArray
) -> tuple[dict[SourceKind, IntArray], dict[SourceKind, IntArray]]:
    """Per kind, each household's gross and tax over ``period`` (one scan of the snapshot).

    What a rule may read (the rule evaluator's batch columns); zero for unknown BSNs. Takes the
    snapshot's folder rather than a :class:`Snapshot` because the isolated runner sees only
    ``monthly.parquet`` in its chroot.
    """
    empty = np.zeros(0, np.int64)
    if len(member_counts) == 0:
        return dict.fromkeys(_KINDS, empty), dict.fromkeys(_KINDS, empty)
    codes = " ".join(f"WHEN '{k.value}' THEN {i}" for i, k in enumerate(_KINDS))
    monthly = str(snapshot_dir / "monthly.parquet").replace("'", "''")
    con = duckdb.connect(config={"threads": 2})
    try:
        # One row per (person, kind), ordered by the key bsn·4 + kind: a lookup is then one
        # binary search per member and kind.
        result = con.execute(
            f"SELECT bsn::BIGINT * 4 + (CASE kind {codes} END) AS key, "
            "SUM(gross_cents)::BIGINT AS gross, SUM(tax_cents)::BIGINT AS tax "
            f"FROM read_parquet('{monthly}') WHERE month BETWEEN ? AND ? "
            "GROUP BY ALL ORDER BY key",
            [period.start.index, period.end.index],
        ).fetchnumpy()
    finally:
        con.close()
    keys = np.asarray(result["key"], dtype=np.int64)
    columns = {
        "gross": np.asarray(result["gross"], dtype=np.int64),
        "tax": np.asarray(result["tax"], dtype=np.int64),
    }
    offsets = np.concatenate([[0], np.cumsum(member_counts)[:-1]]).astype(np.int64)
    out: dict[str, dict[SourceKind, IntArray]] = {"gross": {}, "tax": {}}
    for code, kind in enumerate(_KINDS):
        wanted = member_bsns * 4 + code
        if len(keys):
            idx = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            found = keys[idx] == wanted
        for name, values in columns.items():
            if len(keys):
                per_member = np.where(found, values[idx], 0)
            else:
                per_member = np.zeros(len(member_bsns), np.int64)
            out[name][kind] = np.add.reduceat(per_member, offsets).astype(np.int64)
    return out["gross"], out["tax"]


class PersonMonthTerms(Protocol):
    """A per-person, per-month function of UWV's data (an HE plan's ``person_terms``): one
    value per row, each row one person's per-kind gross and tax in one month."""

    @property
    def rule_digest(self) -> str: ...

    @property
    def person_terms(self) -> Mapping[str, int]: ...

    def person_month_total(
        self,
        period: Period,
        gross_cents: Mapping[SourceKind, IntArray],
        tax_cents: Mapping[SourceKind, IntArray],
    ) -> IntArray: ...


def _person_month_table(
    snapshot_dir: Path, period: Period, members: IntArray | None = None
) -> tuple[IntArray, IntArray, dict[SourceKind, IntArray], dict[SourceKind, IntArray]]:
    """One row per (person, month) with records in ``period`` (only ``members`` if given),
    sorted by BSN: bsn, month, and per kind gross and tax.

    DuckDB only filters; the pivot to one row per (person, month) is done here in numpy on
    the scan, which comes in the file's (bsn, month, kind) order. A ``GROUP BY bsn, month
    ORDER BY bsn, month`` over the 16.5 million rows of a national store took 13 s; this
    takes about 3.
    """
    monthly = str(snapshot_dir / "monthly.parquet").replace("'", "''")
    # kind codes in the order of the kind names, so the file's order is the code order
    kinds = sorted(_KINDS, key=lambda k: k.value)
    codes = " ".join(f"WHEN '{k.value}' THEN {i}" for i, k in enumerate(kinds))
    con = duckdb.connect(config={"threads": 2})
    try:
        where = ""
        if members is not None:
            # np.sort, not np.unique: unique imports numpy.ma, which the confined runner lacks
            con.register("wanted", {"bsn": np.sort(members).astype(np.int64)})
            where = "AND bsn IN (SELECT bsn FROM wanted)"
        result = con.execute(
            f"SELECT bsn::BIGINT AS bsn, month::BIGINT AS month, "
            f"(CASE kind {codes} END)::BIGINT AS kind, gross_cents::BIGINT AS gross, "
            f"tax_cents::BIGINT AS tax FROM read_parquet('{monthly}') "
            f"WHERE month BETWEEN ? AND ? {where}",
            [period.start.index, period.end.index],
        ).fetchnumpy()
    finally:
        con.close()
    bsn, month, kind, gross_all, tax_all = (
        np.asarray(result[c], dtype=np.int64) for c in ("bsn", "month", "kind", "gross", "tax")
    )
    if len(bsn) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, dict.fromkeys(_KINDS, empty), dict.fromkeys(_KINDS, empty)
    # (bsn, month, kind) as one sortable key: BSNs < 2**30, months of a period < 2**12
    key = (bsn * 4096 + (month - period.start.index)) * 4 + kind
    if not bool(np.all(key[1:] > key[:-1])):
        # The file is written in (bsn, month, kind) order with one row per key, but a scan's
        # order is not DuckDB's promise: sort, and add up rows that share a key.
        order = np.argsort(key, kind="stable")
        key, gross_all, tax_all = key[order], gross_all[order], tax_all[order]
        first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        key = key[first]
        gross_all = np.add.reduceat(gross_all, first).astype(np.int64)
        tax_all = np.add.reduceat(tax_all, first).astype(np.int64)
        kind = key % 4
    person_month = key // 4
    new_row = np.concatenate([[True], person_month[1:] != person_month[:-1]])
    row = np.cumsum(new_row) - 1  # the output row of every input row
    rows = int(row[-1]) + 1
    gross: dict[SourceKind, IntArray] = {}
    tax: dict[SourceKind, IntArray] = {}
    for code, k in enumerate(kinds):
        mine = kind == code
        gross[k] = np.zeros(rows, dtype=np.int64)
        tax[k] = np.zeros(rows, dtype=np.int64)
        gross[k][row[mine]] = gross_all[mine]  # one input row per (person, month, kind)
        tax[k][row[mine]] = tax_all[mine]
    starts = person_month[new_row]
    return starts // 4096, starts % 4096 + period.start.index, gross, tax


def person_month_rows(
    snapshot_dir: Path, period: Period, member_bsns: IntArray, member_counts: IntArray
) -> tuple[IntArray, dict[SourceKind, IntArray], dict[SourceKind, IntArray]]:
    """The batch's per-person, per-month rows for a rule's ``per: person_month`` outputs:
    (household position per row, gross per kind, tax per kind). Like :func:`kind_sums`, it
    takes the snapshot's folder (the isolated runner sees only ``monthly.parquet``)."""
    bsn, _, gross, tax = _person_month_table(snapshot_dir, period, member_bsns)
    household_of = np.repeat(np.arange(len(member_counts), dtype=np.int64), member_counts)
    order = np.argsort(member_bsns, kind="stable")
    sorted_bsns = member_bsns[order]
    lo = np.searchsorted(sorted_bsns, bsn, side="left")
    hi = np.searchsorted(sorted_bsns, bsn, side="right")
    # A BSN is in at most one household of a batch (validated), so each row has one owner.
    keep = hi > lo
    owner = household_of[order[np.minimum(lo, len(order) - 1)]] if len(order) else lo
    return (
        owner[keep].astype(np.int64),
        {k: v[keep] for k, v in gross.items()},
        {k: v[keep] for k, v in tax.items()},
    )


def _sum_runs(keys: IntArray, values: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct sorted ``keys`` and the sum of ``values`` per key (``keys`` sorted)."""
    if len(keys) == 0:
        return keys, values
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(values, starts).astype(np.int64)


def _per_household(per_member: IntArray, member_counts: IntArray) -> IntArray:
    """Sum consecutive runs of ``member_counts`` members (every count is at least one)."""
    offsets = np.concatenate([[0], np.cumsum(member_counts)[:-1]]).astype(np.int64)
    return np.add.reduceat(per_member, offsets).astype(np.int64)
