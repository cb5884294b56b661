"""The durable differencing budget, and the binary-search attack it stops."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from shared.crypto import Role
from shared.models import Period
from svb_client.households import read_households
from tests.unit.enclave.enclave_testkit import (
    aio_bundle,
    approval,
    make_identities,
    make_service,
    make_store,
)
from uwv_server.budget import SqliteBudget
from uwv_server.enclave.service import RunRequest
from uwv_server.service import BudgetPolicy

P2025 = Period.parse("2025-01..2025-12")
A, B, C = 123456782, 111222333, 100000009  # valid BSNs


AT = datetime(2025, 6, 1, tzinfo=UTC)


def _charge(
    budget: SqliteBudget,
    batch: str,
    chunk: int,
    counts: list[int],
    bsns: list[int],
    period: Period = P2025,
    mode: str = "masked",
    digest: str | None = None,
) -> dict[int, str]:
    """What the service does: a known id returns its stored refusals, a new one is charged."""
    digest = digest or f"{batch}/{chunk}/{counts}/{bsns}"
    stored = budget.lookup(batch, chunk, digest, AT)
    if stored is not None:
        return {k: v.reason for k, v in stored.refused.items()}
    refused = budget.charge(
        batch_id=batch,
        chunk_index=chunk,
        digest=digest,
        mode=mode,
        period=period,
        member_bsns=np.array(bsns, np.int64),
        member_counts=np.array(counts, np.int64),
        audit_digest=b"\0" * 32,
        at=AT,
    )
    return {k: v.reason for k, v in refused.items()}


def test_is_a_budget_policy(tmp_path: Path) -> None:
    policy: BudgetPolicy = SqliteBudget(tmp_path / "b.sqlite", limit=2)
    assert policy.charge is not None


def test_a_person_is_charged_once_per_batch_and_later_copies_are_refused(tmp_path: Path) -> None:
    budget = SqliteBudget(tmp_path / "b.sqlite", limit=12)
    # 1 person in 5 households of one chunk: one evaluation, four refusals, one charge
    refused = _charge(budget, "b", 0, [1] * 5, [A] * 5)
    assert set(refused) == {1, 2, 3, 4} and "earlier household" in refused[1]
    assert budget.used(A, 2025) == 1
    # and again in another chunk of the same batch, even as part of a couple
    refused = _charge(budget, "b", 1, [2, 1], [B, A, C])
    assert set(refused) == {0}
    assert budget.used(A, 2025) == 1 and budget.used(B, 2025) == 0 and budget.used(C, 2025) == 1
    budget.close()
    again = SqliteBudget(tmp_path / "b.sqlite", limit=12)  # the batch's BSNs survive a restart
    assert set(_charge(again, "b", 2, [1], [A])) == {0}
    assert set(_charge(again, "b", 3, [1], [B])) == {0}  # B was in a refused household: seen
    assert _charge(again, "other", 0, [1], [A]) == {}  # another batch is another evaluation
    assert again.used(A, 2025) == 2


def test_same_id_other_content_is_a_recorded_conflict(tmp_path: Path) -> None:
    from uwv_server.budget import ReplayConflict

    budget = SqliteBudget(tmp_path / "b.sqlite", limit=12)
    _charge(budget, "b", 0, [1], [A], digest="d1")
    with pytest.raises(ReplayConflict, match="other content"):
        _charge(budget, "b", 0, [1], [B], digest="d2")
    assert budget.used(B, 2025) == 0
    work = budget.unlogged("b")
    assert work is not None and len(work.conflicts) == 1 and len(work.rows) == 1
    assert budget.open_batch("x", "h1", {}, AT) is False
    assert budget.open_batch("x", "h1", {}, AT) is True  # a resume
    with pytest.raises(ReplayConflict, match="another header"):
        budget.open_batch("x", "h2", {}, AT)


def test_per_mode_budgets_and_the_total(tmp_path: Path) -> None:
    budget = SqliteBudget(tmp_path / "b.sqlite", limit=3, mode_limits={"masked": 1})
    assert _charge(budget, "m1", 0, [1], [A], mode="masked") == {}
    refused = _charge(budget, "m2", 0, [1], [A], mode="masked")
    assert "1 masked evaluations" in refused[0]
    assert _charge(budget, "s1", 0, [1], [A], mode="strict") == {}
    assert _charge(budget, "e1", 0, [1], [A], mode="enclave") == {}
    assert set(_charge(budget, "s2", 0, [1], [A], mode="strict")) == {0}  # total of 3 spent
    assert budget.used(A, 2025) == 3 and budget.used(A, 2025, "masked") == 1


def test_a_refund_undoes_a_charge_that_was_never_answered(tmp_path: Path) -> None:
    budget = SqliteBudget(tmp_path / "b.sqlite", limit=1)
    _charge(budget, "b", 0, [1], [A])
    budget.refund("b", 0)
    assert budget.used(A, 2025) == 0 and budget.unlogged("b") is None
    _charge(budget, "b", 0, [1], [A])
    budget.store_answer("b", 0, "x", b"answer")
    budget.refund("b", 0)  # answered: a refund is refused silently
    assert budget.used(A, 2025) == 1


def test_limit_refuses_households_by_position_and_the_rest_proceeds(tmp_path: Path) -> None:
    budget = SqliteBudget(tmp_path / "b.sqlite", limit=2)
    assert _charge(budget, "b1", 0, [2, 1], [A, B, C]) == {}
    assert _charge(budget, "b2", 0, [1], [A]) == {}
    refused = _charge(budget, "b3", 0, [1, 2, 1], [B, A, C, 100000022])
    assert set(refused) == {1}  # the couple with A; B alone still has budget
    assert "position 0" in refused[1] and "2025" in refused[1]
    assert "123456782" not in refused[1]  # reasons name positions, never BSNs
    assert budget.used(A, 2025) == 2 and budget.used(B, 2025) == 2 and budget.used(C, 2025) == 1


def test_idempotent_per_chunk_and_durable_across_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    budget = SqliteBudget(path, limit=1)
    assert _charge(budget, "b1", 0, [1], [A]) == {}
    assert _charge(budget, "b1", 0, [1], [A]) == {}  # a resumed batch re-sends the chunk
    assert budget.used(A, 2025) == 1
    budget.close()
    again = SqliteBudget(path, limit=1)  # a restart does not reset it
    assert set(_charge(again, "b2", 0, [1], [A])) == {0}
    assert set(_charge(again, "b2", 0, [1], [A])) == {0}


def test_shifting_the_period_does_not_reset_the_budget(tmp_path: Path) -> None:
    budget = SqliteBudget(tmp_path / "b.sqlite", limit=1)
    assert _charge(budget, "b1", 0, [1], [A], Period.parse("2025-01..2025-12")) == {}
    assert set(_charge(budget, "b2", 0, [1], [A], Period.parse("2025-02..2025-12"))) == {0}
    assert set(_charge(budget, "b3", 0, [1], [A], Period.parse("2024-12..2025-01"))) == {0}
    assert budget.used(A, 2024) == 0  # refused households are not charged


def test_binary_search_on_one_income_is_stopped_within_the_budget(tmp_path: Path) -> None:
    """SVB moves its own 'known income' K so the threshold 12·(N − K) sweeps over the target's
    income S; each answer is one bit. With a budget of 5 it learns at most 5 bits."""
    store, households = make_store(tmp_path, 60)
    ids = make_identities()
    limit = 5
    service = make_service(tmp_path, store, ids, budget_limit=limit)
    d, envelope = aio_bundle(ids)
    service.submit(envelope)
    service.register.approve(approval(ids.uwv, Role.APPROVER, d), service.clock())
    service.register.approve(approval(ids.auditor, Role.AUDITOR, d), service.clock())
    batch = read_households(households)
    target = int(np.flatnonzero(batch.member_counts == 1)[0])
    offsets = np.concatenate([[0], np.cumsum(batch.member_counts)])
    target_bsn = batch.member_bsns[offsets[target]]
    others = [i for i in range(len(batch)) if batch.member_counts[i] == 1 and i != target]

    low, high = 0, 1_000_000  # K in cents
    answered = refused = 0
    for q in range(20):
        k = (low + high) // 2
        bystander = others[q]  # a fresh household in every query: it must still be answered
        request = RunRequest.parse(
            run_id=f"probe-{q}",
            rule_digest=d,
            period=str(P2025),
            salt=os.urandom(32),
            member_counts=[1, 1],
            member_bsns=[target_bsn, batch.member_bsns[offsets[bystander]]],
            is_couple=[False, False],
            known_income_cents=[k, 0],
        )
        outcome = service.run(request)
        assert outcome.outcomes[1] in (0, 1), "the rest of the batch must proceed"
        if outcome.outcomes[0] == 2:
            refused += 1
            assert 0 in outcome.refused and "budget exhausted" in outcome.refused[0].reason
            continue
        answered += 1
        # eligible iff S < 12·(N − K): eligible means K is below the crossover.
        if outcome.outcomes[0] == 1:
            low = k
        else:
            high = k
    assert answered == limit and refused == 20 - limit
    assert high - low >= 1_000_000 // 2**limit  # at most `limit` bits learnt
    events = [e for e in service.register.events(d) if e[1] == "budget-refused"]
    assert len(events) == 20 - limit  # the probing is visible in the record


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(tmp_path: Path, limit: int) -> None:
    from uwv_server.budget import BudgetError

    with pytest.raises(BudgetError):
        SqliteBudget(tmp_path / "b.sqlite", limit=limit)


def test_a_budget_of_the_first_release_keeps_its_charges(tmp_path: Path) -> None:
    """The first release's charges table (no digests, modes or members) is migrated: every
    charge still counts, nothing is logged again, and a re-used id is a conflict."""
    import json
    import sqlite3

    from uwv_server.budget import ReplayConflict

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE charges (batch_id TEXT NOT NULL, chunk_index INTEGER NOT NULL,"
        " years TEXT NOT NULL, charged BLOB NOT NULL, refused TEXT NOT NULL,"
        " PRIMARY KEY (batch_id, chunk_index))"
    )
    db.execute(
        "INSERT INTO charges VALUES (?, ?, ?, ?, ?)",
        ("old", 0, "[2025]", np.array([A], "<i8").tobytes(), json.dumps({"1": "spent"})),
    )
    db.commit()
    db.close()
    budget = SqliteBudget(path, limit=1)
    assert budget.used(A, 2025) == 1
    assert budget.batches_unlogged() == []
    with pytest.raises(ReplayConflict):
        budget.lookup("old", 0, "new digest", AT)
    assert set(_charge(budget, "new", 0, [1], [A])) == {0}
