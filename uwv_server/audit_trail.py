"""UWV's audit trail: every screening batch becomes one entry in the transparency log.

Layout inside the store directory::

    audit/log.sqlite      the Merkle log (shared.audit): entries, tree, checkpoints
    audit/salts.sqlite    the per-batch salt secrets, kept by UWV only
    keys/log.skey         the log's Ed25519 signer key (mode 0600)

An entry holds digests only. For a homomorphic batch:

- ``batch_digest``: salted SHA-256 over, per chunk in index order,
  ``SHA-256(index ‖ member counts ‖ member BSNs ‖ SHA-256 of each uploaded ciphertext)``;
- ``result_digest``: salted SHA-256 over the SHA-256 of each result ciphertext, per chunk;
- ``salt_commitment``: commits to the batch's salt, which stays in ``salts.sqlite`` so UWV can
  later open a digest to an auditor it grants access, while nobody can test a guessed BSN
  against the public log.

UWV never learns HE decisions, so an HE entry cannot carry a digest of them: replaying an HE
run means SVB shows its outreach decisions and the auditor recomputes them with the plaintext
oracle on the snapshot (see docs/audit.md).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.audit import (
    Approval,
    AuditLog,
    BatchSalt,
    BudgetUse,
    LogService,
    RunEntry,
    RunMode,
)
from shared.audit.note import NoteSigner, parse_skey
from shared.crypto.dsse import Envelope
from shared.crypto.statement import RunStatement

IntArray = npt.NDArray[np.int64]
log = logging.getLogger("uwv_server")
Clock = Callable[[], datetime]

LOG_ORIGIN: Final = "uwv.nl/aio-screening/log"
_MODES: Final = {"masked": RunMode.HE_MASKED, "strict": RunMode.HE_STRICT}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunRecord:
    """What a batch accumulates for its audit entry while it runs (thread-safe)."""

    run_id: str
    requester: str
    rule_digest: str
    mode: str
    parameter_set: str
    period: str
    requested_at: datetime
    salt: BatchSalt
    households: int = 0
    bsns_charged: int = 0
    refused: int = 0
    chunk_digests: dict[int, bytes] = field(default_factory=dict)
    result_digests: dict[int, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def chunk_in(
        self, index: int, member_counts: IntArray, member_bsns: IntArray, ciphertexts: list[bytes]
    ) -> None:
        h = hashlib.sha256()
        h.update(index.to_bytes(8, "big"))
        h.update(member_counts.astype(">i8").tobytes())
        h.update(member_bsns.astype(">i8").tobytes())
        for ct in ciphertexts:
            h.update(hashlib.sha256(ct).digest())
        with self.lock:
            self.chunk_digests[index] = h.digest()

    def chunk_out(
        self, index: int, households: int, members: int, refused: int, results: list[bytes]
    ) -> None:
        digest = hashlib.sha256(b"".join(hashlib.sha256(r).digest() for r in results)).digest()
        with self.lock:
            self.result_digests[index] = digest
            self.households += households
            self.bsns_charged += members
            self.refused += refused


class AuditTrail:
    """Appends one :class:`RunEntry` per batch and serves the log (via :class:`LogService`)."""

    def __init__(
        self,
        log: AuditLog,
        signer: NoteSigner,
        salts: Path,
        clock: Clock,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.service = LogService(log, signer, clock)
        self.signer = signer
        self._clock = clock
        self._random_bytes = random_bytes
        self._salts = sqlite3.connect(salts, isolation_level=None, check_same_thread=False)
        self._salts.execute("PRAGMA journal_mode=WAL")
        self._salts.execute("PRAGMA synchronous=FULL")
        self._salts.execute(
            "CREATE TABLE IF NOT EXISTS salts (run_id TEXT PRIMARY KEY, secret BLOB NOT NULL)"
        )
        self._lock = threading.Lock()

    @classmethod
    def open(cls, store: Path, clock: Clock = utc_now) -> AuditTrail:
        """Open (or create) the store's audit log and log signer key."""
        (store / "audit").mkdir(parents=True, exist_ok=True)
        signer = _load_or_create_signer(store / "keys" / "log.skey")
        log = AuditLog.open(store / "audit" / "log.sqlite", LOG_ORIGIN)
        return cls(log, signer, store / "audit" / "salts.sqlite", clock)

    def start(
        self,
        *,
        run_id: str,
        requester: str,
        rule_digest: str,
        mode: str,
        parameter_set: str,
        period: str,
    ) -> RunRecord:
        return RunRecord(
            run_id=run_id,
            requester=requester,
            rule_digest=rule_digest,
            mode=mode,
            parameter_set=parameter_set,
            period=period,
            requested_at=self._clock(),
            salt=BatchSalt(self._random_bytes(32)),
        )

    def finish(self, record: RunRecord) -> int:
        """Append the batch's entry (durably) and keep its salt; returns the entry's index."""
        with record.lock:
            batch = b"".join(record.chunk_digests[i] for i in sorted(record.chunk_digests))
            result = b"".join(record.result_digests[i] for i in sorted(record.result_digests))
        finished = self._clock()
        entry = RunEntry.create(
            run_id=record.run_id,
            requester=record.requester,
            rule_digest=record.rule_digest,
            mode=_MODES[record.mode],
            parameter_set=record.parameter_set,
            period=record.period,
            household_count=record.households,
            salt_commitment=record.salt.commitment(),
            batch_digest=record.salt.digest("batch", batch),
            result_digest=record.salt.digest("result", result),
            budget=BudgetUse(bsns_charged=record.bsns_charged, refused=record.refused),
            requested_at=record.requested_at,
            started_at=record.requested_at,
            finished_at=finished,
        )
        with self._lock:
            self._salts.execute(
                "INSERT OR REPLACE INTO salts VALUES (?, ?)",
                (record.run_id, record.salt.unsafe_secret()),
            )
            appended = self.service.append([entry])
        return appended.start

    def record_statement(self, run_id: str, envelope_json: bytes, digest: str) -> None:
        """Append a compute-to-data run from the runner's signed statement (the enclave hook).

        The entry carries the statement itself (``statement``, ``statement_digest``) and the
        digests of its predicate; the runner's signed envelope stays in the enclave register
        and with SVB. Its digests are salted with SVB's per-run salt, whose commitment is
        in the statement.
        """
        payload = Envelope.from_json(envelope_json).payload
        p = RunStatement.model_validate_json(payload).predicate
        approvals = []
        for ref in p.approvals:
            signatures = Envelope.from_json(ref.envelope.encode()).signatures
            approvals.append(
                Approval(
                    approver=ref.role.value,
                    key_id=ref.key_id,
                    signature=base64.b64encode(signatures[0][1]).decode() if signatures else "",
                )
            )
        entry = RunEntry.create(
            run_id=run_id,
            requester="SVB compute-to-data",
            rule_digest=p.rule_digest,
            approvals=tuple(approvals),
            mode=RunMode.COMPUTE_TO_DATA,
            parameter_set="compute-to-data",
            period=p.period,
            household_count=p.household_count,
            salt_commitment=p.salt_commitment,
            batch_digest=p.batch_digest,
            snapshot_digest=p.snapshot_digest,
            engine_digest=p.engine_digest,
            result_digest=p.output_digest,
            # households evaluated; the rest were refused by the budget
            budget=BudgetUse(
                bsns_charged=p.evaluated_count, refused=p.household_count - p.evaluated_count
            ),
            requested_at=p.started_at,
            started_at=p.started_at,
            finished_at=p.finished_at,
            statement_digest=digest,
            statement=base64.b64encode(payload).decode(),
        )
        with self._lock:
            index = self.service.append([entry]).start
        log.info("compute-to-data run %s recorded as audit log entry %d", run_id, index)

    def salt(self, run_id: str) -> BatchSalt | None:
        """The salt of a run, for opening its digests to an auditor UWV grants access."""
        row = self._salts.execute("SELECT secret FROM salts WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else BatchSalt(bytes(row[0]))

    def close(self) -> None:
        self._salts.close()
        self.service.log.close()


def _load_or_create_signer(path: Path) -> NoteSigner:
    """The log signer key: generated on first use, kept readable by its owner only."""
    if path.exists():
        return parse_skey(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = NoteSigner(LOG_ORIGIN, Ed25519PrivateKey.generate())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.unsafe_export_skey() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return signer
