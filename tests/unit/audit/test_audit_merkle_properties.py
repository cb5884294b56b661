"""Property tests of the Merkle log: every proof verifies, every single-bit change is detected,
and hostile input in place of proofs gives a ProofError, never another exception."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.audit import (
    MemoryTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from shared.audit.merkle import EMPTY_ROOT, root_from_inclusion_proof


def reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH written recursively, straight from the definition (test oracle)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


trees = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


def _flip(data: bytes, bit: int) -> bytes:
    i = (bit // 8) % len(data)
    return data[:i] + bytes([data[i] ^ (1 << (bit % 8))]) + data[i + 1 :]


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_inclusion_proof_verifies_and_every_bit_flip_is_detected(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree([leaf_hash(x) for x in leaves])
    size = data.draw(st.integers(1, len(leaves)), label="size")
    root = reference_mth(leaves[:size])
    assert tree.root(size) == root
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(tree, index, size)
    leaf = leaf_hash(leaves[index])
    verify_inclusion(index, size, leaf, proof, root)
    # One bit anywhere: in the leaf, in the root, or in one proof hash.
    bit = data.draw(st.integers(0, 255), label="bit")
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        root = _flip(root, bit)
    else:
        proof = list(proof)
        proof[target] = _flip(proof[target], bit)
    try:
        verify_inclusion(index, size, leaf, proof, root)
    except ProofError:
        return
    raise AssertionError("a single-bit change was not detected")


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_consistency_proof_verifies_and_every_bit_flip_is_detected(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree([leaf_hash(x) for x in leaves])
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    size1 = data.draw(st.integers(0, size2), label="size1")
    r1, r2 = reference_mth(leaves[:size1]), reference_mth(leaves[:size2])
    proof = consistency_proof(tree, size1, size2)
    if size1 == 0:  # a proof from the empty tree is meaningless and refused (see test_audit_strict)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, r1, r2)
        return
    verify_consistency(size1, size2, proof, r1, r2)
    bit = data.draw(st.integers(0, 255), label="bit")
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    if target == -2:
        r1 = _flip(r1, bit)
    elif target == -1:
        r2 = _flip(r2, bit)
    else:
        proof = list(proof)
        proof[target] = _flip(proof[target], bit)
    try:
        verify_consistency(size1, size2, proof, r1, r2)
    except ProofError:
        return
    raise AssertionError("a single-bit change was not detected")


@settings(max_examples=60, deadline=None)
@given(trees, st.data())
def test_a_rewritten_history_is_not_consistent(leaves: list[bytes], data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    changed = data.draw(st.integers(0, size1 - 1), label="changed")
    rewritten = list(leaves)
    rewritten[changed] = rewritten[changed] + b"!"
    forged_tree = MemoryTree([leaf_hash(x) for x in rewritten])
    proof = consistency_proof(forged_tree, size1, size2)
    try:
        verify_consistency(
            size1, size2, proof, reference_mth(leaves[:size1]), forged_tree.root(size2)
        )
    except ProofError:
        return
    raise AssertionError("a rewritten history passed as consistent")


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.one_of(st.binary(min_size=30, max_size=34), st.integers(), st.text()), max_size=6),
    st.lists(st.binary(min_size=32, max_size=32), max_size=140),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(junk, junk, junk, junk, junk)
def test_verifiers_never_raise_anything_but_proof_error(
    a: object, b: object, c: object, d: object, e: object
) -> None:
    for call in (
        lambda: verify_inclusion(a, b, c, d, e),
        lambda: root_from_inclusion_proof(a, b, c, d),
        lambda: verify_consistency(a, b, c, d, e),
    ):
        with contextlib.suppress(ProofError):
            call()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 40),
    st.integers(0, 40),
    st.lists(st.binary(min_size=32, max_size=32), max_size=12),
    st.binary(min_size=32, max_size=32),
)
def test_random_well_typed_proofs_do_not_verify(
    i: int, n: int, proof: list[bytes], h: bytes
) -> None:
    try:
        verify_inclusion(i, n, h, proof, EMPTY_ROOT)
    except ProofError:
        pass
    else:
        raise AssertionError("random proof verified")
