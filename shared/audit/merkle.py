"""RFC 6962 / RFC 9162 Merkle tree hashing and proof verification.

This module is the auditor's verifier: it depends on nothing but ``hashlib``
and this package's errors, never on the writer (:mod:`shared.audit.store`) or
on proof generation (:mod:`shared.audit.proofs`), so it can be handed to an
auditor alone and checked line by line against RFC 9162 section 2.1.

Hashes (RFC 9162 section 2.1.1): a leaf is ``SHA-256(0x00 || data)``, an
interior node ``SHA-256(0x01 || left || right)``, the empty tree
``SHA-256()``. The prefixes keep a leaf from being passed off as a node
(second-preimage attack on the tree).

The verifiers take *any* Python objects in place of proofs and hashes: a value
that is not what it should be raises :class:`ProofError` saying what, never a
``TypeError`` or ``IndexError`` (the auditor may feed them hostile files).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from shared.audit.errors import ProofError

HASH_SIZE: Final = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

MAX_PROOF_LENGTH: Final = 128
"""No valid proof for a tree of fewer than 2**63 leaves is longer (2 * 63 + slack)."""

MAX_TREE_SIZE: Final = 2**63 - 1
"""Tree sizes are unsigned 64-bit in RFC 9162; we stay within signed range for SQLite."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""The root hash of the empty tree (RFC 9162 section 2.1.1)."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash of a leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes (RFC 9162 ``MTH``), computed bottom-up.

    Linear time; used by the auditor to recompute a whole exported log.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            # An unpaired last node is promoted unchanged: RFC 9162 splits at the
            # largest power of two, which bottom-up is exactly this promotion.
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{name} {value} is out of range 0..2**63-1")
    return value


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ProofError(f"{name} must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, expected {HASH_SIZE}")
    return value


def _check_proof(proof: object) -> list[bytes]:
    if isinstance(proof, str | bytes | bytearray) or not isinstance(proof, Sequence):
        raise ProofError(f"proof must be a list of hashes, got {type(proof).__name__}")
    if len(proof) > MAX_PROOF_LENGTH:
        raise ProofError(f"proof has {len(proof)} hashes, at most {MAX_PROOF_LENGTH} are possible")
    return [_check_hash(f"proof[{i}]", h) for i, h in enumerate(proof)]


def root_from_inclusion_proof(index: object, size: object, leaf: object, proof: object) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 section 2.1.3.2, steps 1-5).

    Raises :class:`ProofError` if the index is outside the tree or the proof has
    the wrong length for this index and size.
    """
    index = _check_size("leaf index", index)
    size = _check_size("tree size", size)
    leaf = _check_hash("leaf hash", leaf)
    path = _check_proof(proof)
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise ProofError(f"proof is longer than needed for leaf {index} of {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"proof is shorter than needed for leaf {index} of {size}")
    return r


def verify_inclusion(
    index: object, size: object, leaf: object, proof: object, root: object
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` with ``root``.

    Returns ``None`` on success; raises :class:`ProofError` saying what failed.
    """
    expected = _check_hash("root hash", root)
    got = root_from_inclusion_proof(index, size, leaf, proof)
    if got != expected:
        raise ProofError(
            f"inclusion proof for leaf {index} gives root {got.hex()}, "
            f"the checkpoint says {expected.hex()}"
        )


def verify_consistency(
    size1: object, size2: object, proof: object, root1: object, root2: object
) -> None:
    """Check that the tree ``(size2, root2)`` extends ``(size1, root1)``: only appended to.

    RFC 9162 section 2.1.4.2. Returns ``None`` on success; raises
    :class:`ProofError` saying what failed. As the transparency-dev/merkle verifier does, a
    proof *from the empty tree* to a non-empty one is refused ("meaningless": there is nothing
    to prove, so a caller must not ask for one); equal sizes, also 0 → 0, need an empty proof
    and equal roots.
    """
    size1 = _check_size("old size", size1)
    size2 = _check_size("new size", size2)
    path = _check_proof(proof)
    if size2 < size1:
        raise ProofError(f"new size {size2} is smaller than old size {size1}: the log shrank")
    r1 = _check_hash("old root", root1)
    r2 = _check_hash("new root", root2)
    if size1 == 0 and size2 > 0:
        raise ProofError(
            "a consistency proof from the empty tree is meaningless: every tree extends it"
        )
    if size1 == size2:
        if path:
            raise ProofError("a proof between equal sizes must be empty")
        if r1 != r2:
            raise ProofError(
                f"two different roots for the same size {size1}: the history was rewritten"
            )
        return
    if not path:
        raise ProofError(f"empty proof for sizes {size1} -> {size2}")
    if size1 & (size1 - 1) == 0:
        # Old tree is a perfect subtree of the new one: its root is the first node.
        path = [r1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is longer than needed for {size1} -> {size2}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is shorter than needed for {size1} -> {size2}")
    if fr != r1:
        raise ProofError(
            f"consistency proof does not lead to the old root {r1.hex()} (got {fr.hex()}): "
            "the history before the old checkpoint was rewritten"
        )
    if sr != r2:
        raise ProofError(
            f"consistency proof does not lead to the new root {r2.hex()} (got {sr.hex()})"
        )
