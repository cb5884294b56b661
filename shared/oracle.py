"""The plaintext reference decision (the oracle). Tests, benchmarks and the demo only.

It computes, in the clear and with integer arithmetic, exactly the decision the product
promises, written straight from the law text and independent of the rule code (its own
tables below, its own cost-sharer formula, its own exemption):

* ``N`` the norm in force on the last day of the period (art. 22 Participatiewet): single, or
  couple; with ``c`` cost-sharers (art. 22a) ``A = c + 1`` (+1 for a partner) and per person
  ``round((40 + 30·A) / (100·A) × couple norm)`` to the cent (half up), twice that for a couple;
* ``S`` the household's total of ``gross − tax`` over all members' records in the period,
  minus per person and month the work-income exemption of art. 31 lid 2 onder n:
  ``min(cap, ⌊25% × net wage of that month⌋)`` (nothing for a month whose net wage is ≤ 0);
  the cap in force on the last day of the period;
* eligible iff ``S < n·(N − K)`` with ``n`` the months of the period and ``K`` the known income.

It reads the raw polis records (not the store's monthly aggregate the server uses) so it
shares no lookup code with the path it checks. Never put it on a production path: it sees
both parties' data.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from shared.errors import NormError
from shared.models import Household, NormCategory, Period

# Participatiewet (BWBR0015703), text per date: (valid_from, single art. 22.a, couple art. 22.b,
# cap of art. 31 lid 2 onder n), euro cents. Typed in from the law texts, not from the rule.
LAW_TABLE: Final = (
    (date(2024, 1, 1), 142576, 193232, 26400),
    (date(2024, 7, 1), 145685, 197664, 26900),
    (date(2025, 1, 1), 150107, 205348, 27300),
    (date(2025, 7, 1), 153021, 209498, 27800),
    (date(2026, 1, 1), 156469, 214416, 28500),
    (date(2026, 7, 1), 158734, 217610, 28500),
)


WORK_EXEMPTION_IN_RULE: Final = True
"""Set once the shipped rule applies art. 31 lid 2 onder n (the oracle checks the rule)."""


def law_in_force(on: date) -> tuple[int, int, int]:
    """(single norm, couple norm, work-income cap) in force on ``on``; the newest until the end
    of its half year, then :class:`NormError`."""
    newest = LAW_TABLE[-1][0]
    end = date(newest.year, 6, 30) if newest.month <= 6 else date(newest.year, 12, 31)
    rows = [r for r in LAW_TABLE if r[0] <= on]
    if not rows or on > end:
        raise NormError(f"the oracle has no norm in force on {on} (its table ends {end})")
    _, single, couple, cap = rows[-1]
    return single, couple, cap


def household_norm(household: Household, on: date) -> int:
    """The monthly norm of one household on ``on`` (art. 22 and 22a)."""
    single, couple, _ = law_in_force(on)
    is_couple = household.category is NormCategory.COUPLE
    if household.cost_sharers == 0:
        return couple if is_couple else single
    a = household.cost_sharers + (2 if is_couple else 1)
    numerator, denominator = (40 + 30 * a) * couple, 100 * a
    per_person = (2 * numerator + denominator) // (2 * denominator)  # half up, exact
    return 2 * per_person if is_couple else per_person


def household_thresholds(households: Sequence[Household], period: Period) -> list[int]:
    """``n·(N − K)`` per household, in cents."""
    end = period.end.last_day()
    return [period.months * (household_norm(h, end) - h.known_income_cents) for h in households]


def oracle_totals(
    records_parquet: Path, households: Sequence[Household], period: Period
) -> list[int]:
    """``S`` per household from the raw records (months stored as ``year*12 + month − 1``):
    net income minus the work-income exemption per person and month."""
    _, _, cap = law_in_force(period.end.last_day())
    if not WORK_EXEMPTION_IN_RULE:
        cap = 0
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
            f"""WITH pm AS (
                  SELECT bsn, month, SUM(gross_cents - tax_cents) AS net,
                         SUM(CASE WHEN kind = 'wage' THEN gross_cents - tax_cents ELSE 0 END)
                           AS wage
                  FROM read_parquet('{path}') WHERE month BETWEEN ? AND ?
                  GROUP BY bsn, month),
                counted AS (
                  SELECT bsn, SUM(net - CASE WHEN wage > 0
                                        THEN least(?, (25 * wage) // 100) ELSE 0 END) AS s
                  FROM pm GROUP BY bsn)
                SELECT m.seq, coalesce(SUM(c.s), 0)::BIGINT
                FROM members m LEFT JOIN counted c ON c.bsn = m.bsn
                GROUP BY m.seq""",
            [period.start.index, period.end.index, cap],
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
) -> dict[str, bool]:
    """``household_id → eligible`` in the clear."""
    totals = oracle_totals(records_parquet, households, period)
    thresholds = household_thresholds(households, period)
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
