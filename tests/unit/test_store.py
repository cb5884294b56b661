"""The polis store: imports are validated, atomic, and never lose an accepted snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.models import Month, Period, SourceKind
from tests.conftest import POLIS_COLUMNS, bsn_from, write_csv
from uwv_server.errors import ImportRefused, StoreError
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

A, B = bsn_from(1), bsn_from(2)
GOOD = [
    [A, 1, "pension", "2025-01", 10000, 1000],
    [A, 1, "pension", "2025-02", 10000, 1000],
    [A, 2, "wage", "2025-02", 5000, 500],
    [A, 1, "pension", "2025-02", -2000, -200],  # correction
    [B, 3, "benefit", "2024-12", 7000, 700],
]


def test_import_and_period_totals(tmp_path: Path) -> None:
    result = import_polis(write_csv(tmp_path / "p.csv", POLIS_COLUMNS, GOOD), tmp_path / "s")
    assert (result.rows, result.persons, result.rejected) == (5, 2, 0)
    snap = Snapshot.open_current(tmp_path / "s")
    assert snap.digest == result.snapshot
    totals = snap.household_totals(
        Period.parse("2025-01..2025-12"),
        np.array([int(A), int(B), 111222333], dtype=np.int64),
        np.array([1, 2], dtype=np.int64),
    )
    # A: 9000 + 9000 + 4500 - 1800; B has nothing in 2025; 111222333 is unknown -> 0
    assert totals.tolist() == [20700, 0]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["12345678", 1, "wage", "2025-01", 1, 0], "bsn '12345678' is not nine digits"),
        (["123456789", 1, "wage", "2025-01", 1, 0], "bsn '123456789' fails the elfproef"),
        ([A, "r1", "wage", "2025-01", 1, 0], "relation_id 'r1' is not an integer"),
        ([A, 1, "salary", "2025-01", 1, 0], "kind 'salary' is not one of"),
        ([A, 1, "wage", "2025-13", 1, 0], "month '2025-13' is not YYYY-MM"),
        ([A, 1, "wage", "25-01", 1, 0], "month '25-01' is not YYYY-MM"),
        ([A, 1, "wage", "2025-01", "1.5", 0], "gross_cents '1.5' is not a whole number"),
        ([A, 1, "wage", "2025-01", 1, ""], "tax_cents empty is not a whole number"),
    ],
)
def test_invalid_rows_refuse_the_import_with_line(
    tmp_path: Path, row: list[object], reason: str
) -> None:
    import_polis(write_csv(tmp_path / "ok.csv", POLIS_COLUMNS, GOOD), tmp_path / "s")
    before = (tmp_path / "s" / "CURRENT").read_text()
    with pytest.raises(ImportRefused) as info:
        import_polis(write_csv(tmp_path / "p.csv", POLIS_COLUMNS, [*GOOD, row]), tmp_path / "s")
    assert f"line 7: {reason}" in str(info.value)
    # nothing already accepted is lost: the previous snapshot is still current
    assert (tmp_path / "s" / "CURRENT").read_text() == before


def test_skip_invalid_imports_the_rest_and_writes_rejects(tmp_path: Path) -> None:
    rows = [*GOOD, ["123456789", 1, "wage", "2025-01", 1, 0]]
    result = import_polis(
        write_csv(tmp_path / "p.csv", POLIS_COLUMNS, rows), tmp_path / "s", skip_invalid=True
    )
    assert (result.rows, result.rejected) == (5, 1)
    rejects = list((tmp_path / "s").glob("rejects-*.csv"))
    assert len(rejects) == 1 and "elfproef" in rejects[0].read_text()


def test_missing_columns_and_files(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("bsn,kind\n111222333,wage\n")
    with pytest.raises(StoreError, match="missing column"):
        import_polis(path, tmp_path / "s")
    with pytest.raises(StoreError, match="no such file"):
        import_polis(tmp_path / "nope.csv", tmp_path / "s")
    with pytest.raises(StoreError, match="no polis loaded"):
        Snapshot.open_current(tmp_path / "empty")


def test_synthetic_generator_is_deterministic_and_loads(tmp_path: Path) -> None:
    period = Period.parse("2025-01..2025-12")
    a = generate(500, period, tmp_path / "a", seed=7)
    b = generate(500, period, tmp_path / "b", seed=7)
    assert a.polis_path.read_bytes() == b.polis_path.read_bytes()
    assert a.households_path.read_bytes() == b.households_path.read_bytes()
    result = import_polis(a.polis_path, tmp_path / "s")
    assert result.rows == a.records
    # some persons have no records at all; corrections (negative amounts) occur
    assert result.persons < a.persons
    import duckdb

    con = duckdb.connect()
    negatives = con.execute(
        f"SELECT count(*) FROM read_parquet('{a.polis_path}') WHERE gross_cents < 0"
    ).fetchall()
    assert negatives[0][0] > 0


EXEMPTION_RULE = """
$id: test/vrijlating
machine_readable:
  definitions:
    maximum: {legal_basis: &b {law: P, article: '31'}, valid_from: '2026-01-01', value: 28500}
    deel: {legal_basis: *b, value: 25}
    honderd: {legal_basis: *b, value: 100}
    norm: {legal_basis: *b, valid_from: '2026-01-01', value: 156469}
  input:
    - {name: netto, type: amount, source: {polis: net_income}}
    - {name: loon, type: amount, source: {polis: net_income, kinds: [wage], sum_over: []}}
  output:
    - {name: vrij, type: amount, per: person_month}
    - {name: besluit, type: boolean, returned: true}
  actions:
    - output: vrij
      value:
        operation: MIN
        values:
          - $maximum
          - operation: MAX
            values:
              - 0
              - operation: FLOOR
                precision: 0
                value:
                  operation: DIVIDE
                  values: [{operation: MULTIPLY, values: [$loon, $deel]}, $honderd]
    - output: besluit
      value:
        operation: LESS_THAN
        subject: {operation: SUBTRACT, values: [$netto, $vrij]}
        value: $norm
