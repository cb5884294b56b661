"""Benchmark: the rule evaluator on the AIO rule versus a hand-written numpy query.

    python benchmarks/bench_rules.py [N_PERSONS] [--repeat R] [--duckdb]

Generates N persons (default 10,000,000; about 30% of households are couples) as per-household
polis sums per source kind, evaluates ``rules/aio.yaml`` with the vectorised evaluator, and
computes the same decision by hand (numpy, and optionally DuckDB). Prints the times, the
ratio evaluator / hand-written (target <= 1.5), and checks that all decisions agree.
Batch construction (input checks) is timed separately: both sides get the same arrays.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.models import Period, SourceKind
from shared.rules.batch import Batch, PersonMonths
from shared.rules.check import check
from shared.rules.evaluate import evaluate
from shared.rules.parse import parse_file

AIO = Path(__file__).resolve().parents[1] / "rules" / "aio.yaml"
PERIOD = Period.parse("2025-01..2025-03")
NORM_SINGLE, NORM_COUPLE = 150107, 205348  # in force on 2025-03-31
WORK_CAP = 27300  # art. 31 lid 2 onder n, text of 2025-01-01: EUR 273,00 per month


def generate(persons: int, seed: int = 1) -> dict[str, Any]:
    """Per-household sums over members and 3 months, roughly like AOW pensioners' polis data."""
    rng = np.random.default_rng(seed)
    households = round(persons / 1.3)
    couple = rng.random(households) < 0.3
    members = 1 + couple
    gross: dict[SourceKind, npt.NDArray[np.int64]] = {}
    tax: dict[SourceKind, npt.NDArray[np.int64]] = {}
    share = {
        SourceKind.PENSION: 0.9,
        SourceKind.WAGE: 0.1,
        SourceKind.BENEFIT: 0.05,
        SourceKind.OTHER: 0.02,
    }
    for kind, p in share.items():
        has = rng.random(households) < p
        # a whole number of cents per month, the same in each of the 3 months
        amount = rng.lognormal(9.9, 0.8, households).astype(np.int64) * members * has
        gross[kind] = 3 * amount.astype(np.int64)
        tax[kind] = 3 * (amount * rng.uniform(0.05, 0.4, households)).astype(np.int64)
    known = np.where(couple, 180_000, 140_000) + rng.integers(-5_000, 5_000, households)
    return {"gross": gross, "tax": tax, "couple": couple, "known": known.astype(np.int64)}


def person_months(gross: dict[SourceKind, Any], tax: dict[SourceKind, Any]) -> PersonMonths:
    """The household's wage as one person-month row per month (the generator gives equal
    months; a couple's wage counts as one earner's here)."""
    n = len(gross[SourceKind.WAGE])
    rows = np.repeat(np.arange(n, dtype=np.int64), 3)
    return PersonMonths(
        rows,
        {SourceKind.WAGE: np.repeat(gross[SourceKind.WAGE] // 3, 3)},
        {SourceKind.WAGE: np.repeat(tax[SourceKind.WAGE] // 3, 3)},
    )


def by_hand(batch: Batch) -> npt.NDArray[np.bool_]:
    """The AIO decision written directly: S < n * (N - K), S net income minus the work-income
    exemption min(cap, 25% of the month's net wage) per month."""
    s = batch.gross_cents[SourceKind.WAGE] - batch.tax_cents[SourceKind.WAGE]
    month_wage = s // 3
    exemption: npt.NDArray[np.int64] = np.minimum(WORK_CAP, np.maximum(0, (25 * month_wage) // 100))
    s = s - 3 * exemption
    for kind in (SourceKind.BENEFIT, SourceKind.PENSION, SourceKind.OTHER):
        s += batch.gross_cents[kind]
        s -= batch.tax_cents[kind]
    t = np.where(batch.is_couple, NORM_COUPLE, NORM_SINGLE) - batch.known_income_cents
    t *= PERIOD.months
    decision: npt.NDArray[np.bool_] = s < t
    return decision


def by_duckdb(batch: Batch) -> npt.NDArray[np.bool_]:
    """The same decision as a DuckDB query over the numpy columns."""
    import duckdb
    import pyarrow as pa

    cols: dict[str, npt.NDArray[Any]] = {f"g_{k.value}": batch.gross_cents[k] for k in SourceKind}
    cols |= {f"t_{k.value}": batch.tax_cents[k] for k in SourceKind}
    cols |= {"couple": batch.is_couple, "known": batch.known_income_cents}
    households = pa.table(cols)  # noqa: F841 - read by DuckDB's replacement scan
    net = " + ".join(f"(g_{k.value} - t_{k.value})" for k in SourceKind)
    net += f" - 3 * least({WORK_CAP}, greatest(0, (25 * ((g_wage - t_wage) // 3)) // 100))"
    query = (
        f"SELECT ({net}) < {PERIOD.months} * (CASE WHEN couple THEN {NORM_COUPLE} "
        f"ELSE {NORM_SINGLE} END - known) AS d FROM households"
    )
    out = duckdb.sql(query).fetchnumpy()["d"]
    return np.asarray(out, dtype=np.bool_)


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("persons", type=int, nargs="?", default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duckdb", action="store_true", help="also time a DuckDB query")
    args = parser.parse_args(argv)

    rule = check(parse_file(AIO))
    data = generate(args.persons)
    t_batch, batch = best(
        lambda: Batch.from_columns(
            period=PERIOD,
            gross_cents=data["gross"],
            tax_cents=data["tax"],
            is_couple=data["couple"],
            known_income_cents=data["known"],
            person_months=person_months(data["gross"], data["tax"]),
        ),
        1,
    )
    t_rule, result = best(lambda: evaluate(rule, batch).decision, args.repeat)
    t_hand, hand = best(lambda: by_hand(batch), args.repeat)
    n = len(batch)
    print(f"persons {args.persons:,}  households {n:,}  eligible {int(hand.sum()):,}")
    print(f"batch checks      {t_batch * 1e3:9.1f} ms")
    print(f"rule evaluator    {t_rule * 1e3:9.1f} ms  ({n / t_rule / 1e6:.1f} M households/s)")
    print(f"hand-written numpy{t_hand * 1e3:9.1f} ms  ({n / t_hand / 1e6:.1f} M households/s)")
    print(f"ratio evaluator / numpy: {t_rule / t_hand:.2f}  (target <= 1.5)")
    ok = bool((result == hand).all())
    if args.duckdb:
        t_duck, duck = best(lambda: by_duckdb(batch), args.repeat)
        print(
            f"hand-written duckdb{t_duck * 1e3:8.1f} ms; ratio evaluator / duckdb: "
            f"{t_rule / t_duck:.2f}"
        )
        ok = ok and bool((duck == hand).all())
    print("decisions identical" if ok else "DECISIONS DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
