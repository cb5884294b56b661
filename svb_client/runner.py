"""The screening batch: households file in, outreach file out, resumable at any point.

Order of work: validate the whole file → write the batch plan to the journal → make sure
UWV has the public context → stream the pending chunks (encrypting each just before it is
sent) and record each chunk's decisions as its result arrives → write the outreach file
from the journal. Killing the process at any moment and running the same command again
continues with the chunks that have no recorded result.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from shared.digests import file_sha256, sha256_hex
from shared.errors import CryptoError, Error
from shared.ids import new_id
from shared.models import IncomeWeights, NormCategory, Period
from shared.rules import HePlan, check, compile_he, parse_file
from svb_client.households import HouseholdBatch, IntArray, read_households
from svb_client.journal import ELIGIBLE, NO_DECISION, NOT_ELIGIBLE, Journal, PendingChunk
from svb_client.schemes import ClientScheme, SecretContext, scheme_for
from svb_client.wire import (
    BatchOpen,
    ChunkAnswer,
    EncryptedChunk,
    GrpcTransport,
    ScreeningTransport,
    ServerError,
)

DEFAULT_RULE = Path("rules/aio.yaml")


@dataclass(slots=True)
class Summary:
    households: int = 0
    screened: int = 0
    eligible: int = 0
    rejected: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    resumed_chunks: int = 0
    context_uploaded: bool = False

    def text(self) -> str:
        rate = self.screened / self.seconds if self.seconds > 0 else 0.0
        per_hh = max(self.screened, 1)
        lines = [
            f"households in file:     {self.households:,}",
            f"screened:               {self.screened:,}"
            + (
                f" ({self.resumed_chunks} chunks already done before this run)"
                if self.resumed_chunks
                else ""
            ),
            f"potentially eligible:   {self.eligible:,}",
            f"rejected:               {self.rejected:,}",
        ]
        for reason, count in sorted(self.rejected_reasons.items(), key=lambda kv: -kv[1])[:8]:
            lines.append(f"  {count:>8,} × {reason}")
        lines += [
            f"time:                   {self.seconds:.1f} s ({rate:,.0f} households/s)",
            f"sent to UWV:            {self.bytes_sent:,} bytes "
            f"({self.bytes_sent / per_hh:.0f}/household)",
            f"received from UWV:      {self.bytes_received:,} bytes "
            f"({self.bytes_received / per_hh:.0f}/household)",
        ]
        return "\n".join(lines)


class Progress:
    """A progress line on stderr: in place on a terminal, every 10% otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = 0.0
        self._last_decile = -1
        self._tty = stream.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        decile = 10 * self.done // max(self.total, 1)
        if self._tty and now - self._last < 0.2 and self.done < self.total:
            return
        if not self._tty and decile == self._last_decile and self.done < self.total:
            return
        self._last, self._last_decile = now, decile
        rate = self.done / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,} households "
            f"{rate:,.0f}/s ETA {eta:.0f}s"
        )
        self.stream.write(("\r" + line) if self._tty else line + "\n")
        if self._tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def load_plan(rule_path: Path) -> HePlan:
    """Parse, check and compile a rule to its HE plan; a rule outside the subset is refused."""
    return compile_he(check(parse_file(rule_path)))


def plan_thresholds(plan: HePlan, batch: HouseholdBatch, period: Period) -> IntArray:
    """Integer total thresholds per household such that eligible iff ``S < threshold``."""
    on = period.end.last_day()
    categories = sorted(set(batch.categories))
    norm = {c: plan.norm_cents(NormCategory(c), on) for c in categories}
    n = period.months if plan.months_multiplier else 1
    norms = np.array([norm[c] for c in batch.categories], dtype=np.int64)
    thresholds = n * (norms - plan.known_income_coefficient * batch.known_income_cents)
    # S <= T  iff  S < T + 1 for integers: the masked protocol only needs "<".
    return thresholds + (1 if plan.comparison == "<=" else 0)


