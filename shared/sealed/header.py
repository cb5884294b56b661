"""The header of a sealed file: who sends what to whom, as canonical JSON.

The header is the part of the file every later step is bound to: its SHA-256 is the HPKE
``info`` of the key block (RFC 9180 §5.1), the HKDF salt of the payload key, and it is signed
by the sender twice (alone with the key block before any chunk, and with the whole transcript
at the end). It is written as canonical JSON: keys sorted, no insignificant white space, ASCII
only (``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)``), so there is
exactly one encoding of a header and a reader refuses any other (a re-encoded header would not
match its signature anyway; refusing it early gives a clearer message).
"""

from __future__ import annotations

import base64
import enum
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.sealed.errors import MalformedFile

FORMAT: Final = "aio-sealed/1"
MAX_HEADER_BYTES: Final = 256 * 1024
"""A header holds a certificate chain of a few KiB; anything near this bound is hostile."""
DEFAULT_CHUNK_SIZE: Final = 1 << 20
MIN_CHUNK_SIZE: Final = 64
"""Small chunks exist for tests of chunk boundaries; production files use 1 MiB."""
MAX_CHUNK_SIZE: Final = 16 << 20
"""A reader holds one chunk in memory: this bounds what a hostile header can make it allocate."""
MAX_CERTIFICATES: Final = 4

_OIN = re.compile(r"^[0-9]{20}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9]+/[A-Za-z0-9.+-]{1,100}$")


class MessageKind(enum.StrEnum):
    """What a sealed file carries; a step accepts only the kinds it expects."""

    REQUEST = "request"
    """A batch, SVB → UWV: homomorphic chunks or compute-to-data runs (the content type says)."""
    RESPONSE = "response"
    """The answer to one request, UWV → SVB; bound to that request's id and file digest."""
    RULE_SUBMISSION = "rule_submission"
    """A signed rule bundle for the compute-to-data register, SVB → UWV."""
    RUN_STATEMENT = "run_statement"
    """Reserved: a reply kind; compute-to-data runs are answered as a ``RESPONSE`` whose
    records carry each run's decisions and signed run statement."""


REPLY_KINDS: Final = frozenset({MessageKind.RESPONSE, MessageKind.RUN_STATEMENT})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


Oin = Annotated[str, Field(pattern=_OIN.pattern)]
Hex64 = Annotated[str, Field(pattern=_HEX64.pattern)]
MessageId = Annotated[str, Field(pattern=_ID.pattern)]


class Sender(_Frozen):
    """The sender's OIN, its certificate chain (leaf first, base64 DER), and optionally the
    certificate of its own encryption key, for the reply (as S/MIME carries one)."""

    oin: Oin
    certificates: tuple[str, ...] = Field(min_length=1, max_length=MAX_CERTIFICATES)
    reply_certificate: str | None = None

    @field_validator("certificates")
    @classmethod
    def _base64(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, text in enumerate(value):
            try:
                base64.b64decode(text, validate=True)
            except ValueError:
                raise ValueError(f"certificate {i} is not base64") from None
        return value

    @field_validator("reply_certificate")
    @classmethod
    def _reply_base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise ValueError("not base64") from None
        return value

    def certificate_der(self) -> list[bytes]:
        return [base64.b64decode(c) for c in self.certificates]

    def reply_certificate_der(self) -> bytes | None:
        return None if self.reply_certificate is None else base64.b64decode(self.reply_certificate)


class Receiver(_Frozen):
    """The receiver's OIN and the id of the public key the file key is encrypted to."""

    oin: Oin
    key_id: Hex64
    """SHA-256 of the receiver key's SubjectPublicKeyInfo (DER), lower-case hex."""


class InReplyTo(_Frozen):
    """For replies: the request this answers, by id and by SHA-256 of the request file."""

    message_id: MessageId
    sha256: Hex64


class Suite(_Frozen):
    """The algorithms, by their registry numbers (RFC 9180 §7) and name."""

    kem_id: Literal[0x0010, 0x0020]
    """DHKEM(P-256, HKDF-SHA256) or DHKEM(X25519, HKDF-SHA256)."""
    kdf_id: Literal[0x0001]
    """HKDF-SHA256."""
    aead_id: Literal[0x0002]
    """AES-256-GCM, for the key block (HPKE) and for the payload chunks (STREAM)."""
    stream: Literal["STREAM-AES-256-GCM-HKDF-SHA256"] = "STREAM-AES-256-GCM-HKDF-SHA256"


class Header(_Frozen):
    """A parsed, valid header. Construct it with keywords; read it with :func:`parse_header`."""

    format: Literal["aio-sealed/1"] = FORMAT
    kind: MessageKind
    message_id: MessageId
    in_reply_to: InReplyTo | None = None
    sender: Sender
    receiver: Receiver
    suite: Suite
    content_type: Annotated[str, Field(pattern=_CONTENT_TYPE.pattern)]
    created: str
    """RFC 3339 UTC, seconds precision: ``2026-12-01T19:00:00Z``."""
    chunk_size: int = Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)

    @field_validator("created")
    @classmethod
    def _created(cls, value: str) -> str:
        try:
            parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise ValueError("created must be RFC 3339 UTC like 2026-12-01T19:00:00Z") from None
        if parsed.strftime("%Y-%m-%dT%H:%M:%SZ") != value:
            raise ValueError("created must be RFC 3339 UTC like 2026-12-01T19:00:00Z")
        return value

    @model_validator(mode="after")
    def _reply(self) -> Header:
        replies = self.kind in REPLY_KINDS
        if replies and self.in_reply_to is None:
            raise ValueError(f"a {self.kind.value} must name the request it answers (in_reply_to)")
        if not replies and self.in_reply_to is not None:
            raise ValueError(f"a {self.kind.value} answers nothing: in_reply_to must be absent")
        return self

    @property
    def created_at(self) -> datetime:
        return datetime.strptime(self.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def encode(self) -> bytes:
        """The canonical JSON of this header (the only encoding a reader accepts)."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))


def rfc3339(moment: datetime) -> str:
    """``moment`` (timezone-aware) as the header's ``created`` text, in UTC, whole seconds."""
    if moment.tzinfo is None:
        raise ValueError("the clock must give timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse_header(data: bytes, *, offset: int) -> Header:
    """A header from its bytes at ``offset`` in the file; :class:`MalformedFile` if not valid."""
    try:
        value = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedFile(f"byte {offset}: the header is not ASCII JSON") from None
    if not isinstance(value, dict):
        raise MalformedFile(f"byte {offset}: the header is not a JSON object")
    if value.get("format") != FORMAT:
        raise MalformedFile(
            f"byte {offset}: header format {value.get('format')!r} is not {FORMAT!r}"
        )
    try:
        header = Header.model_validate_json(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "header"
        raise MalformedFile(f"byte {offset}: header field {where}: {err['msg']}") from None
    except ValueError as exc:
        raise MalformedFile(f"byte {offset}: header: {exc}") from None
    if header.encode() != data:
        raise MalformedFile(
            f"byte {offset}: the header is not in canonical JSON form (sorted keys, no spaces)"
        )
    return header
