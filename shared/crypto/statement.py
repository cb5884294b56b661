"""The run statement: an in-toto Statement v1, signed by the runner in a DSSE envelope.

It binds exactly what ran::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "decisions", "digest": {"sha256": OUTPUT}},
                 {"name": "rule", "digest": {"sha256": RULE}}],
     "predicateType": "https://aio-screening.nl/attestations/compute-to-data-run/v1",
     "predicate": {rule_digest, engine_digest, snapshot_digest, batch_digest,
                   output_digest, salt_commitment, approvals, started_at, ...}}

Batch and output are personal data, so their digests are salted (as in the audit log):
``HMAC-SHA256(salt, domain || 0x00 || canonical bytes)`` with a 32-byte salt SVB chooses per
run; the statement carries ``SHA-256(salt)``. SVB, who knows the salt, recomputes both.

TEE seam: :attr:`RunPredicate.tee` is where a hardware enclave's attestation would go. A
real TEE (SGX/TDX quote, Nitro attestation document) puts :func:`statement_digest` of the
unsigned statement into its report-data field; a verifier then checks the quote against the
vendor's roots and that its report data equals the digest. Today ``tee.kind`` is ``"none"``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.crypto.approval import APPROVAL_TYPE, open_approval, policy_shortfall
from shared.crypto.dsse import Envelope, sign
from shared.crypto.errors import SignatureInvalid, StatementMismatch
from shared.crypto.keys import SigningKey
from shared.crypto.registry import KeyEntry, Registry, Role

STATEMENT_TYPE: Final = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://aio-screening.nl/attestations/compute-to-data-run/v1"

OUTCOME_NOT_ELIGIBLE: Final = 0
OUTCOME_ELIGIBLE: Final = 1
OUTCOME_REFUSED: Final = 2
"""Per household of the batch, in order, one byte: the canonical output."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Isolation(_Frozen):
    """What confinement was in force for the run (recorded, not assumed)."""

    network: Literal["namespace", "none"]
    """``namespace``: a fresh network namespace with no interface up; ``none``: not isolated."""
    filesystem: Literal["chroot", "none"]
    """``chroot``: the runner saw only its snapshot directory; ``none``: not confined."""
    uid: int
    cpu_seconds: int
    memory_bytes: int
    wall_seconds: float


class Tee(_Frozen):
    """The seam for a hardware attestation carrying :func:`statement_digest` in report data."""

    kind: Literal["none", "sgx", "tdx", "nitro"] = "none"
    report_b64: str = ""


class ApprovalRef(_Frozen):
    """An approval the run relied on: the signed envelope, as JSON text."""

    key_id: str
    role: Role
    envelope: str


class RunPredicate(_Frozen):
    run_id: str = Field(min_length=1, max_length=200)
    rule_digest: str
    engine_digest: str
    snapshot_digest: str
    batch_digest: str
    output_digest: str
    salt_commitment: str
    period: str
    household_count: int
    evaluated_count: int
    approvals: tuple[ApprovalRef, ...]
    isolation: Isolation
    started_at: datetime
    finished_at: datetime
    tee: Tee = Tee()


class Subject(_Frozen):
    name: str
    digest: dict[str, str]


class RunStatement(_Frozen):
    """The in-toto statement (``_type`` is an alias: pydantic fields cannot start with _)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(
        default=IN_TOTO_STATEMENT, alias="_type"
    )
    subject: tuple[Subject, ...]
    predicateType: Literal["https://aio-screening.nl/attestations/compute-to-data-run/v1"] = (
        PREDICATE_TYPE
    )
    predicate: RunPredicate

    @classmethod
    def of(cls, predicate: RunPredicate) -> RunStatement:
        return cls(
            subject=(
                Subject(name="decisions", digest={"sha256": predicate.output_digest}),
                Subject(name="rule", digest={"sha256": predicate.rule_digest}),
            ),
            predicate=predicate,
        )

    def payload(self) -> bytes:
        """The statement's bytes (what is signed, logged and put in a TEE's report data)."""
        return self.model_dump_json(by_alias=True).encode("utf-8")

    def sign(self, key: SigningKey) -> Envelope:
        return sign(STATEMENT_TYPE, self.payload(), key)


def statement_digest(payload: bytes) -> str:
    """SHA-256 of the statement bytes: the audit log's ``statement_digest``, the TEE report data."""
    return hashlib.sha256(payload).hexdigest()


def salted(salt: bytes, domain: str, data: bytes) -> str:
    """``HMAC-SHA256(salt, domain || 0x00 || data)`` as hex (the audit log's construction)."""
    return hmac.new(salt, domain.encode("ascii") + b"\x00" + data, hashlib.sha256).hexdigest()


