"""The plaintext reference decision (the oracle). Tests, benchmarks and the demo only.

It computes, in the clear and with integer arithmetic, exactly the decision the product
promises: with ``n`` months in the period, ``S`` the household's total of
``gross_cents − tax_cents`` over all members' records in those months, ``N`` the norm in
force at the end of the period for the category and ``K`` the known income:
eligible iff ``S < n·(N − K)``.

It reads the raw polis records (not the store's monthly aggregate the server uses) so it
shares no lookup code with the path it checks. Never put it on a production path: it sees
both parties' data.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from shared.models import Household, Period
from shared.norms import NormTable, load_norm_table


def household_thresholds(
    households: Sequence[Household], period: Period, norms: NormTable
) -> list[int]:
    """``n·(N − K)`` per household, in cents."""
    end = period.end.last_day()
    return [
        period.months * (norms.in_force(h.category, end).amount_cents - h.known_income_cents)
        for h in households
    ]


def oracle_totals(
    records_parquet: Path, households: Sequence[Household], period: Period
) -> list[int]:
    """``S`` per household from the raw records (months stored as ``year*12 + month − 1``)."""
    members = pa.table(
        {
            "seq": [i for i, h in enumerate(households) for _ in h.members],
            "bsn": [int(b) for h in households for b in h.members],
        }
    )
    con = duckdb.connect()
    try:
        con.register("members", members)
        path = str(records_parquet).replace("'", "''")
        rows = con.execute(
            f"""SELECT m.seq, coalesce(SUM(r.gross_cents - r.tax_cents), 0)::BIGINT
                FROM members m LEFT JOIN read_parquet('{path}') r
                  ON r.bsn = m.bsn AND r.month BETWEEN ? AND ?
                GROUP BY m.seq""",
            [period.start.index, period.end.index],
        ).fetchall()
    finally:
        con.close()
    totals = [0] * len(households)
    for seq, total in rows:
        totals[int(seq)] = int(total)
    return totals


def oracle_decisions(
    records_parquet: Path,
    households: Sequence[Household],
    period: Period,
    norms: NormTable | None = None,
) -> dict[str, bool]:
    """``household_id → eligible`` in the clear."""
    table = norms or load_norm_table()
    totals = oracle_totals(records_parquet, households, period)
    thresholds = household_thresholds(households, period, table)
    return {h.household_id: s < t for h, s, t in zip(households, totals, thresholds, strict=True)}


def compare_with_output(
    records_parquet: Path, households: Sequence[Household], period: Period, outreach_csv: Path
) -> tuple[int, list[str]]:
    """Compare an outreach file with the oracle: (households compared, mismatching ids)."""
    expected = oracle_decisions(records_parquet, households, period)
    mismatches: list[str] = []
    compared = 0
    with outreach_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            hid = row["household_id"]
            if row["decision"] == "rejected" or hid not in expected:
                continue
            compared += 1
            if (row["decision"] == "eligible") != expected[hid]:
                mismatches.append(hid)
    return compared, mismatches


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.oracle``: check an outreach file against the plaintext decision."""
    from svb_client.households import read_households
    from uwv_server.store import Snapshot

    parser = argparse.ArgumentParser(prog="python -m shared.oracle", description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--households", type=Path, required=True)
    parser.add_argument("--period", required=True)
    parser.add_argument("--outreach", type=Path, required=True)
    args = parser.parse_args(argv)
    period = Period.parse(args.period)
    parsed = read_households(args.households)
    snapshot = Snapshot.open_current(args.store)
    compared, mismatches = compare_with_output(
        snapshot.directory / "records.parquet", parsed.households, period, args.outreach
    )
    if mismatches:
        print(
            f"oracle check FAILED: {len(mismatches)} of {compared} decisions differ, "
            f"e.g. {', '.join(mismatches[:5])}"
        )
        return 1
    print(f"oracle check passed: all {compared} decisions equal the plaintext oracle's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
