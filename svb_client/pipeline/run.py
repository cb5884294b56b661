"""The screening batch: households file in, outreach file out, resumable at any point.

One pipeline for the three modes. Order of work: validate the whole file (out of core, beside
the journal) and write the batch plan to the journal a chunk at a time → send the pending
chunks through the transport (the mode encrypts or packs each just before it is sent) and
journal each chunk's decisions as its answer arrives → write the outreach file from the journal
(one fsynced writer) → one summary. Killing the process at any moment and running the same
command again continues with the chunks that have no recorded result; a chunk is never decided
twice.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from shared.client_channel import ChannelSecurity
from shared.crypto import Registry
from shared.digests import file_sha256
from shared.errors import Error
from shared.ids import new_id
from shared.models import Period
from shared.rules import check, parse_file
from shared.rules.shipped import shipped_rule_path
from shared.rules.validity import check_period
from svb_client.households import validate_households
from svb_client.journal import Journal, Pending
from svb_client.pipeline.enclave import EnclaveMethod
from svb_client.pipeline.he import DEFAULT_IN_FLIGHT, HeMethod
from svb_client.pipeline.method import BatchContext, Method
from svb_client.pipeline.outreach import write_outreach
from svb_client.pipeline.summary import Progress, Summary
from svb_client.schemes import SecretContext
from svb_client.wire import BatchDeferred, GrpcTransport, Transport

DEFAULT_RULE: Final = shipped_rule_path()  # package data: works from any directory
MODES: Final = ("masked", "strict", "enclave")
PLAINTEXT_REQUESTER: Final = "SVB svb-client"
"""The header's requester label where no certificate names SVB (plaintext, tests)."""


@dataclass(frozen=True, slots=True)
class ScreenJob:
    """One batch: what to screen, where the results go, and how to reach UWV."""

    households: Path
    period: Period
    out: Path
    journal: Path
    mode: str = "masked"
    secret: SecretContext | None = None
    """The HE secret key (masked and strict modes)."""
    registry: Registry | None = None
    """SVB's copy of the key registry, to verify run statements (compute-to-data mode)."""
    server: str = "127.0.0.1:50051"
    rule: Path = DEFAULT_RULE
    chunk_size: int | None = None
    """Households per chunk; default: every slot of the parameter set (HE), or one run of
    :data:`~svb_client.pipeline.enclave.DEFAULT_RUN_SIZE` households (compute-to-data)."""
    in_flight: int = DEFAULT_IN_FLIGHT
    """HE modes: chunks sent ahead of their answers (1: wait for each answer)."""
    fresh: bool = False
    progress: bool = True
    deadline_s: float | None = None
    connect_timeout_s: float = 30.0
    requester: str | None = None
    """Who asks, as written into the batch header. Over mutual TLS UWV takes the identity
    from SVB's certificate, and from a sealed file's signature, so by default the header leaves
    it empty there (a non-empty value must equal that identity or UWV refuses the call); over
    a plaintext channel or the in-memory transport the default is the label
    :data:`PLAINTEXT_REQUESTER`."""
    on_chunk_recorded: Callable[[int], None] | None = None
    security: ChannelSecurity = field(default_factory=ChannelSecurity)
    """How the gRPC channel to ``server`` is protected (default: mutual TLS, which needs a
    TLS directory; :meth:`ChannelSecurity.unsafe_plaintext` for a loopback test server)."""
    transport: Transport | None = None
    """How to reach UWV instead (a test's in-memory UWV, a file transport); the caller
    closes it. Default: a gRPC channel to ``server``, opened and closed here."""


def _requester(job: ScreenJob) -> str:
    if job.requester is not None:
        return job.requester
    if job.transport is None:  # the gRPC channel run_screen opens from job.security
        authenticated = not job.security.unsafe_insecure
    else:
        authenticated = job.transport.authenticates_sender
    return "" if authenticated else PLAINTEXT_REQUESTER


