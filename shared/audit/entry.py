"""Run entries: one statement per screening run, the data of one leaf of the log.

A :class:`RunEntry` says who asked, under which approved rule, in which mode
and parameter set, over which batch and data snapshot, with which result, what
it cost in budget, and when. It holds no BSN, income or decision in clear:
personal data enters only as *salted* digests (:func:`salted_digest`),
``HMAC-SHA256(salt, domain || 0x00 || canonical bytes)`` with a per-batch
secret salt kept by UWV. A plain SHA-256 of a BSN list could be tested by
guessing (there are only 10^9 BSNs); the HMAC cannot without the salt. The
entry commits to the salt (:attr:`RunEntry.salt_commitment`) so UWV cannot
later present a different salt to an auditor who replays the run.

The leaf is the entry's canonical JSON (:meth:`RunEntry.canonical_bytes`):
keys sorted, no spaces, ASCII only, times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
:meth:`RunEntry.from_canonical_bytes` accepts only that exact form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from shared.audit.errors import EntryError
from shared.bsn import check_bsn
from shared.digests import sha256_hex
from shared.errors import BsnError

ENTRY_KIND: Final = "aio-run/v1"
"""Version tag of the entry format; a new format gets a new tag."""

MIN_SALT_BYTES: Final = 32
"""Per-batch salts are at least 256 bits so that salted digests cannot be brute-forced."""

MAX_STATEMENT_BYTES: Final = 64 * 1024
"""A run statement (compute-to-data) is a small signed document; larger ones are refused."""

Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 or HMAC-SHA256 digest as 64 lower-case hex digits."""

Label = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")
]
"""A short printable ASCII label (identities, ids, names): no control characters."""

_NINE_DIGITS: Final = re.compile(r"(?<!\d)\d{9}(?!\d)")


def _no_bsn(value: str, field: str) -> str:
    # Defence in depth: a label that contains a valid BSN is refused, so an
    # operator cannot put one in the log by accident (e.g. as a run id).
    for match in _NINE_DIGITS.finditer(value):
        try:
            check_bsn(match.group())
        except BsnError:
            continue
        raise EntryError(f"{field} contains what looks like a BSN at position {match.start()}")
    return value


class BatchSalt:
    """A per-batch secret salt for digests of personal data; kept by UWV, never logged.

    The bytes come from the caller (``BatchSalt(secrets.token_bytes(32))``):
    randomness is passed in. The repr never shows the secret.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SALT_BYTES:
            raise EntryError(f"a batch salt must be at least {MIN_SALT_BYTES} random bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return f"BatchSalt(commitment={self.commitment()[:16]}…)"

    def commitment(self) -> str:
        """A public commitment to the salt (SHA-256 with a domain tag), recorded in the entry."""
        return hashlib.sha256(b"aio-audit/salt-commitment\x00" + self._secret).hexdigest()

    def unsafe_secret(self) -> bytes:
        """The secret bytes, for UWV's own salt store. Whoever holds them can test guesses."""
        return self._secret

    def digest(self, domain: str, data: bytes) -> str:
        """``HMAC-SHA256(salt, domain || 0x00 || data)`` as hex."""
        return salted_digest(self, domain, data)


def salted_digest(salt: BatchSalt, domain: str, data: bytes) -> str:
    """Salted digest of personal data: ``HMAC-SHA256(salt, domain || 0x00 || data)``, hex.

    ``domain`` separates kinds of data (``"batch"``, ``"result"``), so a digest of
    one can never be passed off as the other.
    """
    if "\x00" in domain or not domain:
        raise EntryError("digest domain must be non-empty and contain no NUL")
    return hmac.new(
        salt.unsafe_secret(), domain.encode() + b"\x00" + data, hashlib.sha256
    ).hexdigest()


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def canonical_batch_bytes(households: Sequence[tuple[str, Sequence[str]]]) -> bytes:
    """Canonical bytes of a batch: ``[[household id, [member BSN, …]], …]`` in batch order.

    Every BSN is checked (elfproef); an invalid one raises :class:`shared.errors.BsnError`.
    """
    rows = [[str(hid), [check_bsn(str(b)) for b in members]] for hid, members in households]
    return _canonical_json(rows)


def canonical_result_bytes(decisions: Sequence[tuple[str, bool]]) -> bytes:
    """Canonical bytes of a result: ``[[household id, eligible], …]`` in batch order."""
    return _canonical_json([[str(hid), bool(eligible)] for hid, eligible in decisions])


def digest_batch(salt: BatchSalt, households: Sequence[tuple[str, Sequence[str]]]) -> str:
    """Salted digest of a batch of households (ids and member BSNs)."""
    return salted_digest(salt, "batch", canonical_batch_bytes(households))


def digest_result(salt: BatchSalt, decisions: Sequence[tuple[str, bool]]) -> str:
    """Salted digest of a run's output (one decision per household)."""
    return salted_digest(salt, "result", canonical_result_bytes(decisions))


class RunMode(StrEnum):
    """How the run was evaluated."""

    HE_MASKED = "he-masked"
    HE_STRICT = "he-strict"
    COMPUTE_TO_DATA = "compute-to-data"


KeyCheckOutcome = Literal["accepted", "cheat-detected", "abandoned"]
"""What a strict-mode key check (cut-and-choose over key sets) ended with."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Approval(_Frozen):
    """An approval of the rule digest: who approved, with which key, and the signature (base64)."""

    approver: Label
    key_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,64}$")]
    signature: Annotated[
        str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9+/=]+$")
    ]


class BudgetUse(_Frozen):
    """What the run cost in differencing budget."""

    bsns_charged: Annotated[int, Field(ge=0)]
    """Number of evaluations charged: members of evaluated households, each once per run."""
    refused: Annotated[int, Field(ge=0)] = 0
    """Number of households refused: a member's budget was spent, or already in the run."""


