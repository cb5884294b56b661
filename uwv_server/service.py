"""The screening service: one chunk of households in, its result ciphertext(s) out.

This is the domain layer: no gRPC here (see :mod:`uwv_server.grpc`). Per chunk, in this
order (DESIGN §4): **validate** (shape, BSNs) → **retry?** (same id and content digest: the
stored answer, byte for byte, no new charge; same id, other content: refused and logged; see
:func:`chunk_digest` for what the content is) → **parse** (the ciphertexts must parse for the
batch's context) → **charge** (every member of every
household that may be evaluated, once per batch) → **evaluate** → **store** the answer →
send it. A bad chunk fails alone, costs nobody's budget, and the batch goes on.

What is computed is UWV's choice: the income definition comes from the approved rule the
header names (:mod:`uwv_server.he_rules`), never from the client.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from shared.bsn import valid_bsn_mask
from shared.chunk import HouseholdChunk, HouseholdError
from shared.errors import CryptoError, Error, InputError
from shared.models import Period
from uwv_server.audit_trail import AuditTrail, chunk_audit_digest
from uwv_server.budget import (
    ENCLAVE_PREFIX,
    Refusal,
    ReplayConflict,
    SqliteBudget,
    Stored,
    pack_blobs,
    unpack_blobs,
)
from uwv_server.capacity import Lease
from uwv_server.contexts import ContextRegistry
from uwv_server.evaluators import ChunkEvaluator
from uwv_server.he_rules import ApprovedRules, IncomeDefinition, NoRules
from uwv_server.store import Snapshot

IntArray = npt.NDArray[np.int64]
log = logging.getLogger("uwv_server")

MODES: Final = ("masked", "strict")


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChunkError(InputError):
    """A chunk that cannot be evaluated; ``slot``/``member`` say where when known."""

    def __init__(self, message: str, *, slot: int = -1, member: int = -1, code: str = "chunk"):
        super().__init__(message)
        self.slot = slot
        self.member = member
        self.code = code


class ModeNotServed(InputError):
    """A batch in a mode this server was configured not to serve."""


@dataclass(frozen=True, slots=True)
class BatchRequest:
    batch_id: str
    context_sha256: str
    mode: str
    period: Period
    rule_digest: str
    chunk_count: int
    requester: str = "unnamed client"

    def header_digest(self) -> str:
        """What binds a batch id: context, mode, period and rule (not the progress count)."""
        h = hashlib.sha256(b"aio-batch-header/v1\x00")
        for part in (self.context_sha256, self.mode, str(self.period), self.rule_digest):
            h.update(part.encode() + b"\x00")
        return h.hexdigest()


@dataclass(slots=True)
class Batch:
    request: BatchRequest
    evaluator: ChunkEvaluator
    definition: IncomeDefinition
    started: float
    opened_at: datetime
    header_digest: str = ""
    resumed: bool = False
    chunks: int = 0
    households: int = 0
    failed_chunks: int = 0
    replayed_chunks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    lease: Lease | None = None


@dataclass(frozen=True, slots=True)
class ChunkOutput:
    index: int
    ciphertexts: list[bytes]
    refused_slots: dict[int, Refusal] = field(default_factory=dict)
    replayed: bool = False


class BudgetPolicy(Protocol):
    """Differencing protection (DESIGN §4): :class:`uwv_server.budget.SqliteBudget`."""

    def open_batch(
        self, batch_id: str, header_digest: str, meta: dict[str, str], at: datetime
    ) -> bool: ...

    def lookup(
        self, batch_id: str, chunk_index: int, digest: str, at: datetime
    ) -> Stored | None: ...

    def charge(
        self,
        *,
        batch_id: str,
        chunk_index: int,
        digest: str,
        mode: str,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
        audit_digest: bytes,
        at: datetime,
    ) -> dict[int, Refusal]: ...

    def store_answer(self, batch_id: str, chunk_index: int, digest: str, answer: bytes) -> None: ...

    def refund(self, batch_id: str, chunk_index: int) -> None: ...

    def conflict(self, batch_id: str, chunk_index: int, at: datetime) -> None: ...


class NoBudget:
    """No differencing protection and no retry memory: every household is evaluated, every
    time. Benchmarks only (``--unsafe-no-budget``)."""

    def open_batch(
        self, batch_id: str, header_digest: str, meta: dict[str, str], at: datetime
    ) -> bool:
        return False

    def lookup(self, batch_id: str, chunk_index: int, digest: str, at: datetime) -> Stored | None:
        return None

    def charge(
        self,
        *,
        batch_id: str,
        chunk_index: int,
        digest: str,
        mode: str,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
        audit_digest: bytes,
        at: datetime,
    ) -> dict[int, Refusal]:
        return {}

    def store_answer(self, batch_id: str, chunk_index: int, digest: str, answer: bytes) -> None:
        pass

    def refund(self, batch_id: str, chunk_index: int) -> None:
        pass

    def conflict(self, batch_id: str, chunk_index: int, at: datetime) -> None:
        pass


def chunk_digest(
    header_digest: str,
    index: int,
    member_counts: IntArray,
    member_bsns: IntArray,
    ciphertexts: list[bytes],
) -> str:
    """The content digest that identifies a chunk next to its id: the batch header (context,
    mode, period, rule), the households and their members, and the number of ciphertexts.

    Not the ciphertext bytes: encryption is randomised, so an honest client resuming a batch
    cannot re-send the same bytes (and keeping them would cost it 39 MB per strict chunk).
    A re-sent chunk with other ciphertexts therefore gets the *stored* answer — computed from
    the first thresholds — which tells a dishonest client nothing new, and costs nothing.
    Another household list under the same id is a :class:`ReplayConflict`.
    """
    h = hashlib.sha256(b"aio-chunk/v1\x00")
    h.update(bytes.fromhex(header_digest))
    h.update(index.to_bytes(8, "big"))
    h.update(len(member_counts).to_bytes(8, "big"))
    h.update(np.asarray(member_counts, dtype=">i8").tobytes())
    h.update(len(member_bsns).to_bytes(8, "big"))
    h.update(np.asarray(member_bsns, dtype=">i8").tobytes())
    h.update(len(ciphertexts).to_bytes(8, "big"))
    return h.hexdigest()


def invalid_bsn_positions(bsns: IntArray) -> IntArray:
    """Indices of integers that are not valid BSNs (range and elfproef), vectorised."""
    return np.flatnonzero(~valid_bsn_mask(bsns))


class ScreeningService:
    """UWV's screening: validates chunks, charges the budget, evaluates homomorphically."""

    def __init__(
        self,
        snapshot: Snapshot,
        contexts: ContextRegistry,
        *,
        budget: BudgetPolicy | None = None,
        audit: AuditTrail | None = None,
        rules: ApprovedRules | None = None,
        modes: tuple[str, ...] = MODES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.snapshot = snapshot
        self.contexts = contexts
        self.budget: BudgetPolicy = budget if budget is not None else NoBudget()
        self.audit = audit
        self.rules: ApprovedRules = rules if rules is not None else NoRules()
        self.modes = tuple(m for m in MODES if m in modes)
        self.clock = clock
        self._ledger = budget if isinstance(budget, SqliteBudget) else None
        if audit is not None and (self._ledger is None or audit.ledger is not self._ledger):
            # entries are made of the charge ledger: an audit trail without it would log nothing
            raise ValueError(
                "an audit trail needs this service's SqliteBudget as its ledger "
                "(AuditTrail.open(store, ledger=budget), ScreeningService(budget=budget))"
            )
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, int], tuple[str, Future[ChunkOutput]]] = {}

    def recover(self) -> list[int]:
        """At start-up: log every charge a crash left out of the audit log (entry indices)."""
        if self.audit is None or self._ledger is None:
            return []
        return self.audit.recover()

    def open_batch(self, request: BatchRequest) -> Batch:
        """Check the header: mode served, rule approved, context known, id not reused.

        Nothing is charged here; every refusal raises before the first chunk.
        """
        if request.batch_id.startswith(ENCLAVE_PREFIX):
            raise InputError(
                f"batch_id may not start with {ENCLAVE_PREFIX!r} (the compute-to-data runs' ids)"
            )
        if request.mode not in self.modes:
            raise ModeNotServed(
                f"mode {request.mode!r} is not served here (this server serves "
                f"{', '.join(self.modes) or 'no homomorphic mode'})"
            )
        definition = self.rules.definition(request.rule_digest)
        lease = self.contexts.acquire(request.context_sha256, request.mode)
        try:
            return self._open(request, definition, lease)
        except BaseException:
            lease.release()
            raise

    def _open(self, request: BatchRequest, definition: IncomeDefinition, lease: Lease) -> Batch:
        evaluator = lease.evaluator
        now = self.clock()
        header = request.header_digest()
        meta = {
            "requester": request.requester,
            "rule_digest": definition.rule_digest,
            "mode": request.mode,
            "parameter_set": evaluator.parameter_set,
            "period": str(request.period),
        }
        try:
            resumed = self.budget.open_batch(request.batch_id, header, meta, now)
        except ReplayConflict:
            self._log(request.batch_id, request.requester, now)
            raise
        log.info(
            "batch %s %s: mode=%s parameters=%s period=%s chunks=%d context=%s… rule=%s…",
            request.batch_id,
            "resumed" if resumed else "opened",
            request.mode,
            evaluator.parameter_set,
            request.period,
            request.chunk_count,
            request.context_sha256[:12],
            definition.rule_digest[:12],
        )
        return Batch(
            request=request,
            evaluator=evaluator,
            definition=definition,
            started=time.monotonic(),
            opened_at=now,
            header_digest=header,
            resumed=resumed,
            lease=lease,
        )

    def close_batch(self, batch: Batch) -> None:
        """The stream is over (completed or abandoned): log what it charged, if anything, and
        give the evaluator back."""
        try:
            self._log(batch.request.batch_id, batch.request.requester, batch.opened_at)
        finally:
            if batch.lease is not None:
                batch.lease.release()

    def _log(self, batch_id: str, requester: str, opened_at: datetime) -> None:
        if self.audit is None or self._ledger is None:
            return
        index = self.audit.log_batch(batch_id, requester=requester, since=opened_at)
        if index is not None:
            log.info("batch %s recorded as audit log entry %d", batch_id, index)

    def submit_chunk(
        self,
        batch: Batch,
        index: int,
        member_counts: IntArray,
        member_bsns: IntArray,
        ciphertexts: list[bytes],
    ) -> Future[ChunkOutput]:
        """Validate one chunk, answer a retry from storage, or charge and start its evaluation.

        Validation errors raise :class:`ChunkError` / ``CryptoError`` / ``ReplayConflict`` at
        once (nothing charged); evaluation errors surface from the future (charge refunded).
        Chunks may be evaluated concurrently (strict mode).
        """
        self._validate(batch, index, member_counts, member_bsns)
        request = batch.request
        digest = chunk_digest(batch.header_digest, index, member_counts, member_bsns, ciphertexts)
        key = (request.batch_id, index)
        outer: Future[ChunkOutput] = Future()
        now = self.clock()
        with self._lock:
            running = self._inflight.get(key)
            if running is not None and running[0] == digest:
                return running[1]  # the same chunk on two streams: one evaluation, one answer
            if running is None:
                self._inflight[key] = (digest, outer)
        if running is not None:
            self.budget.conflict(request.batch_id, index, now)
            raise ReplayConflict(
                f"chunk {index} of batch {request.batch_id!r} is being evaluated with other "
                "content; a retry must re-send exactly the same chunk (refused and logged)"
            )
        try:
            stored = self.budget.lookup(request.batch_id, index, digest, now)
            if stored is not None and stored.answer is not None:
                self._done(key)
                batch.replayed_chunks += 1
                outer.set_result(
                    ChunkOutput(index, unpack_blobs(stored.answer), stored.refused, replayed=True)
                )
                self._count(batch, len(member_counts))
                return outer
            parsed = batch.evaluator.validate(ciphertexts, len(member_counts))
            if stored is None:
                refused = self.budget.charge(
                    batch_id=request.batch_id,
                    chunk_index=index,
                    digest=digest,
                    mode=request.mode,
                    period=request.period,
                    member_bsns=member_bsns,
                    member_counts=member_counts,
                    audit_digest=chunk_audit_digest(index, member_counts, member_bsns, ciphertexts),
                    at=now,
                )
            else:  # charged before a crash that lost the answer: evaluate now, no new charge
                refused = stored.refused
            totals = batch.definition.household_totals(
                self.snapshot, request.period, member_bsns, member_counts
            )
            inner = batch.evaluator.evaluate(parsed, totals, request.period.months, sorted(refused))
        except BaseException as exc:
            self._done(key)
            if isinstance(exc, Exception):
                # A concurrent identical chunk may already hold ``outer`` (returned above):
                # it must get this outcome too, not wait for an answer that never comes.
                outer.set_exception(exc)
            raise

        def relay(f: Future[list[bytes]]) -> None:
            try:
                exc = f.exception()
                if exc is not None:
                    if isinstance(exc, CryptoError):
                        # the ciphertexts could not be evaluated (nothing of UWV's data decides
                        # that) and nothing was answered: the charge is undone. Any other
                        # failure keeps it, so a failure can never be a free question.
                        self.budget.refund(request.batch_id, index)
                    outer.set_exception(exc)
                    return
                result = f.result()
                try:
                    self.budget.store_answer(request.batch_id, index, digest, pack_blobs(result))
                except Error as store_exc:
                    outer.set_exception(store_exc)
                    return
                self._count(batch, len(member_counts))
                outer.set_result(
                    ChunkOutput(index=index, ciphertexts=result, refused_slots=refused)
                )
            finally:
                self._done(key)

        inner.add_done_callback(relay)
        return outer

    def _done(self, key: tuple[str, int]) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _validate(
        self, batch: Batch, index: int, member_counts: IntArray, member_bsns: IntArray
    ) -> None:
        households = len(member_counts)
        slots = batch.evaluator.slots
        if households > slots:
            raise ChunkError(
                f"chunk {index} has {households} households, at most {slots} per chunk"
            )
        try:
            HouseholdChunk(member_counts, member_bsns)  # the one definition of a valid chunk
        except HouseholdError as exc:
            raise ChunkError(
                f"chunk {index}, {exc}" if exc.slot >= 0 else f"chunk {index}: {exc}",
                slot=exc.slot,
                member=exc.member,
                code=exc.check,
            ) from None

    def _count(self, batch: Batch, households: int) -> None:
        with batch.lock:
            batch.chunks += 1
            batch.households += households
            chunks = batch.chunks
        if chunks % 50 == 0 or chunks == batch.request.chunk_count:
            elapsed = time.monotonic() - batch.started
            log.info(
                "batch %s: %d/%s chunks, %d households, %.0f households/s",
                batch.request.batch_id,
                chunks,
                batch.request.chunk_count or "?",
                batch.households,
                batch.households / max(elapsed, 1e-9),
            )
