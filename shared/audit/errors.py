"""Errors of the audit log package.

Every failure an auditor, a witness or the log writer can meet derives from
:class:`AuditError`, itself a :class:`shared.errors.Error`, so callers catch one
root and print :meth:`~shared.errors.Error.diagnostics`. Low-level failures
(``binascii.Error``, ``ValueError`` from a parser, ``sqlite3.DatabaseError``,
``cryptography.exceptions.InvalidSignature``) are turned into one of these at
the boundary and never leak raw.

Hierarchy::

    AuditError                  (shared.errors.Error)
    ├── ProofError              an inclusion or consistency proof does not verify or is malformed
    ├── NoteError               a signed note / checkpoint is malformed or its signature is bad
    ├── KeyFormatError          a key text (vkey, skey) is malformed
    ├── EntryError              a run entry is malformed or not in canonical form
    ├── StorageError            the durable log store is corrupt, torn or inconsistent
    ├── ExportError             a log export file is malformed or does not match its checkpoint
    ├── WitnessError            a witness refuses to cosign (not consistent, unknown log, rollback)
    └── ReplayError             a replay could not be carried out (not: "outputs differ")
"""

from __future__ import annotations

from shared.errors import Error


class AuditError(Error):
    """Root of all errors raised by :mod:`shared.audit`."""


class ProofError(AuditError):
    """An inclusion or consistency proof is malformed or does not verify."""


class NoteError(AuditError):
    """A signed note or checkpoint is malformed, or a required signature is missing or bad."""


class KeyFormatError(AuditError):
    """A verifier key (vkey) or signer key (skey) text is malformed."""


class EntryError(AuditError):
    """A run entry is malformed, not canonical, or holds something it must not."""


class StorageError(AuditError):
    """The durable store is corrupt, torn or inconsistent: refused, never silently accepted."""


class ExportError(AuditError):
    """A log export file is malformed or inconsistent with its own checkpoint."""


class WitnessError(AuditError):
    """A witness refuses to cosign: unknown log, bad signature, rollback or no consistency proof."""


class ReplayError(AuditError):
    """A replay could not be carried out (the recompute hook failed)."""