def plan_chunks(
    batch: HouseholdBatch, period: Period, plan: HePlan, chunk_size: int, scheme: ClientScheme
) -> list[PendingChunk]:
    """Split the accepted households into chunks of at most ``chunk_size`` slots."""
    thresholds = plan_thresholds(plan, batch, period)
    scheme.check_thresholds(thresholds, period.months)  # refuses one out of range, early
    offsets = np.concatenate([[0], np.cumsum(batch.member_counts)])
    chunks = []
    for index, start in enumerate(range(0, len(batch), chunk_size)):
        stop = min(start + chunk_size, len(batch))
        chunks.append(
            PendingChunk(
                index=index,
                household_ids=batch.household_ids[start:stop],
                member_counts=batch.member_counts[start:stop],
                member_bsns=batch.member_bsns[offsets[start] : offsets[stop]],
                thresholds=thresholds[start:stop],
            )
        )
    return chunks


@dataclass(frozen=True, slots=True)
class ScreenJob:
    households: Path
    server: str
    period: Period
    out: Path
    journal: Path
    secret: SecretContext
    mode: str = "masked"
    rule: Path = DEFAULT_RULE
    chunk_size: int | None = None
    """Households per chunk; default: every slot of the parameter set."""
    fresh: bool = False
    progress: bool = True
    deadline_s: float | None = None
    connect_timeout_s: float = 30.0
    requester: str = "SVB svb-client"
    on_chunk_recorded: Callable[[int], None] | None = None
    transport: ScreeningTransport | None = None
    """How to reach UWV; default: a gRPC channel to ``server`` (opened and closed here)."""


def run_screen(job: ScreenJob) -> Summary:
    """Run (or resume) one screening batch; returns its summary. Raises shared.errors.Error."""
    started = time.monotonic()
    scheme = scheme_for(job.secret)
    if job.mode != scheme.mode:
        raise Error(
            f"mode {job.mode!r} needs a {job.mode} key; the key given is for {scheme.mode!r} "
            f"({scheme.parameter_set})"
        )
    chunk_size = job.chunk_size or scheme.slots
    if not 1 <= chunk_size <= scheme.slots:
        raise Error(f"--chunk-size must be 1..{scheme.slots}")
    plan = load_plan(job.rule)
    summary = Summary()
    if job.fresh and job.journal.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(job.journal) + suffix).unlink(missing_ok=True)
    journal = Journal(job.journal)
    try:
        input_sha = file_sha256(job.households) if job.households.exists() else ""
        identity = {
            "input_sha256": input_sha,
            "period": str(job.period),
            "mode": job.mode,
            "parameter_set": scheme.parameter_set,
            "rule": plan.rule_digest,
            "chunk_size": str(chunk_size),
        }
        # The batch id is part of what is journalled (so a resumed run reuses it), not of
        # what must match.
        if not journal.matches_or_empty(identity):
            identity["batch_id"] = new_id("batch")
            batch = read_households(job.households)
            chunks = plan_chunks(batch, job.period, plan, chunk_size, scheme)
            journal.create(identity, chunks, batch.rejected)
        total_chunks, done_before = journal.counts()
        summary.resumed_chunks = done_before
        batch_id = (journal.identity() or {}).get("batch_id", "")
        _stream(job, scheme, journal, summary, plan, total_chunks, batch_id)
        _write_outreach(journal, job.out, summary)
    finally:
        journal.close()
    summary.seconds = time.monotonic() - started
    return summary


