"""The compute-to-data mode in the pipeline: UWV runs the approved rule, SVB verifies.

Per chunk (one *run*): send the households with the chunk's salt (drawn when the batch was
planned and kept in the journal, so a resumed run sends exactly the same request) → verify
the runner's signed statement against SVB's own copy of the key registry (runner signature
and role, rule digest, batch digest, output digest, salt commitment, approvals meeting the
policy) *before* any decision is used → keep a replay package for the auditor → journal.

A result without a statement, with a bad signature, or whose statement does not match what
was asked and received is refused (:class:`ResultRefused`): nothing of that run is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.chunk import HouseholdChunk
from shared.crypto import Registry, RuleBundle, SigningKey, batch_digest, verify_run
from shared.crypto.errors import SigningError
from shared.errors import Error
from shared.models import Period
from shared.rules import digest, parse_file
from svb_client.households import HouseholdBatch
from svb_client.journal import (
    ELIGIBLE,
    NO_DECISION,
    NOT_ELIGIBLE,
    Journal,
    Pending,
    PendingChunk,
)
from svb_client.pipeline.method import BatchContext, Recorded
from svb_client.pipeline.outreach import atomic_file, write_lines
from svb_client.pipeline.summary import REFUSED_BY_UWV
from svb_client.wire import RunBatch, RunReply, ServerError, Transport

DEFAULT_RUN_SIZE: Final = 1_000_000
"""Households per run: ~28 MB per request, inside the 64 MiB message limit; one run means one
runner start and one scan of the snapshot."""
SALT_BYTES: Final = 32


class EnclaveClientError(Error):
    """Root of SVB's compute-to-data errors."""


class ResultRefused(EnclaveClientError):
    """A run result SVB will not use: unsigned, wrongly signed, or not matching the request."""


class EnclaveServerError(EnclaveClientError, ServerError):
    """UWV will not run the batch (the message carries UWV's reason)."""


def sign_bundle(rule: Path, key: SigningKey) -> tuple[str, bytes]:
    """(digest, DSSE envelope JSON) of a rule file signed as its author."""
    text = rule.read_text(encoding="utf-8")
    d = digest(parse_file(rule))
    return d, RuleBundle(rule_digest=d, rule_yaml=text).sign(key).to_json()


def run_batch(
    households: HouseholdChunk, *, run_id: str, rule_digest: str, period: Period, salt: bytes
) -> tuple[RunBatch, str]:
    """The run request for a chunk (with its per-household columns) and its batch digest."""
    if households.is_couple is None or households.known_income_cents is None:
        raise EnclaveClientError("a compute-to-data chunk needs is_couple and known income")
    run = RunBatch(
        run_id=run_id,
        rule_digest=rule_digest,
        period=period,
        salt=salt,
        member_counts=households.member_counts,
        member_bsns=households.member_bsns,
        is_couple=households.is_couple,
        known_income_cents=households.known_income_cents,
        cost_sharers=households.cost_sharers,
    )
    expected = batch_digest(
        salt,
        str(period),
        households.member_counts,
        households.member_bsns,
        households.is_couple,
        households.known_income_cents,
        cost_sharers=households.cost_sharers,
    )
    return run, expected


def verified_outcomes(
    response: RunReply,
    registry: Registry,
    *,
    rule_digest: str,
    expected_batch: str,
    salt: bytes,
    households: int,
) -> npt.NDArray[np.uint8]:
    """The outcomes of a run, only if its statement verifies (else :class:`ResultRefused`)."""
    outcomes = np.frombuffer(response.outcomes, dtype=np.uint8)
    if len(outcomes) != households or (outcomes > 2).any():
        raise ResultRefused(
            f"refusing the result: {len(outcomes)} outcomes for {households} households"
        )
    try:
        verify_run(
            response.statement,
            registry,
            rule_digest=rule_digest,
            batch=expected_batch,
            outcomes=outcomes,
            salt=salt,
        )
    except SigningError as exc:
        raise ResultRefused(f"refusing the result: {exc.diagnostics()}") from None
    return outcomes


def replay_dir(out: Path) -> Path:
    """Where SVB keeps the replay packages of an outreach file's runs."""
    return out.with_name(out.name + ".replay")


def statements_path(out: Path) -> Path:
    """Where SVB keeps the verified run statements (one envelope per line)."""
    return out.with_name(out.name + ".statements.jsonl")


