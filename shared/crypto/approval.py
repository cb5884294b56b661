"""Rule bundles and approvals: the two signed documents before a run.

* A :class:`RuleBundle` is what SVB signs (role ``author``): the rule document as written
  (its test cases and named parameters with their legal references are part of it) and the
  digest SVB computed of its canonical form (:func:`shared.rules.digest`). UWV recomputes
  the digest from the text and refuses a bundle whose digest differs.
* An :class:`Approval` is what UWV's operator (role ``approver``) or an auditor (role
  ``auditor``) signs: the rule digest and the window in which it may run.

Both travel as DSSE envelopes (:mod:`shared.crypto.dsse`) with their own payload types.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.crypto.dsse import Envelope, sign
from shared.crypto.errors import SignatureInvalid
from shared.crypto.keys import SigningKey
from shared.crypto.registry import KeyEntry, Registry, Role

BUNDLE_TYPE: Final = "application/vnd.aio.rule-bundle.v1+json"
APPROVAL_TYPE: Final = "application/vnd.aio.rule-approval.v1+json"
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _digest(value: str) -> str:
    if not _HEX64.match(value):
        raise ValueError("must be 64 lower-case hex digits (a SHA-256)")
    return value


class RuleBundle(_Frozen):
    """The rule SVB submits: its YAML text and the digest of its canonical form."""

    format: str = "aio-rule-bundle/v1"
    rule_digest: str
    rule_yaml: str = Field(min_length=1, max_length=1_000_000)

    _check_digest = field_validator("rule_digest")(_digest)

    def payload(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    def sign(self, key: SigningKey) -> Envelope:
        return sign(BUNDLE_TYPE, self.payload(), key)


class Approval(_Frozen):
    """An approval of ``rule_digest`` to run from ``not_before`` until ``not_after`` (UTC)."""

    format: str = "aio-rule-approval/v1"
    rule_digest: str
    role: Role
    not_before: datetime
    not_after: datetime

    _check_digest = field_validator("rule_digest")(_digest)

    @field_validator("not_before", "not_after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (UTC)")
        return value.astimezone(UTC)

    @classmethod
    def for_window(cls, rule_digest: str, role: Role, now: datetime, days: float) -> Approval:
        return cls(
            rule_digest=rule_digest,
            role=role,
            not_before=now,
            not_after=now + timedelta(days=days),
        )

    def in_force(self, now: datetime) -> bool:
        return self.not_before <= now <= self.not_after

    def payload(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    def sign(self, key: SigningKey) -> Envelope:
        return sign(APPROVAL_TYPE, self.payload(), key)


def open_bundle(envelope: Envelope, registry: Registry) -> tuple[RuleBundle, KeyEntry]:
    """Verify an author's signature and parse the bundle (digest not yet recomputed)."""
    author = envelope.verify(registry, Role.AUTHOR, BUNDLE_TYPE)
    try:
        return RuleBundle.model_validate_json(envelope.payload), author
    except ValidationError as exc:
        raise SignatureInvalid(f"the signed bundle is malformed: {_first(exc)}") from None


def open_approval(envelope: Envelope, registry: Registry) -> tuple[Approval, KeyEntry]:
    """Verify an approval's signature; the signer must hold the role the approval claims."""
    try:
        approval = Approval.model_validate_json(envelope.payload)
    except ValidationError as exc:
        raise SignatureInvalid(f"the signed approval is malformed: {_first(exc)}") from None
    signer = envelope.verify(registry, approval.role, APPROVAL_TYPE)
    if approval.not_after <= approval.not_before:
        raise SignatureInvalid("the approval's window ends before it starts")
    return approval, signer


def policy_shortfall(
    approvals: list[tuple[Approval, KeyEntry]], registry: Registry, now: datetime
) -> list[str]:
    """The requirements of the registry's policy that no distinct in-force approval meets.

    Each approving key counts once (one key cannot satisfy both "UWV approver" and
    "auditor"); a matching is found greedily over requirements in order, which is exact for
    the small policies this is used with (a requirement list of a few entries).
    """
    policy = registry.approval_policy
    live = [
        (a, e)
        for a, e in approvals
        if a.in_force(now)
        and a.not_after - a.not_before <= timedelta(days=policy.max_validity_days)
    ]
    used: set[str] = set()
    missing: list[str] = []
    for req in policy.required:
        hit = next(
            (e for a, e in live if e.key_id not in used and a.role is req.role and req.met_by(e)),
            None,
        )
        if hit is None:
            missing.append(str(req))
        else:
            used.add(hit.key_id)
    return missing


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]) + ": " + str(err["msg"])


def dumps(data: object) -> bytes:
    """Compact, sorted JSON (for digests)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