def _format_time(value: datetime) -> str:
    # Not strftime: its %Y does not zero-pad years before 1000 on every platform.
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


class RunEntry(_Frozen):
    """One screening run, as recorded in the audit log. Digests only, no personal data in clear."""

    kind: Literal["aio-run/v1"] = ENTRY_KIND
    run_id: Label
    requester: Label
    """Who asked: the requesting organisation and its key or client identity."""
    rule_digest: Digest
    approvals: tuple[Approval, ...] = ()
    mode: RunMode
    parameter_set: Label
    """Named HE parameter set or rule parameter set (e.g. ``ckks-n8192-masked``)."""
    period: Label | None = None
    household_count: Annotated[int, Field(ge=0)]
    salt_commitment: Digest
    batch_digest: Digest
    """Salted digest of the batch (:func:`digest_batch`)."""
    snapshot_digest: Digest | None = None
    """SHA-256 of the data snapshot the run read (compute-to-data mode)."""
    engine_digest: Digest | None = None
    result_digest: Digest
    """Salted digest of the output (:func:`digest_result`)."""
    budget: BudgetUse
    requested_at: datetime
    started_at: datetime
    finished_at: datetime
    statement_digest: Digest | None = None
    """SHA-256 of the signed run statement (compute-to-data mode)."""
    statement: str | None = None
    """The run statement itself, base64, if it is to be kept in the log."""
    resumes: Annotated[int, Field(ge=0)] | None = None
    """Index of the previous entry of the same run (a resumed batch), if there is one."""
    recovered: Literal[True] | None = None
    """Written at start-up from the durable charge record: the run was cut off by a crash."""
    replays_refused: Annotated[int, Field(ge=1)] | None = None
    """How many times an id of this run was re-sent with other content and refused."""
    key_check: KeyCheckOutcome | None = None
    """Set on the entry of a strict-mode key check (issue 14, cut-and-choose; no households,
    nothing charged): ``accepted``, ``cheat-detected`` (a revealed seed did not regenerate its
    upload, or the chosen set was malformed) or ``abandoned`` (a challenge left unopened when
    the caller proposed other keys). ``batch_digest`` covers the uploaded contexts' digests."""

    @field_validator("run_id", "requester", "parameter_set", "period")
    @classmethod
    def _labels_hold_no_bsn(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else _no_bsn(value, info.field_name)

    @field_validator("requested_at", "started_at", "finished_at", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> datetime:
        if isinstance(value, str):
            try:
                value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            except ValueError:
                raise ValueError("time must be YYYY-MM-DDTHH:MM:SS.ffffffZ") from None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("time must be a timezone-aware datetime")
        return value.astimezone(UTC)

    @field_serializer("requested_at", "started_at", "finished_at")
    def _dump_time(self, value: datetime) -> str:
        return _format_time(value)

    @model_validator(mode="after")
    def _check_consistency(self) -> RunEntry:
        if not self.requested_at <= self.started_at <= self.finished_at:
            raise ValueError("times must satisfy requested_at <= started_at <= finished_at")
        if self.statement is not None:
            try:
                raw = base64.b64decode(self.statement.encode("ascii"), validate=True)
            except (binascii.Error, ValueError, UnicodeEncodeError):
                raise ValueError("statement must be base64") from None
            if len(raw) > MAX_STATEMENT_BYTES:
                raise ValueError(f"statement is larger than {MAX_STATEMENT_BYTES} bytes")
            if self.statement_digest != sha256_hex(raw):
                raise ValueError("statement_digest must be the SHA-256 of the statement")
        return self

    @classmethod
    def create(cls, **fields: Any) -> RunEntry:
        """Build an entry from Python values; raise :class:`EntryError` naming each bad field."""
        try:
            return cls.model_validate(fields, strict=False)
        except ValidationError as exc:
            raise EntryError(_describe(exc)) from None

    def canonical_bytes(self) -> bytes:
        """The canonical JSON of this entry: the leaf data that is hashed into the log.

        The fields added after the first release (:data:`_LATER_FIELDS`) are left out while
        unset, so every entry written before them keeps its exact bytes.
        """
        absent = {f for f in _LATER_FIELDS if getattr(self, f) is None}
        return _canonical_json(self.model_dump(mode="json", exclude=absent))

    @classmethod
    def from_canonical_bytes(cls, data: bytes) -> RunEntry:
        """Parse a leaf; anything but an exactly canonical entry raises :class:`EntryError`."""
        try:
            obj = json.loads(data.decode("ascii"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise EntryError("entry is not ASCII JSON") from None
        if not isinstance(obj, dict):
            raise EntryError("entry is not a JSON object")
        try:
            entry = cls.model_validate(obj, strict=False)
        except ValidationError as exc:
            raise EntryError(_describe(exc)) from None
        if entry.canonical_bytes() != data:
            raise EntryError("entry is valid JSON but not in canonical form")
        return entry

    def statement_bytes(self) -> bytes | None:
        """The run statement's bytes, if recorded."""
        return None if self.statement is None else base64.b64decode(self.statement)


_LATER_FIELDS: Final = ("resumes", "recovered", "replays_refused", "key_check")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "entry"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
