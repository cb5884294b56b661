"""Checkpoints (signed tree heads) in the C2SP format (https://c2sp.org/tlog-checkpoint).

A checkpoint body is::

    <origin>            one line naming the log, e.g. "uwv.nl/aio-audit/v1"
    <tree size>         ASCII decimal, no leading zeros
    <base64 root hash>  standard base64 of the 32-byte RFC 6962 root
    [extension lines]   we write one: "time <POSIX seconds>", when UWV signed it

and it travels as a signed note (:mod:`shared.audit.note`): the log's Ed25519
signature first, then any witnesses' cosignatures.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.audit.errors import NoteError
from shared.audit.merkle import HASH_SIZE, MAX_TREE_SIZE
from shared.audit.note import Note, NoteSigner, NoteVerifier, parse_note, verified_signers

_TIME_PREFIX = "time "


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size, root hash and, optionally, the signing time (POSIX seconds)."""

    origin: str
    size: int
    root_hash: bytes
    time: int | None = None
    extensions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.origin or not self.origin.isprintable() or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty printable line")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash has {len(self.root_hash)} bytes, expected 32")
        if self.time is not None and not 0 <= self.time < 2**63:
            raise NoteError(f"checkpoint time {self.time} is out of range")
        for ext in self.extensions:
            if not ext or "\n" in ext or not ext.isprintable() or ext.startswith(_TIME_PREFIX):
                raise NoteError(f"checkpoint extension line {ext!r} is not allowed")

    def body(self) -> str:
        """The note text of this checkpoint (ends with a newline)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        if self.time is not None:
            lines.append(f"{_TIME_PREFIX}{self.time}")
        lines.extend(self.extensions)
        return "\n".join(lines) + "\n"

    @property
    def signed_at(self) -> datetime | None:
        """The signing time as an aware UTC datetime, if the checkpoint carries one."""
        return None if self.time is None else datetime.fromtimestamp(self.time, UTC)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body; raise :class:`NoteError` naming the bad line."""
        if not body.endswith("\n"):
            raise NoteError("checkpoint body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs at least origin, size and root hash lines")
        origin, size_text, root_text, *rest = lines
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text != "0" and size_text.startswith("0"))
        ):
            raise NoteError(f"checkpoint line 2: size {size_text!r} is not a decimal number")
        if len(size_text) > 19:
            raise NoteError("checkpoint line 2: size is out of range")
        try:
            root = base64.b64decode(root_text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise NoteError("checkpoint line 3: root hash is not base64") from None
        if base64.b64encode(root).decode() != root_text:
            raise NoteError("checkpoint line 3: root hash is not canonical base64")
        time: int | None = None
        extensions: list[str] = []
        for n, line in enumerate(rest, start=4):
            if line.startswith(_TIME_PREFIX) and time is None and not extensions:
                value = line[len(_TIME_PREFIX) :]
                if not value.isascii() or not value.isdigit() or len(value) > 19:
                    raise NoteError(f"checkpoint line {n}: time {value!r} is not POSIX seconds")
                time = int(value)
            else:
                extensions.append(line)
        return cls(origin, int(size_text), root, time, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a signed note text, signed by the log's key."""
    return Note(checkpoint.body(), (signer.sign(checkpoint.body()),)).format()


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A checkpoint whose log signature verified, with the witnesses that cosigned it."""

    checkpoint: Checkpoint
    note: Note
    cosigners: tuple[str, ...]

    def text(self) -> str:
        """The signed note text, with every signature it came with."""
        return self.note.format()


def open_checkpoint(
    data: object,
    log_key: NoteVerifier,
    witness_keys: Sequence[NoteVerifier] = (),
    *,
    origin: str | None = None,
) -> VerifiedCheckpoint:
    """Parse a signed checkpoint and check the log's signature (and which witnesses cosigned).

    Raises :class:`NoteError` if the note is malformed, the log's signature is
    missing or bad, or the origin differs from the expected one.
    """
    note = parse_note(data)
    try:
        signed = verified_signers(note, [log_key])
    except NoteError:
        raise NoteError(
            f"the signature of {log_key.name} on this checkpoint is not valid"
        ) from None
    if not signed:
        if any(log_key.matches(s) for s in note.signatures):
            raise NoteError(f"the signature of {log_key.name} on this checkpoint is not valid")
        raise NoteError(f"this checkpoint carries no signature of {log_key.name}")
    checkpoint = Checkpoint.parse(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    cosigners = tuple(w.name for w in verified_signers(note, witness_keys))
    return VerifiedCheckpoint(checkpoint, note, cosigners)
