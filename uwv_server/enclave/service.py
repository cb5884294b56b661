"""The compute-to-data run service: the domain layer behind the ``ComputeToData`` gRPC service.

A run: check the batch → the rule must be runnable now (approved, unexpired, unrevoked) →
charge the differencing budget (households whose members have spent it are refused by
position, the rest go on) → one isolated runner process evaluates the rule and signs a run
statement → the statement is checked here too, recorded, and handed to the audit hook →
decisions and statement go back to SVB.

Time comes from the injected clock; keys from the caller; nothing reads globals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from shared.chunk import HouseholdChunk, HouseholdError
from shared.crypto import Envelope, Registry, Role, SigningKey, open_statement
from shared.crypto.statement import output_digest, statement_digest
from shared.errors import Error
from shared.models import Period
from uwv_server.budget import ENCLAVE_PREFIX, Refusal, pack_blobs, unpack_blobs
from uwv_server.enclave.approvals import RuleInfo, RuleRegister
from uwv_server.enclave.engine import engine_digest
from uwv_server.enclave.errors import BatchRefused, NotRunnable, RunFailed
from uwv_server.enclave.runner import launch
from uwv_server.enclave.sandbox import Limits
from uwv_server.enclave.snapshot import cached_snapshot_digest
from uwv_server.service import BudgetPolicy, NoBudget
from uwv_server.store import Snapshot

IntArray = npt.NDArray[np.int64]
log = logging.getLogger("uwv_server.enclave")

MAX_RUN_HOUSEHOLDS: Final = 2_000_000
UNNAMED_REQUESTER: Final = "unnamed client"
"""Who asks on a server without authentication (``--unsafe-insecure`` on loopback)."""
_RUN_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


@dataclass(frozen=True)
class RunRequest:
    """A parsed run request (positional batch; household ids stay at SVB)."""

    run_id: str
    rule_digest: str
    period: Period
    salt: bytes
    member_counts: IntArray
    member_bsns: IntArray
    is_couple: npt.NDArray[np.bool_]
    known_income_cents: IntArray
    cost_sharers: IntArray
    """Per household: the other adults 27+ sharing the home besides the partner (art. 22a)."""
    requester: str = UNNAMED_REQUESTER
    """Who asks, for the audit log: the authenticated caller (from its certificate), set by
    the transport, never by the message; not part of the run's content."""

    @classmethod
    def parse(
        cls,
        *,
        run_id: str,
        rule_digest: str,
        period: str,
        salt: bytes,
        member_counts: npt.ArrayLike,
        member_bsns: npt.ArrayLike,
        is_couple: npt.ArrayLike,
        known_income_cents: npt.ArrayLike,
        cost_sharers: npt.ArrayLike | None = None,
        requester: str = UNNAMED_REQUESTER,
    ) -> RunRequest:
        """Check every field; :class:`BatchRefused` names the first problem and its position."""
        if not _RUN_ID.match(run_id):
            raise BatchRefused("run_id must be 1-100 characters of A-Z a-z 0-9 . _ : -")
        if not re.fullmatch(r"[0-9a-f]{64}", rule_digest):
            raise BatchRefused("rule_digest must be 64 lower-case hex digits")
        if len(salt) != 32:
            raise BatchRefused(f"salt must be 32 random bytes, got {len(salt)}")
        try:
            parsed_period = Period.parse(period)
        except Error as exc:
            raise BatchRefused(exc.diagnostics()) from None
        counts = np.asarray(member_counts, dtype=np.int64)
        bsns = np.asarray(member_bsns, dtype=np.int64)
        couple = np.asarray(is_couple, dtype=np.bool_)
        known = np.asarray(known_income_cents, dtype=np.int64)
        n = len(counts)
        sharers = (
            np.zeros(n, dtype=np.int64)
            if cost_sharers is None
            else np.asarray(cost_sharers, dtype=np.int64)
        )
        if n == 0 or n > MAX_RUN_HOUSEHOLDS:
            raise BatchRefused(f"a run has 1..{MAX_RUN_HOUSEHOLDS} households, got {n}")
        try:  # the one definition of a valid chunk of households (shared.chunk)
            HouseholdChunk(
                counts, bsns, is_couple=couple, known_income_cents=known, cost_sharers=sharers
            )
        except HouseholdError as exc:
            raise BatchRefused(str(exc)) from None
        return cls(
            run_id,
            rule_digest,
            parsed_period,
            salt,
            counts,
            bsns,
            couple,
            known,
            sharers,
            requester,
        )

    def content_digest(self) -> str:
        """What identifies the run next to its id: rule, period, salt and the whole batch
        (the cost-sharers only when some household has any: a run without them keeps the
        digest it had before the column existed, so its retry still matches)."""
        h = hashlib.sha256(b"aio-enclave-run/v1\x00")
        h.update(self.rule_digest.encode() + b"\x00" + str(self.period).encode() + b"\x00")
        h.update(self.salt)
        for array, dtype in (
            (self.member_counts, ">i8"),
            (self.member_bsns, ">i8"),
            (self.is_couple, "u1"),
            (self.known_income_cents, ">i8"),
            *([(self.cost_sharers, ">i8")] if self.cost_sharers.any() else []),
        ):
            data = np.asarray(array).astype(dtype).tobytes()
            h.update(len(data).to_bytes(8, "big") + data)
        return h.hexdigest()


