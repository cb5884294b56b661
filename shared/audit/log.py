"""The audit log: typed run entries over the durable store, and the service API for gRPC.

:class:`AuditLog` is what UWV's server writes to: it appends :class:`RunEntry`
values (their canonical JSON is the leaf) and serves proofs. :class:`LogService`
adds the log's signing key and clock and is what the gRPC adapter calls:
``checkpoint()``, ``entries(start, end)``, ``inclusion_proof(index, size)``,
``consistency_proof(old, new)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final

from shared.audit.checkpoint import Checkpoint, sign_checkpoint
from shared.audit.entry import RunEntry
from shared.audit.errors import AuditError, NoteError, StorageError
from shared.audit.merkle import EMPTY_ROOT
from shared.audit.note import SIG_TYPE_ED25519, NoteSigner
from shared.audit.proofs import consistency_proof, inclusion_proof, root_hash
from shared.audit.store import CheckLevel, SqliteLogStore

MAX_ENTRIES_PER_CALL: Final = 10_000
"""Page size limit of :meth:`LogService.entries` (a gRPC message stays a few MB)."""


class AuditLog:
    """An append-only log of run entries with RFC 6962 proofs, stored in SQLite."""

    def __init__(self, store: SqliteLogStore) -> None:
        self._store = store

    @classmethod
    def open(cls, path: str | Path, origin: str, *, check: CheckLevel = "tail") -> AuditLog:
        """Open (or create) the log at ``path``; a damaged log raises :class:`StorageError`."""
        return cls(SqliteLogStore(path, origin, check=check))

    @property
    def origin(self) -> str:
        """The log's name, the first line of its checkpoints."""
        return self._store.origin

    @property
    def size(self) -> int:
        """Number of entries."""
        return self._store.size

    @property
    def store(self) -> SqliteLogStore:
        """The underlying store (for export and benchmarks)."""
        return self._store

    def append(self, entries: Sequence[RunEntry]) -> range:
        """Append entries as one durable batch; return their indices. Acknowledged on return."""
        datas = [e.canonical_bytes() for e in entries]
        first = self._store.append(datas)
        return range(first, first + len(datas))

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaf data (canonical entry JSON) of entries ``[start, end)``."""
        return self._store.entries(start, end)

    def entries(self, start: int, end: int) -> list[RunEntry]:
        """The entries ``[start, end)`` as parsed models."""
        return [RunEntry.from_canonical_bytes(d) for d in self._store.entries(start, end)]

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the first ``size`` entries (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise StorageError(f"size {size} is outside the log of size {self.size}")
        if size == self.size:
            return self._store.root
        return EMPTY_ROOT if size == 0 else root_hash(self._store, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path of entry ``index`` in the tree of the first ``size`` entries."""
        size = self.size if size is None else size
        if size > self.size:
            raise StorageError(f"size {size} is beyond the log's size {self.size}")
        return inclusion_proof(self._store, index, size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """Proof that the tree of ``new`` entries extends the one of ``old`` entries."""
        new = self.size if new is None else new
        if new > self.size:
            raise StorageError(f"size {new} is beyond the log's size {self.size}")
        return consistency_proof(self._store, old, new)

    def checkpoint(self, signer: NoteSigner, now: datetime) -> str:
        """A checkpoint over the current tree, signed by ``signer`` at time ``now``."""
        if now.tzinfo is None:
            raise NoteError("checkpoint time must be a timezone-aware datetime")
        if signer.sig_type != SIG_TYPE_ED25519:
            raise NoteError(
                "a log checkpoint is signed with a plain Ed25519 key, not a cosigner key"
            )
        cp = Checkpoint(self.origin, self.size, self.root(), int(now.astimezone(UTC).timestamp()))
        return sign_checkpoint(cp, signer)

    def close(self) -> None:
        """Close the store."""
        self._store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LogService:
    """What the gRPC adapter calls. Key and clock are passed in; errors are :class:`AuditError`.

    Map to gRPC status codes: :class:`~shared.audit.errors.ProofError` and
    :class:`~shared.audit.errors.StorageError` for out-of-range arguments ->
    ``INVALID_ARGUMENT`` / ``OUT_OF_RANGE``; any other :class:`AuditError` -> ``INTERNAL``.
    """

    def __init__(self, log: AuditLog, signer: NoteSigner, clock: Callable[[], datetime]) -> None:
        self._log = log
        self._signer = signer
        self._clock = clock
        self._cached: tuple[int, str] | None = None

    @property
    def log(self) -> AuditLog:
        """The log behind the service."""
        return self._log

    def append(self, entries: Sequence[RunEntry]) -> range:
        """Record runs (called by the server after each run, or per batch of runs)."""
        return self._log.append(entries)

    def checkpoint(self) -> str:
        """The signed checkpoint of the current tree (re-signed only when the tree grew)."""
        if self._cached is None or self._cached[0] != self._log.size:
            self._cached = (self._log.size, self._log.checkpoint(self._signer, self._clock()))
        return self._cached[1]

    def entries(self, start: int, end: int) -> list[bytes]:
        """Canonical entry bytes ``[start, end)``, at most :data:`MAX_ENTRIES_PER_CALL` at once."""
        if end - start > MAX_ENTRIES_PER_CALL:
            raise AuditError(
                f"at most {MAX_ENTRIES_PER_CALL} entries per call, asked {end - start}"
            )
        return self._log.leaves(start, end)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        return self._log.inclusion_proof(index, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Consistency proof between tree sizes ``old`` and ``new``."""
        return self._log.consistency_proof(old, new)
