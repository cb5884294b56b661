"""Differencing protection in the homomorphic mode, over gRPC.

UWV cannot see HE thresholds, so the per-BSN budget is the whole defence there (DESIGN §4):
an SVB that moves its threshold to binary-search one person's income is stopped after
``limit`` answers, the refusals name the household (never a BSN), other households in the
same batch are still answered, every attempt is in the audit log, and a restart does not
reset the budget.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from shared._proto.eligibility.v2 import audit_pb2 as apb
from shared._proto.eligibility.v2 import audit_pb2_grpc as apb_grpc
from shared.client_channel import ChannelSecurity
from shared.he.backend import SecretMaskedContext
from shared.models import Period
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import AIO_RULE, HOUSEHOLD_COLUMNS, POLIS_COLUMNS, bsn_from, write_csv
from uwv_server.budget import SqliteBudget
from uwv_server.store import import_polis

PERIOD = Period.parse("2025-01..2025-12")
LIMIT = 4
TARGET_INCOME = 123_456  # the victim's net monthly income, in cents


def _query(
    tmp_path: Path, target: str, secret: SecretMaskedContext, i: int, known: int
) -> dict[str, tuple[str, str]]:
    """One batch: the victim with a chosen known income (moving the threshold) plus a
    bystander household that is asked only this once."""
    hh = write_csv(
        tmp_path / f"q{i}.csv",
        HOUSEHOLD_COLUMNS,
        [
            ["victim", bsn_from(1), "single", known],
            [f"bystander{i}", bsn_from(100 + i), "single", 0],
        ],
    )
    run_screen(
        ScreenJob(
            security=ChannelSecurity.unsafe_plaintext(),
            households=hh,
            server=target,
            period=PERIOD,
            out=tmp_path / f"o{i}.csv",
            journal=tmp_path / f"j{i}.sqlite",
            secret=secret,
            progress=False,
            rule=AIO_RULE,
        )
    )
    with (tmp_path / f"o{i}.csv").open(newline="") as f:
        return {r["household_id"]: (r["decision"], r["reason"]) for r in csv.DictReader(f)}


def test_binary_search_is_stopped_within_the_budget(
    tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext, channel_to: Any
) -> None:
    polis = write_csv(
        tmp_path / "p.csv",
        POLIS_COLUMNS,
        [
            [bsn_from(1), 1, "pension", f"2025-{m:02d}", TARGET_INCOME + 1000, 1000]
            for m in range(1, 13)
        ],
    )
    import_polis(polis, tmp_path / "store")
    budget = SqliteBudget(tmp_path / "store" / "budget.sqlite", limit=LIMIT)
    server = start_server(tmp_path / "store", budget=budget)

    norm = 150_107  # single, 2025: eligible iff income < norm − known
    low, high = 0, 1_000_000  # the attacker's bounds on the victim's income
    answered = refused = 0
    for i in range(20):
        guess = (low + high) // 2
        out = _query(tmp_path, server.target, secret_context, i, max(0, norm - guess))
        decision, reason = out["victim"]
        assert out[f"bystander{i}"][0] == "eligible"  # the rest of the batch proceeds
        if decision == "rejected":
            refused += 1
            assert "budget exhausted" in reason and bsn_from(1) not in reason
            continue
        answered += 1
        if decision == "eligible":  # income < guess
            high = guess
        else:
            low = guess
    assert answered == LIMIT and refused == 20 - LIMIT
    # what the attacker learnt: LIMIT bits, an interval of a million / 2**LIMIT cents
    assert high - low >= 1_000_000 // 2**LIMIT - 1
    assert low <= TARGET_INCOME < high or low <= TARGET_INCOME <= high

    # every attempt is in the audit log, refusals counted
    stub = apb_grpc.AuditLogServiceStub(channel_to(server.target))
    from shared.audit import RunEntry

    leaves = stub.GetEntries(apb.GetEntriesRequest(start=0, end=20)).leaves
    entries = [RunEntry.from_canonical_bytes(leaf) for leaf in leaves]
    assert len(entries) == 20
    assert sum(e.budget.refused for e in entries) == 20 - LIMIT
    # each run charged its bystander, and the victim only while budget was left
    assert sum(e.budget.bsns_charged for e in entries) == 20 + LIMIT

    # a restart does not reset the budget
    budget.close()
    again = SqliteBudget(tmp_path / "store" / "budget.sqlite", limit=LIMIT)
    server2 = start_server(tmp_path / "store", budget=again)
    out = _query(tmp_path, server2.target, secret_context, 99, 0)
    assert out["victim"][0] == "rejected"
    again.close()