def salt_commitment(salt: bytes) -> str:
    return hashlib.sha256(salt).hexdigest()


def batch_bytes(
    period: str,
    member_counts: npt.NDArray[np.int64],
    member_bsns: npt.NDArray[np.int64],
    is_couple: npt.NDArray[np.bool_],
    known_income_cents: npt.NDArray[np.int64],
    cost_sharers: npt.ArrayLike | None = None,
) -> bytes:
    """Canonical bytes of a run's batch (positional; household ids never leave SVB).

    The cost-sharers are a fifth column only when some household has any: a batch without
    them has the bytes (and so the digest) it had before the column existed, so earlier
    statements and replay packages still verify.
    """
    parts = [period.encode("ascii"), np.int64(len(member_counts)).tobytes()]
    columns = [member_counts, member_bsns, is_couple.astype(np.int64), known_income_cents]
    if cost_sharers is not None and np.asarray(cost_sharers).any():
        columns.append(np.asarray(cost_sharers))
    for arr in columns:
        parts.append(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return b"\x00".join(parts)


def batch_digest(
    salt: bytes,
    period: str,
    member_counts: npt.NDArray[np.int64],
    member_bsns: npt.NDArray[np.int64],
    is_couple: npt.NDArray[np.bool_],
    known_income_cents: npt.NDArray[np.int64],
    *,
    cost_sharers: npt.ArrayLike | None = None,
) -> str:
    """The salted digest of :func:`batch_bytes` (what a run statement binds)."""
    data = batch_bytes(
        period, member_counts, member_bsns, is_couple, known_income_cents, cost_sharers
    )
    return salted(salt, "enclave-batch", data)


def output_digest(salt: bytes, outcomes: npt.NDArray[np.uint8]) -> str:
    """Digest of the per-household outcome bytes (0 no, 1 yes, 2 refused), batch order."""
    return salted(salt, "enclave-output", np.ascontiguousarray(outcomes, np.uint8).tobytes())


def open_statement(envelope: Envelope, registry: Registry) -> tuple[RunStatement, KeyEntry]:
    """Verify the runner's signature and parse the statement."""
    runner = envelope.verify(registry, Role.RUNNER, STATEMENT_TYPE)
    try:
        return RunStatement.model_validate_json(envelope.payload), runner
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SignatureInvalid(
            f"the signed statement is malformed: {where}: {err['msg']}"
        ) from None


def verify_run(
    envelope_json: bytes,
    registry: Registry,
    *,
    rule_digest: str,
    batch: str,
    outcomes: npt.NDArray[np.uint8],
    salt: bytes,
    snapshot_digest: str | None = None,
) -> RunStatement:
    """Everything SVB checks before it uses a run's decisions.

    The runner's signature and role; the statement's rule, batch and output digests against
    what SVB asked and received; the salt commitment; every approval's signature, role and
    digest; and that the approvals met the policy at the start of the run.
    """
    if not envelope_json:
        raise SignatureInvalid("the result carries no run statement: refusing unsigned decisions")
    stmt, _ = open_statement(Envelope.from_json(envelope_json), registry)
    p = stmt.predicate
    checks = [
        ("rule digest", p.rule_digest, rule_digest),
        ("batch digest", p.batch_digest, batch),
        ("output digest", p.output_digest, output_digest(salt, outcomes)),
        ("salt commitment", p.salt_commitment, salt_commitment(salt)),
        ("household count", str(p.household_count), str(len(outcomes))),
    ]
    if snapshot_digest is not None:
        checks.append(("snapshot digest", p.snapshot_digest, snapshot_digest))
    for what, got, want in checks:
        if got != want:
            raise StatementMismatch(f"the run statement's {what} is {got}, expected {want}")
    approvals = []
    for ref in p.approvals:
        approval, signer = open_approval(Envelope.from_json(ref.envelope.encode()), registry)
        if approval.rule_digest != p.rule_digest:
            raise StatementMismatch("an approval in the statement is for another rule")
        approvals.append((approval, signer))
    missing = policy_shortfall(approvals, registry, p.started_at)
    if missing:
        raise StatementMismatch(
            "the run statement lacks approvals the policy requires: " + ", ".join(missing)
        )
    return stmt


__all__ = [
    "APPROVAL_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "ApprovalRef",
    "Isolation",
    "RunPredicate",
    "RunStatement",
    "Tee",
    "batch_bytes",
    "batch_digest",
    "open_statement",
    "output_digest",
    "salt_commitment",
    "salted",
    "statement_digest",
    "verify_run",
]
