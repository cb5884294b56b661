"""Every screening run lands in UWV's audit log; an auditor fetches and verifies it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from shared._proto.eligibility.v2 import audit_pb2 as apb
from shared._proto.eligibility.v2 import audit_pb2_grpc as apb_grpc
from shared.audit import RunEntry, load_export, verify_export
from shared.audit.fetch import fetch_export
from shared.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from shared.audit.note import parse_vkey
from shared.client_channel import ChannelSecurity
from shared.he.backend import SecretMaskedContext
from shared.models import Period
from shared.rules import digest, parse_file
from svb_client.households import read_households
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import AIO_RULE
from uwv_server.store import import_polis
from uwv_server.synth import generate

PERIOD = Period.parse("2025-01..2025-12")


@pytest.fixture
def audited(tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext) -> Any:
    synth = generate(1200, PERIOD, tmp_path / "data", seed=4)
    import_polis(synth.polis_path, tmp_path / "store")
    server = start_server(tmp_path / "store")

    def screen(name: str) -> None:
        run_screen(
            ScreenJob(
                security=ChannelSecurity.unsafe_plaintext(),
                households=synth.households_path,
                server=server.target,
                period=PERIOD,
                out=tmp_path / f"{name}.csv",
                journal=tmp_path / f"{name}.sqlite",
                secret=secret_context,
                progress=False,
                rule=AIO_RULE,
                chunk_size=500,
            )
        )

    return server, screen, synth


def test_each_batch_is_one_entry_with_digests_only(audited: Any, channel_to: Any) -> None:
    server, screen, synth = audited
    screen("first")
    stub = apb_grpc.AuditLogServiceStub(channel_to(server.target))
    key = parse_vkey(stub.GetLogKey(apb.GetLogKeyRequest()).verifier_key)
    note = stub.GetCheckpoint(apb.GetCheckpointRequest()).note
    from shared.audit import open_checkpoint

    head = open_checkpoint(note, key).checkpoint
    assert head.size == 1
    leaf = stub.GetEntries(apb.GetEntriesRequest(start=0, end=1)).leaves[0]
    entry = RunEntry.from_canonical_bytes(leaf)
    assert entry.mode.value == "he-masked"
    assert entry.rule_digest == digest(parse_file(AIO_RULE))
    assert entry.household_count == synth.households
    assert entry.budget.bsns_charged == synth.persons
    assert entry.requester == "SVB svb-client"
    # no BSN, income or decision in clear: none of the batch's BSNs appears in the leaf
    batch = read_households(synth.households_path)
    text = leaf.decode()
    assert not any(f"{b:09d}" in text for b in batch.member_bsns[:500])
    assert set(json.loads(text)) >= {"batch_digest", "result_digest", "salt_commitment"}
    # the salt stays with UWV, so the digests cannot be recomputed from the log alone
    trail = server.service.audit
    assert trail.salt(entry.run_id) is not None
    assert trail.salt(entry.run_id).commitment() == entry.salt_commitment


def test_proofs_verify_and_the_log_only_grows(audited: Any, channel_to: Any) -> None:
    server, screen, _ = audited
    stub = apb_grpc.AuditLogServiceStub(channel_to(server.target))
    screen("one")
    from shared.audit import open_checkpoint

    key = parse_vkey(stub.GetLogKey(apb.GetLogKeyRequest()).verifier_key)
    old = open_checkpoint(stub.GetCheckpoint(apb.GetCheckpointRequest()).note, key).checkpoint
    screen("two")
    screen("three")
    new = open_checkpoint(stub.GetCheckpoint(apb.GetCheckpointRequest()).note, key).checkpoint
    assert (old.size, new.size) == (1, 3)
    leaves = stub.GetEntries(apb.GetEntriesRequest(start=0, end=3)).leaves
    for i, leaf in enumerate(leaves):
        proof = stub.GetInclusionProof(apb.GetInclusionProofRequest(index=i, tree_size=3)).hashes
        verify_inclusion(i, 3, leaf_hash(leaf), list(proof), new.root_hash)  # raises if wrong
    proof = stub.GetConsistencyProof(apb.GetConsistencyProofRequest(old_size=1, new_size=3))
    verify_consistency(1, 3, list(proof.hashes), old.root_hash, new.root_hash)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetInclusionProof(apb.GetInclusionProofRequest(index=5, tree_size=3))
    assert info.value.code() in (grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.INVALID_ARGUMENT)  # type: ignore[attr-defined]


def test_auditor_fetches_and_verifies_offline(audited: Any, tmp_path: Path) -> None:
    server, screen, _ = audited
    screen("a")
    screen("b")
    export = tmp_path / "export.jsonl"
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.audit.cli",
            "fetch",
            "--unsafe-insecure",
            "--server",
            server.target,
            "--out",
            str(export),
        ],
        capture_output=True,
        text=True,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert "fetched 2 entries" in fetched.stdout
    assert fetch_export(server.target, export, security=ChannelSecurity.unsafe_plaintext()) == 2
    key = server.service.audit.signer.verifier
    verified = verify_export(load_export(export), key)
    assert len(verified.entries) == 2
    result = subprocess.run(
        [sys.executable, "-m", "shared.audit.cli", "verify", str(export), "--log-key", key.vkey()],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # a tampered export is detected
    lines = export.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"household_count":1200', b'"household_count":1201')
    export.write_bytes(b"".join(lines))
    tampered = subprocess.run(
        [sys.executable, "-m", "shared.audit.cli", "verify", str(export), "--log-key", key.vkey()],
        capture_output=True,
        text=True,
    )
    assert tampered.returncode != 0
    assert "Traceback" not in tampered.stderr
    unreachable = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.audit.cli",
            "fetch",
            "--unsafe-insecure",
            "--server",
            "127.0.0.1:1",
            "--out",
            str(tmp_path / "x"),
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert unreachable.returncode != 0 and "FAIL" in unreachable.stderr