"""


def test_person_month_terms_are_added_per_person_and_month(tmp_path: Path) -> None:
    """An exemption like art. 31 lid 2 onder n, computed by UWV per person and month (art. 31 lid 2
    onder n: min(cap, 25% of that month's net wage)), added to the household totals."""
    from shared.models import Period, SourceKind
    from shared.rules import check, compile_he, parse_text
    from tests.conftest import POLIS_COLUMNS, bsn_from, write_csv
    from uwv_server.store import Snapshot, import_polis, person_month_rows

    a, b, c = bsn_from(1), bsn_from(2), bsn_from(3)
    polis = write_csv(
        tmp_path / "p.csv",
        POLIS_COLUMNS,
        [
            [a, 1, "wage", "2026-01", 200000, 0],  # exemption capped: 28500
            [a, 2, "wage", "2026-01", 10000, 10000],  # same month, other relation: net 0 more
            [a, 1, "wage", "2026-02", 40000, 0],  # 10000
            [b, 1, "pension", "2026-01", 50000, 0],  # no wage: 0
            [c, 1, "wage", "2026-03", 80000, 0],  # outside the period
        ],
    )
    import_polis(polis, tmp_path / "store")
    snapshot = Snapshot.open_current(tmp_path / "store")
    plan = compile_he(check(parse_text(EXEMPTION_RULE)))
    period = Period.parse("2026-01..2026-02")
    bsns = np.array([int(a), int(b), int(c)], np.int64)
    counts = np.array([2, 1], np.int64)
    totals = snapshot.household_totals(period, bsns, counts, plan.income_weights, person_terms=plan)
    assert totals.tolist() == [200000 + 40000 + 50000 - 28500 - 10000, 0]
    owner, gross, _tax = person_month_rows(snapshot.directory, period, bsns, counts)
    assert owner.tolist() == [0, 0, 0]
    assert sorted(gross[SourceKind.WAGE].tolist()) == [0, 40000, 210000]


@pytest.mark.parametrize("shuffled", [False, True])
def test_person_month_table_pivots_any_row_order(tmp_path: Path, shuffled: bool) -> None:
    """The pivot relies on the file's (bsn, month, kind) order only when it holds; rows in
    another order, or two rows for one (person, month, kind), give the same table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from uwv_server.store import _person_month_table

    rng = np.random.default_rng(5)
    kinds = [k.value for k in SourceKind]
    rows = [
        (
            int(b),
            int(m),
            kinds[int(k)],
            int(rng.integers(-50_000, 500_000)),
            int(rng.integers(0, 9_000)),
        )
        for b in rng.choice(np.arange(100_000_000, 100_000_400), 60, replace=False)
        for m in rng.choice(np.arange(24_290, 24_310), 4, replace=False)
        for k in rng.choice(4, 2, replace=False)
    ]
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    if shuffled:
        rows = rows + rows[:7]  # duplicates of a (person, month, kind) add up
        order = rng.permutation(len(rows))
        rows = [rows[i] for i in order]
    table = pa.table(
        {
            name: [r[i] for r in rows]
            for i, name in enumerate(("bsn", "month", "kind", "gross_cents", "tax_cents"))
        }
    )
    pq.write_table(table, tmp_path / "monthly.parquet")
    period = Period(Month.from_index(24_295), Month.from_index(24_304))
    expected: dict[tuple[int, int], dict[str, list[int]]] = {}
    for b, m, k, g, t in rows:
        if period.start.index <= m <= period.end.index:
            cell = expected.setdefault((b, m), {kind: [0, 0] for kind in kinds})
            cell[k][0] += g
            cell[k][1] += t
    bsn, month, gross, tax = _person_month_table(tmp_path, period)
    assert list(zip(bsn.tolist(), month.tolist(), strict=True)) == sorted(expected)
    for i, key in enumerate(sorted(expected)):
        for kind in SourceKind:
            assert [int(gross[kind][i]), int(tax[kind][i])] == expected[key][kind.value]
