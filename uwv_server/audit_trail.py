"""UWV's audit trail: every charge becomes part of an entry in the transparency log.

Layout inside the store directory::

    audit/log.sqlite      the Merkle log (shared.audit): entries, tree, checkpoints
    audit/salts.sqlite    the salt secret of every entry, by its commitment, kept by UWV only
    keys/log.skey         the log's Ed25519 signer key (mode 0600)
    budget.sqlite         the charge ledger (uwv_server.budget): what the entries are made of

Entries are built from the durable charge ledger, not from memory: when a stream ends, its
batch's charges and refused id reuses that no entry holds yet become one entry (a stream that
charged nothing and reused nothing appends nothing). A chunk answered from storage (a retry)
was charged once and is in the entry that recorded that charge, so counts are exact. At
start-up, :meth:`AuditTrail.recover` logs what a crash left over (``recovered: true``). An
entry of a batch that has one already names it (``resumes``); nothing is ever overwritten —
each entry has its own salt, stored under its commitment.

An entry holds digests only. For a homomorphic batch:

- ``batch_digest``: salted digest over, per chunk of the entry in index order,
  ``SHA-256(index ‖ member counts ‖ member BSNs ‖ SHA-256 of each uploaded ciphertext)``;
- ``result_digest``: salted digest over, per chunk, the SHA-256 over the SHA-256 of each result
  ciphertext (``SHA-256("")`` for a chunk charged but never answered: a crash in between);
- ``salt_commitment``: commits to the entry's salt, which stays in ``salts.sqlite`` so UWV can
  later open a digest to an auditor it grants access, while nobody can test a guessed BSN
  against the public log.

To append without ever losing or doubling a charge across two databases, the entry's bytes
are first recorded as *pending* in the ledger with its rows, then appended, then the rows are
marked with the entry's index; recovery finds a pending entry in the log's tail or appends it.

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
from shared.audit.entry import KeyCheckOutcome
from shared.audit.merkle import leaf_hash
from shared.audit.note import NoteSigner, parse_skey
from shared.crypto.dsse import Envelope
from shared.crypto.statement import RunStatement
from uwv_server.budget import ENCLAVE_PREFIX, SqliteBudget, Unlogged

IntArray = npt.NDArray[np.int64]
log = logging.getLogger("uwv_server")
Clock = Callable[[], datetime]

LOG_ORIGIN: Final = "uwv.nl/aio-screening/log"
_MODES: Final = {
    "masked": RunMode.HE_MASKED,
    "strict": RunMode.HE_STRICT,
    "enclave": RunMode.COMPUTE_TO_DATA,
}
_TAIL: Final = 10_000
"""How far back recovery looks for an entry whose append a crash may have interrupted."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunk_audit_digest(
    index: int, member_counts: IntArray, member_bsns: IntArray, ciphertexts: list[bytes]
) -> bytes:
    """``SHA-256(index ‖ member counts ‖ member BSNs ‖ SHA-256 of each ciphertext)``."""
    h = hashlib.sha256()
    h.update(index.to_bytes(8, "big"))
    h.update(np.asarray(member_counts).astype(">i8").tobytes())
    h.update(np.asarray(member_bsns).astype(">i8").tobytes())
    for ct in ciphertexts:
        h.update(hashlib.sha256(ct).digest())
    return h.digest()


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class AuditTrail:
    """Appends the entries of the charge ledger and serves the log (via :class:`LogService`)."""

    def __init__(
        self,
        log: AuditLog,
        signer: NoteSigner,
        salts: Path,
        clock: Clock,
        random_bytes: Callable[[int], bytes] = os.urandom,
        ledger: SqliteBudget | None = None,
    ) -> None:
        self.service = LogService(log, signer, clock)
        self.signer = signer
        self.ledger = ledger
        self._clock = clock
        self._random_bytes = random_bytes
        self._salts = sqlite3.connect(salts, isolation_level=None, check_same_thread=False)
        self._salts.execute("PRAGMA journal_mode=WAL")
        self._salts.execute("PRAGMA synchronous=FULL")
        self._salts.execute(
            "CREATE TABLE IF NOT EXISTS entry_salts (commitment TEXT PRIMARY KEY,"
            " run_id TEXT NOT NULL, secret BLOB NOT NULL)"
        )
        self._lock = threading.Lock()
        # Reading a batch's unlogged charges and marking them pending is one step: two
        # streams of one batch closing at once must not both log the same charges.
        self._logging = threading.Lock()

    @classmethod
    def open(
        cls, store: Path, clock: Clock = utc_now, ledger: SqliteBudget | None = None
    ) -> AuditTrail:
        """Open (or create) the store's audit log and log signer key."""
        (store / "audit").mkdir(parents=True, exist_ok=True)
        signer = _load_or_create_signer(store / "keys" / "log.skey")
        log = AuditLog.open(store / "audit" / "log.sqlite", LOG_ORIGIN)
        return cls(log, signer, store / "audit" / "salts.sqlite", clock, ledger=ledger)

    def _ledger(self) -> SqliteBudget:
        if self.ledger is None:
            raise RuntimeError("this audit trail has no charge ledger")
        return self.ledger

    # --- appending -------------------------------------------------------------------------

    def _append(self, work: Unlogged, entry: RunEntry, salt: BatchSalt) -> int:
        """Salt, pending mark, append, mark logged: see the module docstring."""
        ledger = self._ledger()
        leaf = entry.canonical_bytes()
        lh = leaf_hash(leaf).hex()
        with self._lock:
            self._salts.execute(
                "INSERT INTO entry_salts VALUES (?, ?, ?)",
                (salt.commitment(), entry.run_id, salt.unsafe_secret()),
            )
            ledger.prepare_log(work, leaf, lh)
            index = self.service.append([entry]).start
            ledger.logged(lh, index)
        return index

    def _entry(
        self,
        work: Unlogged,
        *,
        requester: str,
        since: datetime | None,
        recovered: bool,
    ) -> tuple[RunEntry, BatchSalt]:
        salt = BatchSalt(self._random_bytes(32))
        meta = work.meta
        batch = b"".join(r.audit_digest for r in work.rows)
        result = b"".join(r.result_digest or hashlib.sha256(b"").digest() for r in work.rows)
        times = [_time(r.at) for r in work.rows]
        if since is not None:
            times.append(since)
        if not times:
            times.append(_time(work.opened_at) if work.opened_at else self._clock())
        started = min(times)
        finished = max([*times, self._clock()])
        run_id = work.batch_id.removeprefix(ENCLAVE_PREFIX)
        entry = RunEntry.create(
            run_id=run_id,
            requester=requester or meta.get("requester", "unnamed client"),
            rule_digest=meta.get("rule_digest", "0" * 64),
            mode=_MODES[meta.get("mode", "masked")],
            parameter_set=meta.get("parameter_set", "unknown"),
            period=meta.get("period") or None,
            household_count=sum(r.households for r in work.rows),
            salt_commitment=salt.commitment(),
            batch_digest=salt.digest("batch", batch),
            result_digest=salt.digest("result", result),
            budget=BudgetUse(
                bsns_charged=sum(r.charged for r in work.rows),
                refused=sum(r.refused for r in work.rows),
            ),
            requested_at=started,
            started_at=started,
            finished_at=finished,
            resumes=work.last_entry,
            recovered=True if recovered else None,
            replays_refused=len(work.conflicts) or None,
        )
        return entry, salt

    def log_batch(
        self, batch_id: str, *, requester: str = "", since: datetime | None = None
    ) -> int | None:
        """Append one entry with the batch's charges and refusals not yet logged (None: none)."""
        with self._logging:
            work = self._ledger().unlogged(batch_id)
            if work is None:
                return None
            entry, salt = self._entry(work, requester=requester, since=since, recovered=False)
            return self._append(work, entry, salt)

    def record_key_check(
        self,
        *,
        caller: str,
        proposal_id: str,
        parameter_set: str,
        outcome: KeyCheckOutcome,
        commitment: bytes,
        detail: bytes,
    ) -> int:
        """Append the entry of a strict-mode key check (:mod:`uwv_server.key_checks`) under the
        caller's authenticated identity: no households, nothing charged; ``commitment`` (the
        uploaded contexts' digests) and ``detail`` (what was found) enter as salted digests."""
        salt = BatchSalt(self._random_bytes(32))
        now = self._clock()
        entry = RunEntry.create(
            run_id=f"keycheck-{proposal_id}",
            requester=caller,
            rule_digest="0" * 64,
            mode=RunMode.HE_STRICT,
            parameter_set=parameter_set,
            household_count=0,
            salt_commitment=salt.commitment(),
            batch_digest=salt.digest("batch", commitment),
            result_digest=salt.digest("result", detail),
            budget=BudgetUse(bsns_charged=0),
            requested_at=now,
            started_at=now,
            finished_at=now,
            key_check=outcome,
        )
        with self._lock:
            self._salts.execute(
                "INSERT INTO entry_salts VALUES (?, ?, ?)",
                (salt.commitment(), entry.run_id, salt.unsafe_secret()),
            )
            return self.service.append([entry]).start

    def recover(self) -> list[int]:
        """Start-up: settle interrupted appends, then log every charge no entry holds."""
        with self._logging:
            return self._recover()

    def _recover(self) -> list[int]:
        ledger = self._ledger()
        log_ = self.service.log
        pending = ledger.pending_entries()
        if pending:
            start = max(0, log_.size - _TAIL)
            tail = {
                leaf_hash(leaf).hex(): start + i
                for i, leaf in enumerate(log_.leaves(start, log_.size))
            }
            for lh, _leaf in pending:
                ledger.logged(lh, tail.get(lh))  # found: it is logged; not found: log it below
        indices = []
        for batch_id in ledger.batches_unlogged():
            work = ledger.unlogged(batch_id)
            if work is None:
                continue
            entry, salt = self._entry(work, requester="", since=None, recovered=True)
            index = self._append(work, entry, salt)
            log.warning(
                "batch %s: charges a crash left unlogged are now audit log entry %d",
                batch_id,
                index,
            )
            indices.append(index)
        return indices

    def record_statement(
        self, run_id: str, envelope_json: bytes, digest: str, requester: str = ""
    ) -> None:
        """Append a compute-to-data run from the runner's signed statement (the enclave hook).

        ``requester`` is the authenticated caller; without it, the one the run's charges were
        opened with in the ledger (the same caller, recorded when the run was checked).

        The entry carries the statement itself (``statement``, ``statement_digest``) and the
        digests of its predicate; the runner's signed envelope stays in the enclave register
        and with SVB. Its digests are salted with SVB's per-run salt, whose commitment is
        in the statement. The run's charges in the ledger are marked as recorded by it.
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
        with self._logging:
            self._record_statement(run_id, payload, approvals, digest, requester)

    def _record_statement(
        self, run_id: str, payload: bytes, approvals: list[Approval], digest: str, requester: str
    ) -> None:
        p = RunStatement.model_validate_json(payload).predicate
        ledger = self.ledger
        work = None if ledger is None else ledger.unlogged(ENCLAVE_PREFIX + run_id)
        charged = sum(r.charged for r in work.rows) if work is not None else p.evaluated_count
        entry = RunEntry.create(
            run_id=run_id,
            requester=requester
            or (work.meta.get("requester") if work is not None else None)
            or "unnamed client",
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
            # members charged; households refused (budget spent or already in the run)
            budget=BudgetUse(bsns_charged=charged, refused=p.household_count - p.evaluated_count),
            requested_at=p.started_at,
            started_at=p.started_at,
            finished_at=p.finished_at,
            statement_digest=digest,
            statement=base64.b64encode(payload).decode(),
            resumes=None if work is None else work.last_entry,
            replays_refused=None if work is None else (len(work.conflicts) or None),
        )
        if work is None or ledger is None:
            with self._lock:
                index = self.service.append([entry]).start
        else:
            leaf = entry.canonical_bytes()
            lh = leaf_hash(leaf).hex()
            with self._lock:
                ledger.prepare_log(work, leaf, lh)
                index = self.service.append([entry]).start
                ledger.logged(lh, index)
        log.info("compute-to-data run %s recorded as audit log entry %d", run_id, index)

    # --- opening ---------------------------------------------------------------------------

    def salt_for(self, commitment: str) -> BatchSalt | None:
        """The salt of the entry with this commitment (to open its digests to an auditor)."""
        row = self._salts.execute(
            "SELECT secret FROM entry_salts WHERE commitment = ?", (commitment,)
        ).fetchone()
        return None if row is None else BatchSalt(bytes(row[0]))

    def salt(self, run_id: str) -> BatchSalt | None:
        """The salt of the latest entry of a run (see :meth:`salt_for` for a given entry)."""
        row = self._salts.execute(
            "SELECT secret FROM entry_salts WHERE run_id = ? ORDER BY rowid DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        if (
            row is None
            and self._salts.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'salts'"
            ).fetchone()
        ):  # a store of the first release: one salt per run id
            row = self._salts.execute(
                "SELECT secret FROM salts WHERE run_id = ?", (run_id,)
            ).fetchone()
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
