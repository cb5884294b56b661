"""The audit trail's entries from the charge ledger: exactly once, across a crash mid-append."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shared.audit.merkle import leaf_hash
from shared.models import Period
from uwv_server.audit_trail import AuditTrail
from uwv_server.budget import SqliteBudget

AT = datetime(2025, 6, 1, tzinfo=UTC)
A, B = 123456782, 111222333


def _setup(tmp_path: Path) -> tuple[SqliteBudget, AuditTrail]:
    budget = SqliteBudget(tmp_path / "store" / "budget.sqlite")
    trail = AuditTrail.open(tmp_path / "store", clock=lambda: AT, ledger=budget)
    meta = {"requester": "svb", "rule_digest": "ab" * 32, "mode": "masked",
            "parameter_set": "p", "period": "2025-01..2025-12"}  # fmt: skip
    budget.open_batch("b", "h", meta, AT)
    for i, bsn in enumerate((A, B)):
        budget.charge(
            batch_id="b",
            chunk_index=i,
            digest=f"d{i}",
            mode="masked",
            period=Period.parse("2025-01..2025-12"),
            member_bsns=np.array([bsn], np.int64),
            member_counts=np.array([1], np.int64),
            audit_digest=bytes(32),
            at=AT,
        )
    return budget, trail


def _reopen(
    tmp_path: Path, budget: SqliteBudget, trail: AuditTrail
) -> tuple[SqliteBudget, AuditTrail]:
    trail.close()
    budget.close()
    budget = SqliteBudget(tmp_path / "store" / "budget.sqlite")
    return budget, AuditTrail.open(tmp_path / "store", clock=lambda: AT, ledger=budget)


def test_a_crash_after_the_pending_mark_logs_the_charges_once(tmp_path: Path) -> None:
    budget, trail = _setup(tmp_path)
    work = budget.unlogged("b")
    assert work is not None
    entry, _ = trail._entry(work, requester="svb", since=AT, recovered=False)
    leaf = entry.canonical_bytes()
    budget.prepare_log(work, leaf, leaf_hash(leaf).hex())  # ... and the process dies here
    budget, trail = _reopen(tmp_path, budget, trail)
    assert trail.recover() == [0]
    entries = trail.service.log.entries(0, trail.service.log.size)
    assert len(entries) == 1 and entries[0].budget.bsns_charged == 2 and entries[0].recovered
    assert trail.recover() == [] and budget.batches_unlogged() == []


def test_a_crash_after_the_append_does_not_log_twice(tmp_path: Path) -> None:
    budget, trail = _setup(tmp_path)
    work = budget.unlogged("b")
    assert work is not None
    entry, _ = trail._entry(work, requester="svb", since=AT, recovered=False)
    leaf = entry.canonical_bytes()
    budget.prepare_log(work, leaf, leaf_hash(leaf).hex())
    trail.service.append([entry])  # appended, but the rows were never marked: dies here
    budget, trail = _reopen(tmp_path, budget, trail)
    assert trail.recover() == []  # found in the log's tail: marked, not appended again
    assert trail.service.log.size == 1 and budget.batches_unlogged() == []
    # the batch goes on: its next entry names the one before
    budget.charge(
        batch_id="b",
        chunk_index=2,
        digest="d2",
        mode="masked",
        period=Period.parse("2025-01..2025-12"),
        member_bsns=np.array([100000009], np.int64),
        member_counts=np.array([1], np.int64),
        audit_digest=bytes(32),
        at=AT,
    )
    assert trail.log_batch("b", requester="svb") == 1
    second = trail.service.log.entries(1, 2)[0]
    assert second.resumes == 0 and second.budget.bsns_charged == 1
    assert trail.log_batch("b", requester="svb") is None  # nothing new: nothing appended
