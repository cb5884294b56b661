"""The verifier is strict where the standards are (issue 9).

- transparency-dev/merkle: a consistency proof from the empty tree is meaningless, refused;
- Go ``note.Open`` (C2SP signed-note): a signature line of a known key that fails to verify
  makes the note invalid, even next to a valid one; unknown keys' lines are ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_testkit import ORIGIN, fixed_key

from shared.audit import (
    EMPTY_ROOT,
    MemoryTree,
    NoteError,
    NoteSigner,
    ProofError,
    Witness,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
)
from shared.audit.checkpoint import Checkpoint, sign_checkpoint
from shared.audit.note import Note, NoteSignature, parse_note

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def _root(n: int) -> bytes:
    return MemoryTree([leaf_hash(bytes([i])) for i in range(n)]).root()


@pytest.mark.parametrize("size2", [1, 2, 7])
def test_a_consistency_proof_from_the_empty_tree_is_refused(size2: int) -> None:
    with pytest.raises(ProofError, match="empty tree is meaningless"):
        verify_consistency(0, size2, [], EMPTY_ROOT, _root(size2))


def test_equal_sizes_need_equal_roots_also_for_the_empty_tree() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError):
        verify_consistency(0, 0, [], EMPTY_ROOT, _root(1))


def _forged(sig: NoteSignature) -> NoteSignature:
    blob = bytearray(sig.blob)
    blob[-1] ^= 1
    return NoteSignature(sig.name, sig.key_id, bytes(blob))


def test_a_failing_signature_of_the_log_key_is_refused_next_to_a_valid_one(
    log_signer: NoteSigner,
) -> None:
    text = sign_checkpoint(Checkpoint(ORIGIN, 1, _root(1), 1_700_000_000), log_signer)
    note = parse_note(text)
    bad = Note(note.text, (note.signatures[0], _forged(note.signatures[0]))).format()
    with pytest.raises(NoteError, match="not valid"):
        open_checkpoint(bad, log_signer.verifier)


def test_a_failing_witness_signature_is_refused_and_unknown_keys_are_ignored(
    log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    body = Checkpoint(ORIGIN, 1, _root(1), 1_700_000_000).body()
    good = Note(body, (log_signer.sign(body),))
    cosig = witness_signer.sign(body, NOW)
    stranger = NoteSigner("stranger.example/x", fixed_key(9)).sign(body)
    ok = good.with_signature(cosig).with_signature(_forged(stranger))
    verified = open_checkpoint(ok.format(), log_signer.verifier, [witness_signer.verifier])
    assert verified.cosigners == (witness_signer.name,)
    bad = good.with_signature(_forged(cosig))
    with pytest.raises(NoteError, match="invalid signature for key"):
        open_checkpoint(bad.format(), log_signer.verifier, [witness_signer.verifier])
    # the same note is fine for an auditor that does not know that witness
    assert open_checkpoint(bad.format(), log_signer.verifier).cosigners == ()


def test_the_witness_goes_from_an_empty_log_to_a_grown_one_without_a_proof(
    tmp_path: Path, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    witness = Witness(witness_signer, {ORIGIN: log_signer.verifier}, tmp_path / "state.json")
    empty = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT, 1_700_000_000), log_signer)
    witness.cosign(empty, [], NOW)
    grown = sign_checkpoint(Checkpoint(ORIGIN, 3, _root(3), 1_700_000_100), log_signer)
    witness.cosign(grown, [], NOW)
    # a second empty-tree checkpoint with another root is a rewritten history
    fresh = Witness(witness_signer, {ORIGIN: log_signer.verifier}, tmp_path / "s2.json")
    fresh.cosign(empty, [], NOW)
    forged_empty = sign_checkpoint(Checkpoint(ORIGIN, 0, _root(1), 1_700_000_200), log_signer)
    with pytest.raises(Exception, match="refused"):
        fresh.cosign(forged_empty, [], NOW)
