"""The plaintext baseline: the same screening job in the clear, for benchmarks only.

Same input reader, same validation, same rule (its HE plan: thresholds from the law's norms,
cost-sharers and known income; household totals with the work-income exemption), same store
lookup and the same output file as the product, minus the cryptography and the network:
SVB's thresholds and UWV's incomes meet in one process. It exists to measure what privacy
costs; it must never run on real data.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from shared.models import Period
from shared.rules import check, compile_he, parse_file
from svb_client.households import read_households
from svb_client.pipeline.he import plan_thresholds
from uwv_server.store import Snapshot

RULE = Path(__file__).resolve().parent.parent / "rules" / "aio.yaml"


def run(store: Path, households: Path, period: Period, out: Path, rule: Path = RULE) -> int:
    batch = read_households(households)
    plan = compile_he(check(parse_file(rule)))
    thresholds = plan_thresholds(plan, batch, period)
    totals = Snapshot.open_current(store).household_totals(
        period,
        batch.member_bsns,
        batch.member_counts,
        plan.income_weights,
        person_terms=plan,
    )
    eligible = totals < thresholds  # plan_thresholds turns "<=" into "<"
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
