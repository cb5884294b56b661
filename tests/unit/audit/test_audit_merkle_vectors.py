"""RFC 6962 known-answer tests: the CT ecosystem's 8-leaf reference tree.

Vectors: tests/data/rfc6962/reference_tree.json, transcribed from
transparency-dev/merkle proof/verify_test.go (source named in the file). The
corruption probes follow the same test suite's ``corruptInclusionProof`` and
``corruptConsistencyProof`` cases.
"""

from __future__ import annotations

import pytest
from audit_testkit import load_vectors

from shared.audit import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from shared.audit.merkle import root_from_inclusion_proof

V = load_vectors("reference_tree.json")
LEAVES = [bytes.fromhex(x) for x in V["leaves"]]
ROOTS = [bytes.fromhex(x) for x in V["roots"]]
LEAF_HASHES = [leaf_hash(x) for x in LEAVES]
TREE = MemoryTree(LEAF_HASHES)
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hexes(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


def test_empty_root() -> None:
    assert bytes.fromhex(V["empty_root"]) == EMPTY_ROOT == root_of([])


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_every_prefix(size: int) -> None:
    assert root_of(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert TREE.root(size) == ROOTS[size - 1]


@pytest.mark.parametrize("vec", V["inclusion"], ids=lambda v: f"leaf{v['leaf']}-of-{v['size']}")
def test_inclusion_vectors(vec: dict[str, object]) -> None:
    index, size = int(vec["leaf"]) - 1, int(vec["size"])  # type: ignore[call-overload]
    proof = _hexes(vec["proof"])  # type: ignore[arg-type]
    assert inclusion_proof(TREE, index, size) == proof
    root = ROOTS[size - 1]
    verify_inclusion(index, size, LEAF_HASHES[index], proof, root)
    assert root_from_inclusion_proof(index, size, LEAF_HASHES[index], proof) == root


def _inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):  # type: ignore[no-untyped-def]
    yield "index - 1", (index - 1, size, leaf, proof, root)
    yield "index + 1", (index + 1, size, leaf, proof, root)
    yield "index ^ 2", (index ^ 2, size, leaf, proof, root)
    yield "size * 2", (index, size * 2, leaf, proof, root)
    yield "size // 2", (index, size // 2, leaf, proof, root)
    yield "wrong leaf", (index, size, b"WrongLeaf", proof, root)
    yield "empty root", (index, size, leaf, proof, EMPTY_ROOT)
    yield "random root", (index, size, leaf, proof, SOME_HASH)
    yield "trailing garbage", (index, size, leaf, [*proof, b""], root)
    yield "trailing root", (index, size, leaf, [*proof, root], root)
    yield "preceding garbage", (index, size, leaf, [b"", *proof], root)
    yield "preceding root", (index, size, leaf, [root, *proof], root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield f"proof[{i}] bit 3", (index, size, leaf, bad, root)
    if proof:
        yield "removed component", (index, size, leaf, proof[:-1], root)
    if len(proof) > 1:
        yield "inserted component", (index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root)


@pytest.mark.parametrize("vec", V["inclusion"], ids=lambda v: f"leaf{v['leaf']}-of-{v['size']}")
def test_inclusion_corruptions_are_refused(vec: dict[str, object]) -> None:
    index, size = int(vec["leaf"]) - 1, int(vec["size"])  # type: ignore[call-overload]
    proof = _hexes(vec["proof"])  # type: ignore[arg-type]
    for desc, args in _inclusion_probes(index, size, proof, ROOTS[size - 1], LEAF_HASHES[index]):
        with pytest.raises(ProofError):
            verify_inclusion(*args)
            pytest.fail(f"verified against corruption: {desc}")


@pytest.mark.parametrize("vec", V["consistency"], ids=lambda v: f"{v['size1']}-to-{v['size2']}")
def test_consistency_vectors(vec: dict[str, int]) -> None:
    size1, size2 = vec["size1"], vec["size2"]
    proof = _hexes(vec["proof"])  # type: ignore[arg-type]
    assert consistency_proof(TREE, size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


@pytest.mark.parametrize(
    "vec",
    [v for v in V["consistency"] if v["proof"]],
    ids=lambda v: f"{v['size1']}-to-{v['size2']}",
)
def test_consistency_corruptions_are_refused(vec: dict[str, int]) -> None:
    s1, s2 = vec["size1"], vec["size2"]
    proof = _hexes(vec["proof"])  # type: ignore[arg-type]
    r1, r2 = ROOTS[s1 - 1], ROOTS[s2 - 1]
    probes = [
        (s1 - 1, s2, proof, r1, r2),
        (s1 + 1, s2, proof, r1, r2),
        (s1 ^ 2, s2, proof, r1, r2),
        (s1, s2 * 2, proof, r1, r2),
        (s1, s2 // 2, proof, r1, r2),
        (s1, s2, proof, b"WrongRoot", r2),
        (s1, s2, proof, r1, b"WrongRoot"),
        (s1, s2, proof, r2, r1),
        (s1, s2, [], r1, r2),
        (s1, s2, [*proof, b""], r1, r2),
        (s1, s2, [*proof, r1], r1, r2),
        (s1, s2, [*proof, r2], r1, r2),
        (s1, s2, [b"", *proof], r1, r2),
        (s1, s2, [r1, *proof], r1, r2),
        (s1, s2, [r2, *proof], r1, r2),
        (s1, s2, [proof[0], *proof], r1, r2),
        (s1, s2, proof[:-1], r1, r2),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((s1, s2, bad, r1, r2))
    for n, probe in enumerate(probes):
        with pytest.raises(ProofError):
            verify_consistency(*probe)
            pytest.fail(f"verified against corruption probe {n}")


def test_trivial_consistency_cases() -> None:
    # From the same test suite: sizes that are always consistent, and those that never are.
    r = ROOTS[0]
    verify_consistency(0, 0, [], r, r)
    verify_consistency(1, 1, [], r, r)
    for args in [
        (1, 1, [], r, ROOTS[1]),  # same size, different roots: a rewritten history
        (1, 0, [], r, r),  # time travel to the past
        (2, 1, [], r, r),
        (1, 2, [], r, ROOTS[1]),  # empty proof
        (0, 1, [], r, ROOTS[1]),  # from the empty tree: meaningless (transparency-dev/merkle)
        (0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),  # non-empty proof for trivial sizes
        (0, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),
        (1, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT),
    ]:
        with pytest.raises(ProofError):
            verify_consistency(*args)


def test_single_entry_inclusion() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(0, 1, h, [], h)
    for leaf, root in [(h, b""), (b"", h), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(0, 1, leaf, [], root)
    for index, size in [(0, 0), (1, 0), (2, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)
