"""The compute-to-data mode of the client pipeline on the in-memory transport."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.crypto import Role
from shared.oracle import oracle_decisions
from svb_client.enclave import EnclaveServerError, run_enclave_screen, sign_bundle
from svb_client.households import read_households
from svb_client.wire.memory import InMemoryTransport
from tests.unit.enclave.enclave_testkit import (
    AIO_RULE,
    PERIOD,
    approval,
    make_identities,
    make_service,
    make_store,
)
from uwv_server.store import Snapshot


def _outreach(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as f:
        return {r["household_id"]: (r["decision"], r["reason"]) for r in csv.DictReader(f)}


def test_enclave_batch_verifies_and_agrees_with_the_oracle(tmp_path: Path) -> None:
    ids = make_identities()
    store, households = make_store(tmp_path, households=150)
    service = make_service(tmp_path, store, ids, budget_limit=1000)
    transport = InMemoryTransport(enclave=service)
    d, envelope = sign_bundle(AIO_RULE, ids.svb)
    assert transport.submit_rule(envelope).state == "pending"
    out = tmp_path / "out.csv"
    with pytest.raises(EnclaveServerError, match="pending at UWV"):
        run_enclave_screen(
            server="in-memory",
            households=households,
            period=PERIOD,
            out=out,
            rule=AIO_RULE,
            registry=ids.registry,
            transport=transport,
        )
    service.register.approve(approval(ids.uwv, Role.APPROVER, d), service.clock())
    service.register.approve(approval(ids.auditor, Role.AUDITOR, d), service.clock())
    summary = run_enclave_screen(
        server="in-memory",
        households=households,
        period=PERIOD,
        out=out,
        rule=AIO_RULE,
        registry=ids.registry,
        run_size=60,
        transport=transport,
    )
    batch = read_households(households)
    expected = oracle_decisions(
        Snapshot.open_current(store).directory / "records.parquet", batch.households, PERIOD
    )
    got = _outreach(out)
    assert {h: got[h][0] == "eligible" for h in expected} == expected
    assert summary.runs == 3 and len(summary.statement_digests) == 3