@dataclass(frozen=True)
class RunOutcome:
    """Per household: 0 not eligible, 1 eligible, 2 refused; reasons by position; statement."""

    outcomes: npt.NDArray[np.uint8]
    refused: dict[int, Refusal]
    statement: bytes
    statement_digest: str
    replayed: bool = False

    def pack(self) -> bytes:
        refused = {str(k): [v.code, v.reason] for k, v in self.refused.items()}
        return pack_blobs(
            [
                self.outcomes.astype(np.uint8).tobytes(),
                json.dumps(refused).encode(),
                self.statement,
                self.statement_digest.encode(),
            ]
        )

    @classmethod
    def unpack(cls, data: bytes) -> RunOutcome:
        outcomes, refused, statement, digest = unpack_blobs(data)
        return cls(
            np.frombuffer(outcomes, dtype=np.uint8).copy(),
            {int(k): Refusal(str(v[0]), str(v[1])) for k, v in json.loads(refused).items()},
            statement,
            digest.decode(),
            replayed=True,
        )


@dataclass
class EnclaveConfig:
    """Where the enclave keeps its state, and the runner's limits."""

    state_dir: Path
    limits: Limits = field(default_factory=Limits)
    require_isolation: bool = False
    """Refuse to return results of a run whose network or filesystem was not confined."""


StatementHook = Callable[[str, bytes, str, str], None]
"""Called with (run_id, statement envelope bytes, statement digest, requester) after each run:
the audit log's seam (:meth:`uwv_server.audit_trail.AuditTrail.record_statement`)."""
UnloggedHook = Callable[[str], object]
"""Called with the ledger id (``enclave:<run_id>``) of a run refused after it was recorded
(an id reused with other content), so the refusal reaches the audit log now."""


