"""Compute-to-data end to end over real gRPC on localhost: submit, verify, approve, run,
verify the statement; every refusal; agreement with the plaintext oracle."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest

from shared._proto.eligibility.v2 import enclave_pb2 as pb
from shared._proto.eligibility.v2 import enclave_pb2_grpc as pb_grpc
from shared.client_channel import ChannelSecurity
from shared.crypto import Envelope, Role, RuleBundle, sign
from shared.oracle import oracle_decisions
from svb_client.households import read_households
from svb_client.pipeline import ScreenJob, run_screen
from svb_client.pipeline.enclave import (
    ResultRefused,
    run_batch,
    sign_bundle,
    verified_outcomes,
)
from svb_client.wire import GrpcTransport, RunReply, ServerError
from tests.unit.enclave.enclave_testkit import (
    AIO_RULE,
    NOW,
    PERIOD,
    Clock,
    Identities,
    approval,
    make_identities,
    make_service,
    make_store,
)
from uwv_server.contexts import ContextRegistry
from uwv_server.enclave.errors import ApprovalRefused, UnknownRule
from uwv_server.enclave.service import EnclaveService
from uwv_server.grpc.compute_to_data import enclave_registrar
from uwv_server.grpc.server import build_server
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot


@dataclass
class World:
    ids: Identities
    service: EnclaveService
    clock: Clock
    target: str
    store: Path
    households: Path
    tmp: Path


def fragile_rule(tmp: Path) -> Path:
    """The AIO rule dividing by (months − 1): passes verification, fails for a 1-month period."""
    text = AIO_RULE.read_text().replace(
        "          subject: $inkomen\n          value: $drempel",
        """          subject:
            operation: DIVIDE
            values:
              - $inkomen
              - operation: SUBTRACT
                values: [$aantal_maanden, 1]
          value:
            operation: DIVIDE
            values:
              - $drempel
              - operation: SUBTRACT
                values: [$aantal_maanden, 1]""",
    )
    start = text.index("  - name: correctie maakt")
    text = text[:start] + text[text.index("  - name: periode over de jaargrens") :]
    path = tmp / "fragile.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("enclave")
    store, households = make_store(tmp, 300)
    ids = make_identities()
    clock = Clock()
    service = make_service(tmp, store, ids, clock=clock, budget_limit=4)
    screening = ScreeningService(Snapshot.open_current(store), ContextRegistry(store / "contexts"))
    server, port = build_server(screening, 0, extra_services=[enclave_registrar(service)])
    server.start()
    yield World(ids, service, clock, f"127.0.0.1:{port}", store, households, tmp)
    server.stop(grace=None)
    screening.contexts.close()


def _approve_both(w: World, d: str) -> None:
    w.service.register.approve(approval(w.ids.uwv, Role.APPROVER, d), w.clock())
    w.service.register.approve(approval(w.ids.auditor, Role.AUDITOR, d), w.clock())


def _outreach(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as f:
        return {r["household_id"]: (r["decision"], r["reason"]) for r in csv.DictReader(f)}


def test_full_flow_agrees_with_the_oracle(world: World) -> None:
    w = world
    d, envelope = sign_bundle(AIO_RULE, w.ids.svb)
    with GrpcTransport.unsafe_insecure(w.target) as conn:
        status = conn.submit_rule(envelope)
        assert status.state == "pending" and status.verifier_accepted
        assert "VERDICT: ACCEPTED" in status.report_text
        w.service.register.approve(approval(w.ids.uwv, Role.APPROVER, d), w.clock())
        assert conn.rule_status(d).state == "pending"  # the policy also wants the auditor
        assert "auditor" in conn.rule_status(d).reason
        w.service.register.approve(approval(w.ids.auditor, Role.AUDITOR, d), w.clock())
        assert conn.rule_status(d).state == "approved"
        info = conn.enclave_info()
        assert info.snapshot_digest == w.service.snapshot_digest
    out = w.tmp / "enclave-out.csv"
    summary = run_screen(
        ScreenJob(
            security=ChannelSecurity.unsafe_plaintext(),
            households=w.households,
            period=PERIOD,
            out=out,
            journal=w.tmp / "enclave.journal",
            mode="enclave",
            registry=w.ids.registry,
            server=w.target,
            rule=AIO_RULE,
            chunk_size=120,  # three runs, three statements
            progress=False,
        )
    )
    assert summary.runs == 3 and summary.refused_by_uwv == 0
    batch = read_households(w.households)
    expected = oracle_decisions(
        Snapshot.open_current(w.store).directory / "records.parquet", batch.households, PERIOD
    )
    got = _outreach(out)
    assert {h: v[0] == "eligible" for h, v in got.items()} == expected
    assert 0 < sum(expected.values()) < len(expected)
    lines = out.with_name(out.name + ".statements.jsonl").read_bytes().splitlines()
    assert len(lines) == 3
    payload = Envelope.from_json(lines[0]).payload.decode()
    assert '"_type":"https://in-toto.io/Statement/v1"' in payload
    assert w.service.engine_digest in payload and w.service.snapshot_digest in payload


def _submit_refused(w: World, envelope: bytes) -> str:
    with GrpcTransport.unsafe_insecure(w.target) as conn, pytest.raises(ServerError) as err:
        conn.submit_rule(envelope)
    assert "PERMISSION_DENIED" in str(err.value)
    return str(err.value)


def test_bad_bundles_are_refused_and_recorded(world: World) -> None:
    w = world
    d, good = sign_bundle(AIO_RULE, w.ids.svb)
    unsigned = Envelope.from_json(good)
    unsigned = Envelope(unsigned.payload_type, unsigned.payload, ())
    assert "not signed" in _submit_refused(w, unsigned.to_json())
    assert "not a signed envelope" in _submit_refused(w, b"rule: yes")
    outsider = RuleBundle(rule_digest=d, rule_yaml=AIO_RULE.read_text()).sign(w.ids.outsider)
    assert "not in the key registry" in _submit_refused(w, outsider.to_json())
    by_uwv = RuleBundle(rule_digest=d, rule_yaml=AIO_RULE.read_text()).sign(w.ids.uwv)
    assert "may not act as author" in _submit_refused(w, by_uwv.to_json())
    forged = Envelope.from_json(good)
    tampered = Envelope(
        forged.payload_type, forged.payload.replace(b"150107", b"990107"), forged.signatures
    )
    assert "invalid" in _submit_refused(w, tampered.to_json())
    wrong_digest = RuleBundle(rule_digest="0" * 64, rule_yaml=AIO_RULE.read_text()).sign(w.ids.svb)
    assert "claims digest" in _submit_refused(w, wrong_digest.to_json())
    approval_as_bundle = sign("application/vnd.aio.rule-approval.v1+json", b"{}", w.ids.svb)
    assert "expected" in _submit_refused(w, approval_as_bundle.to_json())
    kinds = [e[1] for e in w.service.register.events()]
    assert kinds.count("submit-refused") >= 7


def test_approval_refusals(world: World) -> None:
    w = world
    with pytest.raises(UnknownRule):
        w.service.register.approve(approval(w.ids.uwv, Role.APPROVER, "ab" * 32), w.clock())
    d, envelope = sign_bundle(AIO_RULE, w.ids.svb)
    w.service.submit(envelope)
    # The auditor's key may not approve as UWV's approver.
    with pytest.raises(ApprovalRefused, match="may not act as approver"):
        w.service.register.approve(approval(w.ids.auditor, Role.APPROVER, d), w.clock())
    # Longer than the policy's 90 days.
    with pytest.raises(ApprovalRefused, match="longer than the policy"):
        w.service.register.approve(approval(w.ids.uwv, Role.APPROVER, d, days=400), w.clock())


def _run(w: World, d: str, period: str = str(PERIOD), run_id: str | None = None) -> None:
    batch = read_households(w.households)
    request, _ = run_batch(
        batch.chunk(0, 10, attributes=True),
        run_id=run_id or os.urandom(6).hex(),
        rule_digest=d,
        period=PERIOD
        if period == str(PERIOD)
        else __import__("shared.models").models.Period.parse(period),
        salt=os.urandom(32),
    )
    with GrpcTransport.unsafe_insecure(w.target) as conn:
        conn.run(request, 60)


def _variant(w: World, name: str, marker: str) -> tuple[str, Path]:
    """A distinct approved-or-not copy of the AIO rule (a different rule name → new digest)."""
    path = w.tmp / f"{name}.yaml"
    path.write_text(AIO_RULE.read_text().replace("name: AIO-inkomenstoets", f"name: {marker}"))
    d, envelope = sign_bundle(path, w.ids.svb)
    w.service.submit(envelope)
    return d, path


def test_only_approved_unexpired_unrevoked_rules_run(world: World) -> None:
    w = world
    pending, _ = _variant(w, "pending", "AIO pending")
    with pytest.raises(ServerError, match=r"FAILED_PRECONDITION.*not approved"):
        _run(w, pending)
    with pytest.raises(ServerError, match="NOT_FOUND"):
        _run(w, "cd" * 32)

    rejected, _ = _variant(w, "rejected", "AIO rejected")
    w.service.register.reject(rejected, "thresholds not agreed", w.clock())
    with pytest.raises(ServerError, match="rejected: thresholds not agreed"):
        _run(w, rejected)
    with pytest.raises(ApprovalRefused, match="rejected"):
        w.service.register.approve(approval(w.ids.uwv, Role.APPROVER, rejected), w.clock())

    revoked, _ = _variant(w, "revoked", "AIO revoked")
    _approve_both(w, revoked)
    _run(w, revoked)
    w.service.register.revoke(revoked, "legal basis changed", w.clock())
    with pytest.raises(ServerError, match="revoked: legal basis changed"):
        _run(w, revoked)

    expiring, _ = _variant(w, "expiring", "AIO expiring")
    _approve_both(w, expiring)
    _run(w, expiring)
    saved = w.clock.now
    w.clock.now = NOW + timedelta(days=31)  # the approvals were for 30 days
    try:
        with pytest.raises(ServerError, match="expired"):
            _run(w, expiring)
    finally:
        w.clock.now = saved
    kinds = [e[1] for e in w.service.register.events()]
    assert kinds.count("run-refused") >= 5


def test_a_rule_failing_at_run_time_fails_cleanly(world: World) -> None:
    w = world
    d, envelope = sign_bundle(fragile_rule(w.tmp), w.ids.svb)
    assert w.service.submit(envelope).accepted
    _approve_both(w, d)
    with pytest.raises(ServerError, match=r"ABORTED.*division by zero"):
        _run(w, d, period="2025-03..2025-03")
    _run(w, d, period="2025-01..2025-03")  # the server is still up, the rule runs elsewhere
    assert any(k == "run-failed" for _, k, _, _ in w.service.register.events(d))


def test_client_refuses_unsigned_or_mismatching_results(world: World) -> None:
    w = world
    d, envelope = sign_bundle(AIO_RULE, w.ids.svb)
    w.service.submit(envelope)
    _approve_both(w, d)
    batch = read_households(w.households)
    salt = os.urandom(32)
    request, expected = run_batch(
        batch.chunk(0, 50, attributes=True),
        run_id="mismatch-1",
        rule_digest=d,
        period=PERIOD,
        salt=salt,
    )
    with GrpcTransport.unsafe_insecure(w.target) as conn:
        response = conn.run(request, 60)

    def check(resp: RunReply, *, batch_digest: str = expected, s: bytes = salt) -> None:
        verified_outcomes(
            resp, w.ids.registry, rule_digest=d, expected_batch=batch_digest, salt=s, households=50
        )

    check(response)  # the genuine result verifies
    flipped = bytearray(response.outcomes)
    decided = next(i for i, o in enumerate(flipped) if o < 2)  # early ones may be out of budget
    flipped[decided] ^= 1
    with pytest.raises(ResultRefused, match="output digest"):
        check(RunReply(bytes(flipped), response.statement, ""))
    with pytest.raises(ResultRefused, match="no run statement"):
        check(RunReply(response.outcomes, b"", ""))
    with pytest.raises(ResultRefused, match="batch digest"):
        check(response, batch_digest="0" * 64)
    with pytest.raises(ResultRefused, match=r"salt commitment|batch digest|output digest"):
        check(response, s=os.urandom(32))
    env = Envelope.from_json(response.statement)
    by_svb = sign(env.payload_type, env.payload, w.ids.svb)  # right content, wrong signer
    with pytest.raises(ResultRefused, match="may not act as runner"):
        check(RunReply(response.outcomes, by_svb.to_json(), ""))
    with pytest.raises(ResultRefused, match="rule digest"):
        verified_outcomes(
            response,
            w.ids.registry,
            rule_digest="1" * 64,
            expected_batch=expected,
            salt=salt,
            households=50,
        )


def test_malformed_batches_are_refused(world: World) -> None:
    w = world
    d, envelope = sign_bundle(AIO_RULE, w.ids.svb)
    w.service.submit(envelope)
    _approve_both(w, d)
    bad = pb.RunRequest(
        run_id="bad-1",
        rule_digest=d,
        period=str(PERIOD),
        salt=os.urandom(32),
        member_counts_le64=np.array([1, 1], "<i8").tobytes(),
        member_bsns_le64=np.array([123456782, 123456789], "<i8").tobytes(),
        is_couple_u8=bytes(2),
        known_income_cents_le64=np.zeros(2, "<i8").tobytes(),
    )
    with grpc.insecure_channel(w.target) as channel:  # a hand-made message, not our client
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.ComputeToDataServiceStub(channel).Run(bad, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert re.search(r"slot 1.*not a valid BSN", err.value.details() or "")
    # cost-sharers (field 9) crafted by hand: too many for the household, or the wrong length
    good = pb.RunRequest()
    good.CopyFrom(bad)
    good.member_bsns_le64 = np.array([123456782, 111222333], "<i8").tobytes()
    for sharers, expected in (
        (bytes([0, 21]), r"slot 1.*cost_sharers 21 is outside 0..20"),
        (bytes([1]), r"2 households but 1 values of cost_sharers"),
    ):
        good.run_id = os.urandom(6).hex()
        good.cost_sharers_u8 = sharers
        with grpc.insecure_channel(w.target) as channel:
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.ComputeToDataServiceStub(channel).Run(good, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert re.search(expected, err.value.details() or ""), err.value.details()
    with grpc.insecure_channel(w.target) as channel:  # the server is still serving
        grpc.channel_ready_future(channel).result(timeout=10)
