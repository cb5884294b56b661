"""The compute-to-data mode of the client pipeline on the in-memory transport."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from shared.crypto import Role
from shared.oracle import oracle_decisions
from svb_client.households import read_households
from svb_client.pipeline import ScreenJob, run_screen
from svb_client.pipeline.enclave import EnclaveServerError, sign_bundle
from svb_client.wire import RunBatch, RunReply, ServerError
from svb_client.wire.memory import InMemoryTransport
from svb_client.wire.transport import run_each
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
    job = ScreenJob(
        households=households,
        period=PERIOD,
        out=out,
        journal=tmp_path / "journal.sqlite",
        mode="enclave",
        registry=ids.registry,
        rule=AIO_RULE,
        chunk_size=60,
        progress=False,
        transport=transport,
    )
    with pytest.raises(EnclaveServerError, match="pending at UWV"):
        run_screen(job)
    service.register.approve(approval(ids.uwv, Role.APPROVER, d), service.clock())
    service.register.approve(approval(ids.auditor, Role.AUDITOR, d), service.clock())
    summary = run_screen(job)
    batch = read_households(households)
    expected = oracle_decisions(
        Snapshot.open_current(store).directory / "records.parquet", batch.households, PERIOD
    )
    got = _outreach(out)
    assert {h: got[h][0] == "eligible" for h in expected} == expected
    assert summary.runs == 3 and len(summary.statement_digests) == 3


class CutAfterRun:
    """Lets UWV run chunk 1 and then loses the answer once (a crash before journalling)."""

    def __init__(self, inner: InMemoryTransport) -> None:
        self.inner = inner
        self.stats = inner.stats
        self.runs: list[tuple[str, bytes]] = []
        self.cut = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def run(self, batch: RunBatch, deadline_s: float | None) -> RunReply:
        reply = self.inner.run(batch, deadline_s)
        self.runs.append((batch.run_id, batch.salt))
        if batch.run_id.endswith("-1") and not self.cut:
            self.cut = True
            raise ServerError("connection lost")
        return reply

    def run_many(self, batches: Iterable[RunBatch], deadline_s: float | None) -> Iterator[RunReply]:
        return run_each(self, batches, deadline_s)


def test_an_interrupted_enclave_batch_resumes_with_the_same_runs(tmp_path: Path) -> None:
    ids = make_identities()
    store, households = make_store(tmp_path, households=150)
    # Every person may be evaluated once a year: a retried run that charged again would be
    # refused, so a clean resume shows the retry was recognised as the same run.
    service = make_service(tmp_path, store, ids, budget_limit=1)
    d, envelope = sign_bundle(AIO_RULE, ids.svb)
    service.submit(envelope)
    service.register.approve(approval(ids.uwv, Role.APPROVER, d), service.clock())
    service.register.approve(approval(ids.auditor, Role.AUDITOR, d), service.clock())
    transport = CutAfterRun(InMemoryTransport(enclave=service))
    out = tmp_path / "out.csv"
    job = ScreenJob(
        households=households,
        period=PERIOD,
        out=out,
        journal=tmp_path / "journal.sqlite",
        mode="enclave",
        registry=ids.registry,
        rule=AIO_RULE,
        chunk_size=60,
        progress=False,
        transport=transport,  # type: ignore[arg-type]
    )
    with pytest.raises(ServerError, match="connection lost"):
        run_screen(job)
    assert not out.exists()
    summary = run_screen(job)
    assert summary.resumed_chunks == 1 and summary.runs == 3
    assert summary.refused_by_uwv == 0
    first, retried = [r for r in transport.runs if r[0].endswith("-1")]
    assert first == retried  # same run id, same salt: the same request
    got = _outreach(out)
    assert not any(reason.startswith("refused by UWV") for _, reason in got.values())
    lines = out.with_name(out.name + ".statements.jsonl").read_bytes().splitlines()
    assert len(lines) == 3
