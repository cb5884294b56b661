"""Witnessing: cosign only what is proved consistent with the last checkpoint seen."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_testkit import ORIGIN, fixed_key

from shared.audit import (
    MemoryTree,
    NoteSigner,
    Witness,
    WitnessError,
    consistency_proof,
    leaf_hash,
    open_checkpoint,
)
from shared.audit.checkpoint import Checkpoint, sign_checkpoint

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def _checkpoint(signer: NoteSigner, leaves: list[bytes]) -> str:
    tree = MemoryTree([leaf_hash(x) for x in leaves])
    return sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root(), 1_700_000_000), signer)


def _proof(leaves: list[bytes], old: int) -> list[bytes]:
    return consistency_proof(MemoryTree([leaf_hash(x) for x in leaves]), old, len(leaves))


@pytest.fixture
def witness(tmp_path: Path, log_signer: NoteSigner, witness_signer: NoteSigner) -> Witness:
    return Witness(witness_signer, {ORIGIN: log_signer.verifier}, tmp_path / "state.json")


def test_witness_cosigns_growing_log(
    witness: Witness, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    leaves = [b"a", b"b", b"c"]
    first = witness.cosign(_checkpoint(log_signer, leaves), [], NOW)
    assert open_checkpoint(first, log_signer.verifier, [witness_signer.verifier]).cosigners
    leaves += [b"d", b"e"]
    second = witness.cosign(_checkpoint(log_signer, leaves), _proof(leaves, 3), NOW)
    got = open_checkpoint(second, log_signer.verifier, [witness_signer.verifier])
    assert got.cosigners == (witness_signer.name,)
    seen = witness.last_seen(ORIGIN)
    assert seen is not None and seen.size == 5


def test_witness_refuses_split_view(witness: Witness, log_signer: NoteSigner) -> None:
    witness.cosign(_checkpoint(log_signer, [b"a", b"b", b"c"]), [], NOW)
    # A different history of the same log, grown to 5: its proof cannot reach the seen root.
    forked = [b"a", b"X", b"c", b"d", b"e"]
    with pytest.raises(WitnessError, match="not proved consistent"):
        witness.cosign(_checkpoint(log_signer, forked), _proof(forked, 3), NOW)
    # Same size, other root.
    with pytest.raises(WitnessError, match="not proved consistent"):
        witness.cosign(_checkpoint(log_signer, [b"a", b"b", b"Z"]), [], NOW)
    # The refusal did not move the state.
    seen = witness.last_seen(ORIGIN)
    assert seen is not None and seen.size == 3


def test_witness_refuses_rollback_missing_proof_and_unknown_log(
    witness: Witness, log_signer: NoteSigner
) -> None:
    leaves = [b"a", b"b", b"c", b"d"]
    witness.cosign(_checkpoint(log_signer, leaves), [], NOW)
    with pytest.raises(WitnessError, match="rollback"):
        witness.cosign(_checkpoint(log_signer, leaves[:2]), [], NOW)
    with pytest.raises(WitnessError, match="not proved consistent"):
        witness.cosign(_checkpoint(log_signer, [*leaves, b"e"]), [], NOW)
    other = NoteSigner("other.example/log", fixed_key(1))
    text = sign_checkpoint(Checkpoint("other.example/log", 1, leaf_hash(b"a")), other)
    with pytest.raises(WitnessError, match="does not watch"):
        witness.cosign(text, [], NOW)


def test_witness_refuses_bad_signature_and_garbage(
    witness: Witness, log_signer: NoteSigner
) -> None:
    text = _checkpoint(log_signer, [b"a"])
    with pytest.raises(WitnessError):
        witness.cosign(text.replace("\n1\n", "\n2\n"), [], NOW)
    for junk in ["", "garbage", "\n\n", "a\nb\nc\n\n\u2014 x AAAAAAA=\n"]:
        with pytest.raises(WitnessError):
            witness.cosign(junk, [], NOW)


def test_damaged_state_is_refused(
    tmp_path: Path, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps({"format": "aio-audit-witness-state/v1", "logs": {ORIGIN: {"size": "x"}}})
    )
    w = Witness(witness_signer, {ORIGIN: log_signer.verifier}, state)
    with pytest.raises(WitnessError, match="damaged"):
        w.cosign(_checkpoint(log_signer, [b"a"]), [], NOW)


def test_witness_needs_cosigner_key(tmp_path: Path, log_signer: NoteSigner) -> None:
    with pytest.raises(WitnessError):
        Witness(log_signer, {ORIGIN: log_signer.verifier}, tmp_path / "s.json")
