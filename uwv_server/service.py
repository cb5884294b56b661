"""The screening service: one chunk of households in, its result ciphertext(s) out.

This is the domain layer: no gRPC here (see :mod:`uwv_server.grpc`). Every chunk is
validated in full before any computation; a bad chunk fails alone and the batch goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from shared.bsn import valid_bsn_mask
from shared.chunk import HouseholdChunk, HouseholdError
from shared.errors import InputError
from shared.models import IncomeWeights, Period
from uwv_server.audit_trail import AuditTrail, RunRecord
from uwv_server.contexts import ContextRegistry
from uwv_server.evaluators import ChunkEvaluator
from uwv_server.store import Snapshot

IntArray = npt.NDArray[np.int64]
log = logging.getLogger("uwv_server")

MODES: Final = ("masked", "strict")


class ChunkError(InputError):
    """A chunk that cannot be evaluated; ``slot``/``member`` say where when known."""

    def __init__(self, message: str, *, slot: int = -1, member: int = -1, code: str = "chunk"):
        super().__init__(message)
        self.slot = slot
        self.member = member
        self.code = code


@dataclass(frozen=True, slots=True)
class BatchRequest:
    batch_id: str
    context_sha256: str
    mode: str
    period: Period
    rule_digest: str
    chunk_count: int
    weights: IncomeWeights
    requester: str = "unnamed client"


@dataclass(slots=True)
class Batch:
    request: BatchRequest
    evaluator: ChunkEvaluator
    started: float
    chunks: int = 0
    households: int = 0
    failed_chunks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    record: RunRecord | None = None


@dataclass(frozen=True, slots=True)
class ChunkOutput:
    index: int
    ciphertexts: list[bytes]
    refused_slots: dict[int, str] = field(default_factory=dict)


class BudgetPolicy(Protocol):
    """Differencing protection (DESIGN §4): how often a BSN may take part in an evaluation."""

    def charge(
        self,
        *,
        batch_id: str,
        chunk_index: int,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
    ) -> dict[int, str]:
        """Charge one evaluation to every member of every household in the chunk.

        Returns ``{slot: reason}`` for households that must not be evaluated (a member's
        budget is spent); those are not charged. Charging the same (batch_id, chunk_index)
        twice must not charge twice (a resumed batch re-sends chunks).
        """
        ...


class NoBudget:
    """No differencing protection: every household is evaluated. Tests and benchmarks only."""

    def charge(
        self,
        *,
        batch_id: str,
        chunk_index: int,
        period: Period,
        member_bsns: IntArray,
        member_counts: IntArray,
    ) -> dict[int, str]:
        return {}


def invalid_bsn_positions(bsns: IntArray) -> IntArray:
    """Indices of integers that are not valid BSNs (range and elfproef), vectorised."""
    return np.flatnonzero(~valid_bsn_mask(bsns))


class ScreeningService:
    """UWV's screening: validates chunks, looks up incomes, evaluates homomorphically."""

    def __init__(
        self,
        snapshot: Snapshot,
        contexts: ContextRegistry,
        *,
        budget: BudgetPolicy | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.contexts = contexts
        self.budget: BudgetPolicy = budget if budget is not None else NoBudget()
        self.audit = audit

    def open_batch(self, request: BatchRequest) -> Batch:
        if request.mode not in MODES:
            raise ChunkError(f"mode {request.mode!r} is not served here", code="mode")
        evaluator = self.contexts.evaluator(request.context_sha256, request.mode)
        log.info(
            "batch %s opened: mode=%s parameters=%s period=%s chunks=%d context=%s…",
            request.batch_id,
            request.mode,
            evaluator.parameter_set,
            request.period,
            request.chunk_count,
            request.context_sha256[:12],
        )
        batch = Batch(request=request, evaluator=evaluator, started=time.monotonic())
        if self.audit is not None:
            batch.record = self.audit.start(
                run_id=request.batch_id,
                requester=request.requester,
                rule_digest=request.rule_digest,
                mode=request.mode,
                parameter_set=evaluator.parameter_set,
                period=str(request.period),
            )
        return batch

    def close_batch(self, batch: Batch) -> None:
        """The batch is over (completed or abandoned): record it in the audit log."""
        if self.audit is not None and batch.record is not None:
            index = self.audit.finish(batch.record)
            log.info("batch %s recorded as audit log entry %d", batch.request.batch_id, index)

    def submit_chunk(
        self,
        batch: Batch,
        index: int,
        member_counts: IntArray,
        member_bsns: IntArray,
        ciphertexts: list[bytes],
    ) -> Future[ChunkOutput]:
        """Validate one chunk and start its evaluation.

        Validation errors raise :class:`ChunkError` / ``CryptoError`` at once; evaluation errors
        surface from the future. Chunks may be evaluated concurrently (strict mode).
        """
        self._validate(batch, index, member_counts, member_bsns)
        if batch.record is not None:
            batch.record.chunk_in(index, member_counts, member_bsns, ciphertexts)
        refused = self.budget.charge(
            batch_id=batch.request.batch_id,
            chunk_index=index,
            period=batch.request.period,
            member_bsns=member_bsns,
            member_counts=member_counts,
        )
        totals = self.snapshot.household_totals(
            batch.request.period, member_bsns, member_counts, batch.request.weights
        )
        inner = batch.evaluator.submit(
            totals, batch.request.period.months, ciphertexts, sorted(refused)
        )
        outer: Future[ChunkOutput] = Future()

        def relay(f: Future[list[bytes]]) -> None:
            exc = f.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
            self._count(batch, len(member_counts))
            if batch.record is not None:
                charged = int(member_counts.sum()) - sum(int(member_counts[i]) for i in refused)
                batch.record.chunk_out(index, len(member_counts), charged, len(refused), f.result())
            outer.set_result(
                ChunkOutput(index=index, ciphertexts=f.result(), refused_slots=refused)
            )

        inner.add_done_callback(relay)
        return outer

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
