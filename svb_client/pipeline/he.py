"""The homomorphic modes (masked, strict) in the pipeline: plan thresholds, encrypt, decide.

Everything scheme-specific is behind :class:`svb_client.schemes.ClientScheme`; this module
turns the rule's HE plan into per-household thresholds, streams the encrypted chunks with a
bounded number in flight, and turns each answer into decisions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError, Error
from shared.models import Period
from shared.rules import HePlan, check, compile_he, parse_file
from svb_client.households import HouseholdBatch, IntArray
from svb_client.journal import (
    ELIGIBLE,
    NO_DECISION,
    NOT_ELIGIBLE,
    Journal,
    Pending,
    PendingChunk,
)
from svb_client.pipeline.method import BatchContext, Recorded
from svb_client.pipeline.summary import REFUSED_BY_UWV
from svb_client.schemes import ClientScheme, SecretContext, scheme_for
from svb_client.wire import BatchOpen, ChunkAnswer, EncryptedChunk, ServerError, Transport

DEFAULT_IN_FLIGHT: Final = 8
"""Chunks sent ahead of their answers. Any value works with a server that answers each chunk
as soon as it is evaluated; 1 waits for each answer before sending the next chunk."""


def load_plan(rule_path: Path) -> HePlan:
    """Parse, check and compile a rule to its HE plan; a rule outside the subset is refused."""
    return compile_he(check(parse_file(rule_path)))


def plan_thresholds(plan: HePlan, batch: HouseholdBatch, period: Period) -> IntArray:
    """Integer total thresholds per household such that eligible iff ``S < threshold``
    (computed from the rule: norms, cost-sharers, known income, months)."""
    is_couple = np.array([c == "couple" for c in batch.categories], dtype=np.bool_)
    thresholds = plan.thresholds(period, is_couple, batch.known_income_cents, batch.sharers)
    # S <= T  iff  S < T + 1 for integers: the masked protocol only needs "<".
    return thresholds + (1 if plan.comparison == "<=" else 0)


def plan_chunk(
    households: HouseholdBatch, period: Period, plan: HePlan, index: int, scheme: ClientScheme
) -> PendingChunk:
    """One chunk (at most a ciphertext's slots of households) with its thresholds."""
    thresholds = plan_thresholds(plan, households, period)
    scheme.check_thresholds(thresholds, period.months)  # refuses one out of range, early
    return PendingChunk(
        index=index,
        household_ids=households.household_ids,
        households=households.chunk(0, len(households)),
        thresholds=thresholds,
    )


class _Window:
    """At most ``size`` chunks sent and not yet answered; closing it releases the sender."""

    def __init__(self, size: int) -> None:
        self._free = threading.Semaphore(size)
        self._closed = threading.Event()

    def take(self) -> bool:
        while not self._closed.is_set():
            if self._free.acquire(timeout=0.2):
                return True
        return False

    def give(self) -> None:
        self._free.release()

    def close(self) -> None:
        self._closed.set()


class HeMethod:
    """Masked or strict: the secret key stays here, UWV gets the public context once."""

    def __init__(self, secret: SecretContext, mode: str, rule: Path, in_flight: int) -> None:
        self.scheme = scheme_for(secret)
        if mode != self.scheme.mode:
            raise Error(
                f"mode {mode!r} needs a {mode} key; the key given is for "
                f"{self.scheme.mode!r} ({self.scheme.parameter_set})"
            )
        if in_flight < 1:
            raise Error("--in-flight must be at least 1")
        self.mode = mode
        self.plan = load_plan(rule)
        self.rule_digest = self.plan.rule_digest
        self.default_chunk_size = self.max_chunk_size = self.scheme.slots
        self.in_flight = in_flight

    def identity(self) -> dict[str, str]:
        return {"parameter_set": self.scheme.parameter_set}

    def plan_chunk(self, households: HouseholdBatch, period: Period, index: int) -> PendingChunk:
        return plan_chunk(households, period, self.plan, index, self.scheme)

    def exchange(
        self, transport: Transport, pending: Pending, ctx: BatchContext
    ) -> Iterator[Recorded]:
        scheme, period = self.scheme, ctx.period
        transport.server_info()
        digest, ctx.summary.context_uploaded = scheme.register(transport)
        header = BatchOpen(
            batch_id=ctx.batch_id,
            context_sha256=digest,
            mode="strict" if scheme.mode == "strict" else "masked",
            period=period,
            rule_digest=self.rule_digest,
            requester=ctx.requester,
            chunk_count=ctx.total_chunks,
        )
        unanswered = set(pending.indices)
        window = _Window(self.in_flight)

        def chunks() -> Iterator[EncryptedChunk]:
            for chunk in pending:
                if not window.take():
                    return
                assert chunk.thresholds is not None
                yield EncryptedChunk(
                    index=chunk.index,
                    member_counts=chunk.households.member_counts,
                    member_bsns=chunk.households.member_bsns,
                    ciphertexts=tuple(scheme.encrypt_chunk(chunk.thresholds, period.months)),
                )

        try:
            for answer in transport.screen(header, chunks(), ctx.deadline_s):
                if answer.index not in unanswered:
                    raise ServerError(f"server answered chunk {answer.index}, which was not asked")
                unanswered.discard(answer.index)
                chunk = pending.get(answer.index)
                decisions, slot_errors = decide_chunk(scheme, period, answer, chunk)
                yield Recorded(chunk, decisions, slot_errors)
                window.give()
        finally:
            window.close()
        if unanswered:
            raise ServerError(
                f"the server ended the stream with {len(unanswered)} chunk(s) unanswered; "
                "run the same command again to resume"
            )

    def finish(self, journal: Journal, out: Path, ctx: BatchContext) -> None:
        """Nothing beyond the outreach file."""


def decide_chunk(
    scheme: ClientScheme, period: Period, answer: ChunkAnswer, chunk: PendingChunk
) -> tuple[npt.NDArray[np.int8], dict[int, str]]:
    """Decisions for one chunk and the reason for every household without one."""
    size = len(chunk.household_ids)
    decisions = np.full(size, NO_DECISION, dtype=np.int8)
    if answer.refused is not None:
        reason = f"{REFUSED_BY_UWV}: {answer.refused}"
        return decisions, dict.fromkeys(range(size), reason)
    try:
        chunk_decisions = scheme.decide_chunk(list(answer.ciphertexts), size, period.months)
    except CryptoError as exc:
        return decisions, dict.fromkeys(range(size), f"integrity error: {exc}")
    decisions[:] = np.where(chunk_decisions.eligible, ELIGIBLE, NOT_ELIGIBLE)
    slot_errors = {i: f"integrity error: {text}" for i, text in chunk_decisions.problems.items()}
    for slot, message in answer.slot_errors.items():
        slot_errors[slot] = f"{REFUSED_BY_UWV}: {message}"
    for i in slot_errors:
        decisions[i] = NO_DECISION
    return decisions, slot_errors
