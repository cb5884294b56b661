"""What an auditor does with an export: verify it, prove inclusion and consistency, list runs.

Everything here recomputes from the exported leaves and checks against the
*signed* checkpoint; nothing is taken on UWV's word. Proofs are generated from
the auditor's own in-memory tree (:class:`~shared.audit.proofs.MemoryTree`)
and then checked with the independent verifier (:mod:`shared.audit.merkle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.audit.checkpoint import Checkpoint, VerifiedCheckpoint, open_checkpoint
from shared.audit.entry import RunEntry
from shared.audit.errors import EntryError, ExportError, NoteError, ProofError
from shared.audit.export import LogExport
from shared.audit.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion
from shared.audit.note import NoteVerifier, parse_vkey
from shared.audit.proofs import MemoryTree, consistency_proof, inclusion_proof


@dataclass(frozen=True, slots=True)
class VerifiedLog:
    """An export whose entries were recomputed into the root its signed checkpoint names."""

    export: LogExport
    checkpoint: VerifiedCheckpoint
    tree: MemoryTree
    entries: tuple[RunEntry, ...]
    key_from_export: bool
    """True if the log key came from the export itself (not independently trusted)."""

    @property
    def head(self) -> Checkpoint:
        """The verified checkpoint's tree head."""
        return self.checkpoint.checkpoint


def verify_export(
    export: LogExport,
    log_key: NoteVerifier | None = None,
    witness_keys: Sequence[NoteVerifier] = (),
    *,
    min_cosigners: int = 0,
) -> VerifiedLog:
    """Check the checkpoint signature, recompute the tree and compare roots, parse every entry.

    Raises :class:`NoteError` (bad checkpoint or signature), :class:`ExportError`
    (entries do not match the checkpoint) or :class:`EntryError` (an entry is not
    a canonical run entry), each saying what failed and where.
    """
    key_from_export = log_key is None
    key = parse_vkey(export.log_key) if log_key is None else log_key
    verified = open_checkpoint(export.checkpoint, key, witness_keys, origin=export.origin)
    head = verified.checkpoint
    if head.size != len(export.leaves):
        raise ExportError(
            f"checkpoint covers {head.size} entries, the export holds {len(export.leaves)}"
        )
    tree = MemoryTree([leaf_hash(leaf) for leaf in export.leaves])
    root = tree.root()
    if root != head.root_hash:
        raise ExportError(
            f"entries do not match the signed checkpoint: recomputed root {root.hex()}, "
            f"checkpoint root {head.root_hash.hex()} (an entry was altered, added, dropped "
            "or reordered)"
        )
    entries: list[RunEntry] = []
    for i, leaf in enumerate(export.leaves):
        try:
            entries.append(RunEntry.from_canonical_bytes(leaf))
        except EntryError as exc:
            raise EntryError(f"entry {i}: {exc}") from None
    if len(verified.cosigners) < min_cosigners:
        raise NoteError(
            f"checkpoint has {len(verified.cosigners)} valid cosignatures of known witnesses, "
            f"{min_cosigners} are required"
        )
    return VerifiedLog(export, verified, tree, tuple(entries), key_from_export)


@dataclass(frozen=True, slots=True)
class InclusionResult:
    """A verified inclusion proof of one entry in the checkpoint's tree."""

    index: int
    size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    root_hash: bytes


def prove_inclusion(log: VerifiedLog, index: int) -> InclusionResult:
    """Build and verify the inclusion proof of entry ``index`` against the verified checkpoint."""
    size = log.head.size
    if not 0 <= index < size:
        raise ProofError(f"entry {index} is not in the log (size {size})")
    proof = inclusion_proof(log.tree, index, size)
    leaf = leaf_hash(log.export.leaves[index])
    verify_inclusion(index, size, leaf, proof, log.head.root_hash)
    return InclusionResult(index, size, leaf, tuple(proof), log.head.root_hash)


@dataclass(frozen=True, slots=True)
class ConsistencyResult:
    """A verified consistency proof from an earlier checkpoint to the export's one."""

    old: Checkpoint
    new: Checkpoint
    proof: tuple[bytes, ...]


def prove_consistency(
    log: VerifiedLog, old_checkpoint: str, log_key: NoteVerifier
) -> ConsistencyResult:
    """Check that the export's log only grew since ``old_checkpoint`` (signed by ``log_key``).

    Raises :class:`NoteError` for a bad old checkpoint and :class:`ProofError`
    if the log shrank or the history up to the old checkpoint was rewritten.
    """
    old = open_checkpoint(old_checkpoint, log_key, origin=log.head.origin).checkpoint
    new = log.head
    if old.size > new.size:
        raise ProofError(f"the log shrank: old checkpoint has {old.size} entries, now {new.size}")
    proof = consistency_proof(log.tree, old.size, new.size)
    if old.size == 0 and new.size > 0:
        # Every tree extends the empty one; a proof from it is refused by the verifier.
        if old.root_hash != EMPTY_ROOT:
            raise ProofError("the old checkpoint has size 0 but not the empty tree's root")
        return ConsistencyResult(old, new, ())
    try:
        verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    except ProofError as exc:
        raise ProofError(
            f"the first {old.size} entries are not those of the old checkpoint: {exc}"
        ) from None
    return ConsistencyResult(old, new, tuple(proof))
