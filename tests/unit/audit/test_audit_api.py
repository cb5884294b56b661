"""Pin the public API of shared.audit: a change to __all__ is a deliberate decision."""

from __future__ import annotations

import shared.audit
from shared.audit import errors
from shared.errors import Error


def test_all_is_pinned() -> None:
    assert sorted(shared.audit.__all__) == sorted(
        [
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
    )
    for name in shared.audit.__all__:
        assert hasattr(shared.audit, name)


def test_one_exception_root() -> None:
    for name in dir(errors):
        obj = getattr(errors, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == errors.__name__
        ):
            assert issubclass(obj, errors.AuditError) and issubclass(obj, Error)