class EnclaveService:
    """UWV's compute-to-data service."""

    def __init__(
        self,
        snapshot: Snapshot,
        register: RuleRegister,
        registry: Registry,
        runner_key: SigningKey,
        config: EnclaveConfig,
        *,
        budget: BudgetPolicy | None = None,
        clock: Callable[[], datetime],
        on_statement: StatementHook | None = None,
        on_unlogged: UnloggedHook | None = None,
        serve_runs: bool = True,
    ) -> None:
        registry.require(runner_key.key_id, Role.RUNNER)
        self.snapshot = snapshot
        self.register = register
        self.registry = registry
        self.runner_key = runner_key
        self.config = config
        self.budget: BudgetPolicy = budget if budget is not None else NoBudget()
        self.clock = clock
        self.on_statement = on_statement
        self.on_unlogged = on_unlogged
        self.serve_runs = serve_runs
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self.engine_digest = engine_digest()
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_digest = cached_snapshot_digest(
            snapshot.directory, config.state_dir / "snapshot-digests.json"
        )

    def submit(self, envelope_json: bytes) -> RuleInfo:
        return self.register.submit(envelope_json, self.clock())

    def info(self, rule_digest: str) -> RuleInfo:
        return self.register.info(rule_digest, self.clock())

    def list(self) -> list[RuleInfo]:
        return self.register.list(self.clock())

    def run(self, request: RunRequest) -> RunOutcome:
        """Run an approved rule over the batch (see the module docstring).

        A run id is bound to its content: the same id and content gets the stored outcome
        and statement back, byte for byte, with no new charge; the same id with other content
        is refused and logged.
        """
        if not self.serve_runs:
            raise NotRunnable("this server does not serve the compute-to-data mode (--modes)")
        now = self.clock()
        key = ENCLAVE_PREFIX + request.run_id
        digest = request.content_digest()
        with self._lock:
            if key in self._running:
                raise BatchRefused(f"run {request.run_id} is already running; wait for it")
            self._running.add(key)
        try:
            return self._run(request, key, digest, now)
        finally:
            with self._lock:
                self._running.discard(key)

    def _run(self, request: RunRequest, key: str, digest: str, now: datetime) -> RunOutcome:
        rule = self.register.runnable(request.rule_digest, now)
        meta = {
            "requester": request.requester,
            "rule_digest": rule.digest,
            "mode": "enclave",
            "parameter_set": "compute-to-data",
            "period": str(request.period),
        }
        try:
            self.budget.open_batch(key, digest, meta, now)
        except Error:
            self.register.event(now, "run-refused", rule.digest, f"run id {request.run_id} reused")
            if self.on_unlogged is not None:
                self.on_unlogged(key)
            raise
        stored = self.budget.lookup(key, 0, digest, now)
        if stored is not None and stored.answer is not None:
            log.info("run %s: same id and content as before, stored outcome returned", key)
            return RunOutcome.unpack(stored.answer)
        if stored is None:
            refused = self.budget.charge(
                batch_id=key,
                chunk_index=0,
                digest=digest,
                mode="enclave",
                period=request.period,
                member_bsns=request.member_bsns,
                member_counts=request.member_counts,
                audit_digest=bytes.fromhex(digest),
                at=now,
            )
        else:  # charged before a crash that lost the outcome: run now, no new charge
            refused = stored.refused
        if refused:
            self.register.event(
                now,
                "budget-refused",
                rule.digest,
                f"run {request.run_id}: {len(refused)} households",
            )
        mask = np.zeros(len(request.member_counts), dtype=np.uint8)
        mask[list(refused)] = 1
        header = {
            "run_id": request.run_id,
            "started_at": now.isoformat(),
            "rule_digest": rule.digest,
            "rule_yaml": rule.rule_yaml,
            "period": str(request.period),
            "salt": request.salt.hex(),
            "approvals": [a.model_dump(mode="json") for a in rule.approvals],
            "snapshot_dir": str(self.snapshot.directory),
            "snapshot_digest": self.snapshot_digest,
            "runner_key": base64.b64encode(self.runner_key.unsafe_raw()).decode("ascii"),
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "member_counts": request.member_counts,
            "member_bsns": request.member_bsns,
            "is_couple": request.is_couple.astype(np.uint8),
            "known_income_cents": request.known_income_cents,
            "cost_sharers": request.cost_sharers,
            "refused": mask,
        }
        try:
            out = launch(header, arrays, self.config.limits, cwd=self.snapshot.directory)
            self._check(request, rule.digest, out.outcomes, out.statement)
        except RunFailed as exc:
            self.budget.refund(key, 0)  # nothing left the building
            self.register.record_run(request.run_id, rule.digest, self.clock(), "failed", str(exc))
            self.register.event(self.clock(), "run-failed", rule.digest, str(exc))
            log.warning("run %s failed: %s", request.run_id, exc)
            raise
        digest_ = statement_digest(Envelope.from_json(out.statement).payload)
        outcome = RunOutcome(out.outcomes, refused, out.statement, digest_)
        self.budget.store_answer(key, 0, digest, outcome.pack())  # before it is sent
        self.register.record_run(
            request.run_id, rule.digest, self.clock(), "done", digest_, out.statement
        )
        if self.on_statement is not None:
            self.on_statement(request.run_id, out.statement, digest_, request.requester)
        log.info(
            "run %s: rule %s…, %d households, %d refused, statement %s…",
            request.run_id,
            rule.digest[:12],
            len(out.outcomes),
            len(refused),
            digest_[:12],
        )
        return outcome

    def _check(
        self, request: RunRequest, rule_digest: str, outcomes: npt.NDArray[np.uint8], stmt: bytes
    ) -> None:
        """UWV checks its own runner's statement before anything leaves the building."""
        try:
            statement, _ = open_statement(Envelope.from_json(stmt), self.registry)
        except Error as exc:
            raise RunFailed(f"the runner's statement does not verify: {exc}") from None
        p = statement.predicate
        if (
            p.rule_digest != rule_digest
            or p.snapshot_digest != self.snapshot_digest
            or p.engine_digest != self.engine_digest
            or p.output_digest != output_digest(request.salt, outcomes)
            or len(outcomes) != len(request.member_counts)
        ):
            raise RunFailed("the runner's statement does not match its output")
        if self.config.require_isolation and (
            p.isolation.network != "namespace" or p.isolation.filesystem != "chroot"
        ):
            raise RunFailed(
                "the runner was not isolated (network: "
                f"{p.isolation.network}, filesystem: {p.isolation.filesystem}) and this server "
                "requires isolation"
            )
