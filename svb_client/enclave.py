"""SVB's side of the compute-to-data mode: sign and submit a rule, run it, verify the receipt.

Flow of :func:`run_enclave_screen`: read and validate the households file (the same reader
as the homomorphic mode) → compute the rule's digest locally → ask UWV whether that digest
is approved → send the batch in runs of at most ``run_size`` households, each with a fresh
random salt → for each run, verify the runner's signed statement against SVB's own copy of
the key registry (runner signature and role, rule digest, batch digest, output digest, salt
commitment, approvals meeting the policy) *before* any decision is used → write the outreach
file (``household_id, decision, reason``) and keep the statements next to it.

A result without a statement, with a bad signature, or whose statement does not match what
was asked and received is refused (:class:`ResultRefused`): nothing of that run is written.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.crypto import Registry, RuleBundle, SigningKey, batch_digest, verify_run
from shared.crypto.errors import SigningError
from shared.errors import Error
from shared.ids import new_id
from shared.models import Period
from shared.rules import digest, parse_file
from svb_client.households import HouseholdBatch, read_households
from svb_client.wire import EnclaveTransport, GrpcTransport, RunBatch, RunReply, ServerError

DEFAULT_RUN_SIZE: Final = 1_000_000
"""Households per run: ~28 MB per request, inside the 64 MiB message limit; one run means one
runner start and one scan of the snapshot."""


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


@dataclass(slots=True)
class EnclaveSummary:
    households: int = 0
    screened: int = 0
    eligible: int = 0
    rejected: int = 0
    refused_by_budget: int = 0
    runs: int = 0
    seconds: float = 0.0
    statement_digests: list[str] = field(default_factory=list)

    def text(self) -> str:
        rate = self.screened / self.seconds if self.seconds > 0 else 0.0
        return "\n".join(
            [
                f"households in file:     {self.households:,}",
                f"screened:               {self.screened:,} in {self.runs} run(s), every run "
                "statement verified",
                f"potentially eligible:   {self.eligible:,}",
                f"rejected:               {self.rejected:,} "
                f"({self.refused_by_budget:,} by UWV's differencing budget)",
                f"time:                   {self.seconds:.1f} s ({rate:,.0f} households/s)",
            ]
        )


def run_request(
    batch: HouseholdBatch,
    start: int,
    stop: int,
    *,
    run_id: str,
    rule_digest: str,
    period: Period,
    salt: bytes,
) -> tuple[RunBatch, str]:
    """The run for households ``start:stop`` of ``batch`` and its expected batch digest."""
    offsets = np.concatenate([[0], np.cumsum(batch.member_counts)]).astype(np.int64)
    counts = np.asarray(batch.member_counts[start:stop], dtype=np.int64)
    bsns = np.asarray(batch.member_bsns[offsets[start] : offsets[stop]], dtype=np.int64)
    couple = np.array([c == "couple" for c in batch.categories[start:stop]], dtype=np.bool_)
    known = np.asarray(batch.known_income_cents[start:stop], dtype=np.int64)
    request = RunBatch(
        run_id=run_id,
        rule_digest=rule_digest,
        period=period,
        salt=salt,
        member_counts=counts,
        member_bsns=bsns,
        is_couple=couple,
        known_income_cents=known,
    )
    return request, batch_digest(salt, str(period), counts, bsns, couple, known)


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


def run_enclave_screen(
    *,
    server: str,
    households: Path,
    period: Period,
    out: Path,
    rule: Path,
    registry: Registry,
    run_size: int = DEFAULT_RUN_SIZE,
    deadline_s: float | None = None,
    connect_timeout_s: float = 30.0,
    batch_id: str | None = None,
    transport: EnclaveTransport | None = None,
) -> EnclaveSummary:
    """Screen a households file in the compute-to-data mode (see the module docstring).

    Writes ``out`` (``household_id, decision, reason``) and ``out`` + ``.statements.jsonl``
    (one verified run statement envelope per line, for the audit trail).
    """
    started = time.monotonic()
    batch = read_households(households)
    rule_digest = digest(parse_file(rule))
    summary = EnclaveSummary(households=len(batch) + len(batch.rejected))
    batch_id = batch_id or new_id("run")
    conn = transport or GrpcTransport(server, connect_timeout_s)
    try:
        status = conn.rule_status(rule_digest)
        if status.state != "approved":
            raise EnclaveServerError(
                f"rule {rule_digest[:16]}… is {status.state} at UWV ({status.reason}); "
                "it cannot run until it is approved"
            )
        outcomes = np.zeros(len(batch), dtype=np.uint8)
        reasons: dict[int, str] = {}
        statements: list[bytes] = []
        for i, start in enumerate(range(0, len(batch), run_size)):
            stop = min(start + run_size, len(batch))
            salt = os.urandom(32)
            request, expected = run_request(
                batch,
                start,
                stop,
                run_id=f"{batch_id}-{i}",
                rule_digest=rule_digest,
                period=period,
                salt=salt,
            )
            response = conn.run(request, deadline_s)
            outcomes[start:stop] = verified_outcomes(
                response,
                registry,
                rule_digest=rule_digest,
                expected_batch=expected,
                salt=salt,
                households=stop - start,
            )
            for refusal in response.refusals:
                reasons[start + refusal.position] = f"{refusal.code}: {refusal.reason}"
            _write_replay_package(out, request, outcomes[start:stop])
            statements.append(response.statement)
            summary.statement_digests.append(response.statement_digest)
            summary.runs += 1
    finally:
        if transport is None:
            conn.close()
    _write(out, batch, outcomes, reasons)
    out.with_name(out.name + ".statements.jsonl").write_bytes(
        b"".join(s + b"\n" for s in statements)
    )
    summary.screened = int((outcomes < 2).sum())
    summary.eligible = int((outcomes == 1).sum())
    summary.refused_by_budget = int((outcomes == 2).sum())
    summary.rejected = summary.refused_by_budget + len(batch.rejected)
    summary.seconds = time.monotonic() - started
    return summary


def replay_dir(out: Path) -> Path:
    """Where SVB keeps the replay packages of an outreach file's runs."""
    return out.with_name(out.name + ".replay")


def _write_replay_package(out: Path, request: RunBatch, outcomes: npt.NDArray[np.uint8]) -> None:
    """Keep what an auditor needs to replay this run: the batch exactly as sent, the salt and
    the outcomes received. It holds BSNs (SVB's own data), so it stays with SVB (mode 0600)
    and is handed only to an auditor with replay rights."""
    folder = replay_dir(out)
    folder.mkdir(exist_ok=True)
    path = folder / f"{request.run_id}.npz"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        np.savez(
            f,
            run_id=np.array(request.run_id),
            period=np.array(str(request.period)),
            salt=np.frombuffer(request.salt, dtype=np.uint8),
            member_counts=request.member_counts.astype("<i8"),
            member_bsns=request.member_bsns.astype("<i8"),
            is_couple=request.is_couple.astype(np.uint8),
            known_income_cents=request.known_income_cents.astype("<i8"),
            outcomes=outcomes,
        )


def _write(
    out: Path,
    batch: HouseholdBatch,
    outcomes: npt.NDArray[np.uint8],
    reasons: dict[int, str],
) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["household_id", "decision", "reason"])
        labels = ("not_eligible", "eligible", "rejected")
        for pos, (hid, o) in enumerate(zip(batch.household_ids, outcomes.tolist(), strict=True)):
            writer.writerow([hid, labels[o], reasons.get(pos, "no decision" if o == 2 else "")])
        for hid, reason in batch.rejected:
            writer.writerow([hid, "rejected", reason])
    os.replace(tmp, out)