def write_replay_package(out: Path, run: RunBatch, outcomes: npt.NDArray[np.uint8]) -> None:
    """Keep what an auditor needs to replay this run: the batch exactly as sent, the salt and
    the outcomes received. It holds BSNs (SVB's own data), so it stays with SVB (mode 0600)
    and is handed only to an auditor with replay rights."""
    folder = replay_dir(out)
    folder.mkdir(exist_ok=True)
    with atomic_file(folder / f"{run.run_id}.npz") as f:
        np.savez(
            f,
            run_id=np.array(run.run_id),
            period=np.array(str(run.period)),
            salt=np.frombuffer(run.salt, dtype=np.uint8),
            member_counts=run.member_counts.astype("<i8"),
            member_bsns=run.member_bsns.astype("<i8"),
            is_couple=run.is_couple.astype(np.uint8),
            known_income_cents=run.known_income_cents.astype("<i8"),
            cost_sharers=(
                np.zeros(len(run.member_counts), "<i8")
                if run.cost_sharers is None
                else run.cost_sharers.astype("<i8")
            ),
            outcomes=outcomes,
        )


class EnclaveMethod:
    """Compute-to-data: no key at SVB; the registry to verify UWV's runner with."""

    mode = "enclave"
    default_chunk_size = DEFAULT_RUN_SIZE
    max_chunk_size = 2_000_000

    def __init__(
        self,
        registry: Registry,
        rule: Path,
        out: Path,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.registry = registry
        self.rule_digest = digest(parse_file(rule))
        self.out = out
        self._random = random_bytes

    def identity(self) -> dict[str, str]:
        return {}

    def plan_chunk(self, households: HouseholdBatch, period: Period, index: int) -> PendingChunk:
        return PendingChunk(
            index=index,
            household_ids=households.household_ids,
            households=households.chunk(0, len(households), attributes=True),
            salt=self._random(SALT_BYTES),
        )

    def exchange(
        self, transport: Transport, pending: Pending, ctx: BatchContext
    ) -> Iterator[Recorded]:
        status = transport.rule_status(self.rule_digest)
        if status.state != "approved" and not status.checked_later:
            raise EnclaveServerError(
                f"rule {self.rule_digest[:16]}… is {status.state} at UWV ({status.reason}); "
                "it cannot run until it is approved"
            )
        by_run = {self._run_id(ctx, index): index for index in pending.indices}

        def batches() -> Iterator[RunBatch]:
            for chunk in pending:
                yield self._run(chunk, ctx)[0]

        # One run at a time online; all runs in one request file through a file transport.
        for reply in transport.run_many(batches(), ctx.deadline_s):
            index = by_run.pop(reply.run_id, None)
            if index is None:
                raise ServerError(f"UWV answered run {reply.run_id}, which was not asked")
            chunk = pending.get(index)
            run, expected = self._run(chunk, ctx)
            outcomes = verified_outcomes(
                reply,
                self.registry,
                rule_digest=self.rule_digest,
                expected_batch=expected,
                salt=chunk.salt,
                households=len(chunk.households),
            )
            write_replay_package(self.out, run, outcomes)
            decisions = np.choose(outcomes, [NOT_ELIGIBLE, ELIGIBLE, NO_DECISION]).astype(np.int8)
            slot_errors = {
                int(r.position): f"{REFUSED_BY_UWV}: {r.code}: {r.reason}" for r in reply.refusals
            }
            for slot in np.flatnonzero(outcomes == 2).tolist():
                slot_errors.setdefault(slot, f"{REFUSED_BY_UWV}: no decision")
            yield Recorded(chunk, decisions, slot_errors, reply.statement, reply.statement_digest)
        if by_run:
            raise ServerError(
                f"UWV answered {len(pending) - len(by_run)} of {len(pending)} runs; run the same "
                "command again to resume"
            )

    @staticmethod
    def _run_id(ctx: BatchContext, index: int) -> str:
        return f"{ctx.batch_id}-{index}"

    def _run(self, chunk: PendingChunk, ctx: BatchContext) -> tuple[RunBatch, str]:
        return run_batch(
            chunk.households,
            run_id=self._run_id(ctx, chunk.index),
            rule_digest=self.rule_digest,
            period=ctx.period,
            salt=chunk.salt,
        )

    def finish(self, journal: Journal, out: Path, ctx: BatchContext) -> None:
        """Write every verified run statement next to the outreach file."""
        receipts = list(journal.receipts())
        write_lines(statements_path(out), (statement for statement, _ in receipts))
        ctx.summary.statement_digests = [d for _, d in receipts]