def _stream(
    job: ScreenJob,
    scheme: ClientScheme,
    journal: Journal,
    summary: Summary,
    plan: HePlan,
    total_chunks: int,
    batch_id: str,
) -> None:
    pending = list(journal.pending())
    if not pending:
        return
    transport = job.transport or GrpcTransport(job.server, timeout=job.connect_timeout_s)
    try:
        transport.server_info()
        public = scheme.public_context()
        digest = sha256_hex(public)
        summary.context_uploaded = transport.ensure_context(scheme.parameter_set, public, digest)
        header = BatchOpen(
            batch_id=batch_id,
            context_sha256=digest,
            mode="strict" if scheme.mode == "strict" else "masked",
            period=job.period,
            rule_digest=plan.rule_digest,
            requester=job.requester,
            chunk_count=total_chunks,
            weights=IncomeWeights.of(dict(plan.gross_weight), dict(plan.tax_weight)),
        )
        by_index = {c.index: c for c in pending}
        progress = Progress(sum(len(c.household_ids) for c in pending), enabled=job.progress)

        def chunks() -> Iterator[EncryptedChunk]:
            for chunk in pending:
                yield EncryptedChunk(
                    index=chunk.index,
                    member_counts=chunk.member_counts,
                    member_bsns=chunk.member_bsns,
                    ciphertexts=tuple(scheme.encrypt_chunk(chunk.thresholds, job.period.months)),
                )

        sent_before = transport.stats.bytes_sent
        received_before = transport.stats.bytes_received
        try:
            for answer in transport.screen(header, chunks(), job.deadline_s):
                chunk = by_index.pop(answer.index, None)
                if chunk is None:
                    raise ServerError(f"server answered chunk {answer.index}, which was not asked")
                decisions, slot_errors = _decide_chunk(scheme, job.period, answer, chunk)
                journal.record(chunk.index, decisions, slot_errors)
                progress.advance(len(chunk.household_ids))
                if job.on_chunk_recorded is not None:
                    job.on_chunk_recorded(chunk.index)
        finally:
            summary.bytes_sent += transport.stats.bytes_sent - sent_before
            summary.bytes_received += transport.stats.bytes_received - received_before
        if by_index:
            raise ServerError(
                f"the server ended the stream with {len(by_index)} chunk(s) unanswered; "
                "run the same command again to resume"
            )
    finally:
        if job.transport is None:
            transport.close()


def _decide_chunk(
    scheme: ClientScheme, period: Period, answer: ChunkAnswer, chunk: PendingChunk
) -> tuple[npt.NDArray[np.int8], dict[int, str]]:
    """Decisions for one chunk and the reason for every household without one."""
    size = len(chunk.household_ids)
    decisions = np.full(size, NO_DECISION, dtype=np.int8)
    if answer.refused is not None:
        reason = f"refused by UWV: {answer.refused}"
        return decisions, dict.fromkeys(range(size), reason)
    try:
        chunk_decisions = scheme.decide_chunk(list(answer.ciphertexts), size, period.months)
    except CryptoError as exc:
        return decisions, dict.fromkeys(range(size), f"integrity error: {exc}")
    decisions[:] = np.where(chunk_decisions.eligible, ELIGIBLE, NOT_ELIGIBLE)
    slot_errors = {i: f"integrity error: {text}" for i, text in chunk_decisions.problems.items()}
    for slot, message in answer.slot_errors.items():
        slot_errors[slot] = f"refused by UWV: {message}"
    for i in slot_errors:
        decisions[i] = NO_DECISION
    return decisions, slot_errors


def _reason_kind(reason: str) -> str:
    """A reason without its line number and quoted values, for counting in the summary."""
    text = re.sub(r"^line \d+: ", "", reason)
    text = re.sub(r"^household '[^']*': ", "", text)
    return re.sub(r"'[^']*'", "'…'", re.sub(r"\b\d{9}\b", "…", text))


def _write_outreach(journal: Journal, out: Path, summary: Summary) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["household_id", "decision", "reason"])
        for hid, decision, reason in journal.results():
            writer.writerow([hid, decision, reason])
            summary.households += 1
            if decision == "rejected":
                summary.rejected += 1
                key = _reason_kind(reason)
                summary.rejected_reasons[key] = summary.rejected_reasons.get(key, 0) + 1
            else:
                summary.screened += 1
                summary.eligible += decision == "eligible"
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
