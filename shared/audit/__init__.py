"""The audit log: an RFC 6962 / RFC 9162 Merkle log of screening runs with signed checkpoints.

Modules, one concept each:

* :mod:`~shared.audit.merkle`     hashing and the writer-independent proof verifier
* :mod:`~shared.audit.proofs`     proof generation over stored perfect subtrees
* :mod:`~shared.audit.store`      durable SQLite storage (WAL, synchronous=FULL, checks)
* :mod:`~shared.audit.note`       C2SP signed notes, Ed25519 keys and cosignatures
* :mod:`~shared.audit.checkpoint` C2SP checkpoints (signed tree heads)
* :mod:`~shared.audit.witness`    cosigning after a consistency check, with state
* :mod:`~shared.audit.entry`      run entries and salted digests of personal data
* :mod:`~shared.audit.log`        the typed log and the service API for gRPC
* :mod:`~shared.audit.export`     file export and loading, for offline auditors
* :mod:`~shared.audit.auditor`    verifying an export, proving inclusion and consistency
* :mod:`~shared.audit.replay`     the replay hook
* :mod:`~shared.audit.cli`        the ``aio-audit`` command

Errors: see :mod:`shared.audit.errors` (root :class:`AuditError`).
"""

from shared.audit.auditor import (
    ConsistencyResult,
    InclusionResult,
    VerifiedLog,
    prove_consistency,
    prove_inclusion,
    verify_export,
)
from shared.audit.checkpoint import Checkpoint, VerifiedCheckpoint, open_checkpoint, sign_checkpoint
from shared.audit.entry import (
    Approval,
    BatchSalt,
    BudgetUse,
    RunEntry,
    RunMode,
    digest_batch,
    digest_result,
    salted_digest,
)
from shared.audit.errors import (
    AuditError,
    EntryError,
    ExportError,
    KeyFormatError,
    NoteError,
    ProofError,
    ReplayError,
    StorageError,
    WitnessError,
)
from shared.audit.export import LogExport, export_log, load_export
from shared.audit.log import AuditLog, LogService
from shared.audit.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from shared.audit.note import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Note,
    NoteSigner,
    NoteVerifier,
    parse_note,
    parse_skey,
    parse_vkey,
)
from shared.audit.proofs import MemoryTree, consistency_proof, inclusion_proof
from shared.audit.replay import Recomputed, ReplayReport, replay
from shared.audit.store import SqliteLogStore
from shared.audit.witness import Witness
from shared.digests import sha256_hex

__all__ = [
    "EMPTY_ROOT",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "Approval",
    "AuditError",
    "AuditLog",
    "BatchSalt",
    "BudgetUse",
    "Checkpoint",
    "ConsistencyResult",
    "EntryError",
    "ExportError",
    "InclusionResult",
    "KeyFormatError",
    "LogExport",
    "LogService",
    "MemoryTree",
    "Note",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "Recomputed",
    "ReplayError",
    "ReplayReport",
    "RunEntry",
    "RunMode",
    "SqliteLogStore",
    "StorageError",
    "VerifiedCheckpoint",
    "VerifiedLog",
    "Witness",
    "WitnessError",
    "consistency_proof",
    "digest_batch",
    "digest_result",
    "export_log",
    "inclusion_proof",
    "leaf_hash",
    "load_export",
    "node_hash",
    "open_checkpoint",
    "parse_note",
    "parse_skey",
    "parse_vkey",
    "prove_consistency",
    "prove_inclusion",
    "replay",
    "root_from_inclusion_proof",
    "root_of",
    "salted_digest",
    "sha256_hex",
    "sign_checkpoint",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
]
