"""The plaintext baseline: the same screening job in the clear, for benchmarks only.

Same input reader, same validation, same store lookup and the same output file as the
product, minus the cryptography and the network: SVB's thresholds and UWV's incomes meet in
one process. It exists to measure what privacy costs; it must never run on real data.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from shared.models import NormCategory, Period
from shared.norms import load_norm_table
from svb_client.households import read_households
from uwv_server.store import Snapshot


def run(store: Path, households: Path, period: Period, out: Path) -> int:
    batch = read_households(households)
    end = period.end.last_day()
    table = load_norm_table()
    norm = {c.value: table.in_force(c, end).amount_cents for c in NormCategory}
    thresholds = np.array([norm[c] for c in batch.categories], dtype=np.int64)
    thresholds = period.months * (thresholds - batch.known_income_cents)
    totals = Snapshot.open_current(store).household_totals(
        period, batch.member_bsns, batch.member_counts
    )
    eligible = totals < thresholds
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["household_id", "decision", "reason"])
        for hid, e in zip(batch.household_ids, eligible.tolist(), strict=True):
            writer.writerow([hid, "eligible" if e else "not_eligible", ""])
        for hid, reason in batch.rejected:
            writer.writerow([hid, "rejected", reason])
    return len(batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--households", type=Path, required=True)
    parser.add_argument("--period", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    count = run(args.store, args.households, Period.parse(args.period), args.out)
    print(f"{count} {time.perf_counter() - started:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