def method_for(job: ScreenJob) -> Method:
    """The mode's half of the pipeline, with its key or registry checked."""
    if job.mode not in MODES:
        raise Error(f"mode {job.mode!r} is not one of {', '.join(MODES)}")
    if job.mode == "enclave":
        if job.registry is None:
            raise Error("--mode enclave needs --registry (the key registry to verify statements)")
        return EnclaveMethod(job.registry, job.rule, job.out)
    if job.secret is None:
        raise Error(f"--mode {job.mode} needs a secret key")
    return HeMethod(job.secret, job.mode, job.rule, job.in_flight)


def run_screen(job: ScreenJob) -> Summary:
    """Run (or resume) one screening batch; returns its summary. Raises shared.errors.Error."""
    started = time.monotonic()
    method = method_for(job)
    chunk_size = job.chunk_size or method.default_chunk_size
    if not 1 <= chunk_size <= method.max_chunk_size:
        raise Error(f"--chunk-size must be 1..{method.max_chunk_size:,} in {job.mode} mode")
    summary = Summary(mode=job.mode)
    # Before the journal: a period without a published norm in force is refused, with
    # nothing created (svb-client screen checks this and the inputs even before the key).
    check_period(check(parse_file(job.rule)), job.period)
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
            "rule": method.rule_digest,
            "chunk_size": str(chunk_size),
            **method.identity(),
        }
        # The batch id is part of what is journalled (so a resumed run reuses it), not of
        # what must match.
        if not journal.matches_or_empty(identity):
            identity["batch_id"] = new_id("batch")
            _plan(job, method, journal, identity, chunk_size)
        summary.chunks, summary.resumed_chunks = journal.counts()
        ctx = BatchContext(
            batch_id=(journal.identity() or {}).get("batch_id", ""),
            total_chunks=summary.chunks,
            period=job.period,
            requester=_requester(job),
            deadline_s=job.deadline_s,
            summary=summary,
        )
        pending = Pending(journal)  # each chunk read from disk when it is sent or answered
        if len(pending):
            _exchange(job, method, journal, pending, ctx)
        if not summary.awaiting_response:
            write_outreach(job.out, journal.results(), summary.count)
            method.finish(journal, job.out, ctx)
    finally:
        journal.close()
    summary.seconds = time.monotonic() - started
    return summary


def _plan(
    job: ScreenJob, method: Method, journal: Journal, identity: dict[str, str], chunk_size: int
) -> None:
    """Validate the household file and journal the plan, a chunk at a time, in one
    transaction: memory stays bounded however large the file (the validation's working
    database spills to a private folder beside the journal). From here on each chunk is
    read back from the journal when it is sent or answered."""
    if job.progress:
        print(f"validating {job.households} …", file=sys.stderr, flush=True)
    with validate_households(job.households, workdir=job.journal.resolve().parent) as checked:
        progress = Progress(
            checked.candidates,
            enabled=job.progress,
            label=f"households checked and planned ({checked.rows:,} rows read)",
        )
        chunks = (
            method.plan_chunk(part, job.period, index)
            for index, part in enumerate(checked.parts(chunk_size, progress.advance))
        )
        journal.create(identity, chunks, checked.rejected())


def _exchange(
    job: ScreenJob,
    method: Method,
    journal: Journal,
    pending: Pending,
    ctx: BatchContext,
) -> None:
    summary = ctx.summary
    transport = job.transport or GrpcTransport(
        job.server, job.security, timeout=job.connect_timeout_s
    )
    sent, received = transport.stats.bytes_sent, transport.stats.bytes_received
    progress = Progress(pending.households, enabled=job.progress)
    try:
        for outcome in method.exchange(transport, pending, ctx):
            journal.record(
                outcome.chunk.index,
                outcome.decisions,
                outcome.slot_errors,
                receipt=outcome.receipt,
                receipt_digest=outcome.receipt_digest,
            )
            progress.advance(len(outcome.chunk.household_ids))
            if job.on_chunk_recorded is not None:
                job.on_chunk_recorded(outcome.chunk.index)
    except BatchDeferred:
        summary.awaiting_response = True
    finally:
        summary.bytes_sent += transport.stats.bytes_sent - sent
        summary.bytes_received += transport.stats.bytes_received - received
        if job.transport is None:
            transport.close()
