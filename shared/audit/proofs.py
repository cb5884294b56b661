"""Proof generation (RFC 9162 sections 2.1.3.1 and 2.1.4.1) over stored perfect subtrees.

A tree of ``n`` leaves is stored as the hashes of its *perfect* subtrees: node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``
and exists once that range is complete. Every hash a proof needs is either such
a node or the hash of a range ``[a, n)`` on the right border, which is the fold
of at most ``log2 n`` perfect nodes. So a proof first *plans* which nodes it
needs, fetches them all in one call to a :class:`NodeSource`, then assembles:
one database round trip per proof, whatever the tree size.

This is the writer's side; the auditor's side is :mod:`shared.audit.merkle`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from shared.audit.errors import ProofError
from shared.audit.merkle import EMPTY_ROOT, node_hash

NodeId = tuple[int, int]
"""A perfect subtree ``(level, index)``; level 0 nodes are the leaf hashes."""


class NodeSource(Protocol):
    """Something that holds the perfect subtree hashes of a tree (a store, a list in memory)."""

    def get_nodes(self, ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        """Return the hash of every requested node; raise if one is missing."""
        ...


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees whose fold is ``MTH(D[start:end])``, left to right.

    ``start`` must be aligned as RFC 9162 recursion leaves it (a multiple of the
    largest power of two not above ``end - start``); ranges that occur in proofs are.
    """
    nodes: list[NodeId] = []
    a = start
    while a < end:
        level = (end - a).bit_length() - 1
        # Alignment: shrink until the block starting at ``a`` is a real node.
        while a & ((1 << level) - 1):
            level -= 1
        nodes.append((level, a >> level))
        a += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of a right-border decomposition into the range's hash."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _inclusion_plan(index: int, start: int, end: int, out: list[tuple[int, int]]) -> None:
    # RFC 9162 PATH(m, D[start:end]); iterative descent, proof collected bottom-up later.
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start = start + k
    out.reverse()


def _consistency_plan(m: int, start: int, end: int, out: list[tuple[int, int]]) -> None:
    # RFC 9162 SUBPROOF(m, D[start:end], True), with m counted from ``start``.
    complete = True
    while True:
        n = end - start
        if m == n:
            if not complete:
                out.append((start, end))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            m -= k
            start = start + k
            complete = False
    out.reverse()


def _assemble(source: NodeSource, ranges: list[tuple[int, int]]) -> list[bytes]:
    plans = [range_nodes(a, b) for a, b in ranges]
    wanted = {node for plan in plans for node in plan}
    got = source.get_nodes(wanted)
    return [fold([got[node] for node in plan]) for plan in plans]


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    _inclusion_plan(index, 0, size, ranges)
    return _assemble(source, ranges)


def consistency_proof(source: NodeSource, size1: int, size2: int) -> list[bytes]:
    """The proof that the tree of ``size2`` leaves extends the one of ``size1`` leaves."""
    if not 0 <= size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    ranges: list[tuple[int, int]] = []
    _consistency_plan(size1, 0, size2, ranges)
    return _assemble(source, ranges)


def root_hash(source: NodeSource, size: int) -> bytes:
    """``MTH`` of the first ``size`` leaves (``size >= 1``), from at most log2(size) nodes."""
    if size < 1:
        raise ProofError("the root of an empty tree is EMPTY_ROOT, not a node fold")
    return _assemble(source, [(0, size)])[0]


class MemoryTree:
    """All perfect subtree hashes of a list of leaf hashes, in memory: the auditor's tree.

    Built in linear time from an export; serves proofs for any earlier size too.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        levels = [list(leaf_hashes)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self._levels = levels

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def get_nodes(self, ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        """Look up perfect subtree hashes; a missing node is a :class:`ProofError`."""
        out: dict[NodeId, bytes] = {}
        for level, index in ids:
            try:
                out[(level, index)] = self._levels[level][index]
            except IndexError:
                raise ProofError(f"node ({level}, {index}) is not in the tree") from None
        return out

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ProofError(f"size {size} is outside the tree of {self.size} leaves")
        return EMPTY_ROOT if size == 0 else root_hash(self, size)
