"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys and cosignatures.

A note is UTF-8 text ending in a newline, then a blank line, then one line per
signature::

    <text>
    <blank line>
    — <key name> <base64(4-byte key ID || signature)>

Two signature types are implemented:

* ``0x01`` Ed25519 over the note text: the log's own signature (signed-note v1).
* ``0x04`` Ed25519 *cosignature/v1* (https://c2sp.org/tlog-cosignature): the
  signature blob is ``key ID || u64 timestamp || signature`` and the signed
  message is ``"cosignature/v1\\ntime <timestamp>\\n" || text``. Witnesses use it;
  the timestamp is the witness's clock, passed in by the caller.

The key ID is ``SHA-256(name || "\\n" || type || public key)[:4]``. Keys travel
as the Go ``sumdb/note`` texts: verifier key ``name+hexid+base64(type||pub)``,
signer key ``PRIVATE+KEY+name+hexid+base64(type||seed)``; the latter is a
secret, so the function that writes it is :meth:`NoteSigner.unsafe_export_skey`.

Parsers take hostile input: anything malformed raises :class:`NoteError` or
:class:`KeyFormatError`, never a raw ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from shared.audit.errors import KeyFormatError, NoteError

SIG_TYPE_ED25519: Final = 0x01
"""Signed-note signature type of a plain Ed25519 signature over the note text."""

SIG_TYPE_COSIGNATURE_V1: Final = 0x04
"""Signed-note signature type of an Ed25519 cosignature/v1 (timestamped)."""

MAX_NOTE_BYTES: Final = 1 << 20
"""Notes larger than this are refused before parsing (a checkpoint is a few hundred bytes)."""

MAX_SIGNATURES: Final = 100
"""The signed-note spec lets verifiers refuse notes with more than 100 signatures."""

_DASH: Final = "\u2014 "
_COSIG_HEADER: Final = "cosignature/v1\n"


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || 0x0A || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise KeyFormatError("a key name must be non-empty text")
    if any(c.isspace() for c in name) or "+" in name or not name.isprintable():
        raise KeyFormatError(
            f"key name {name!r} must not contain spaces, '+' or control characters"
        )
    return name


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise KeyFormatError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode() != text:
        # Only the canonical encoding is accepted: one key, one text.
        raise KeyFormatError(f"{what} is not canonical base64")
    return raw


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the rest of the signature blob."""

    name: str
    key_id: bytes
    blob: bytes

    def line(self) -> str:
        """The line as it appears in a note, without the trailing newline."""
        return _DASH + self.name + " " + base64.b64encode(self.key_id + self.blob).decode()


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed signed note: its text (ending in a newline) and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def format(self) -> str:
        """The note as text: text, blank line, one line per signature."""
        return self.text + "\n" + "".join(s.line() + "\n" for s in self.signatures)

    def with_signature(self, signature: NoteSignature) -> Note:
        """A copy with one more signature (one with the same name and key ID is replaced)."""
        kept = tuple(
            s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id)
        )
        return Note(self.text, (*kept, signature))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    for ch in text:
        if ch != "\n" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
            raise NoteError(f"note text contains control character U+{ord(ch):04X}")


def parse_note(data: object) -> Note:
    """Parse a signed note from ``str`` or UTF-8 ``bytes``; :class:`NoteError` if malformed."""
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_NOTE_BYTES:
            raise NoteError(f"note has {len(data)} bytes, at most {MAX_NOTE_BYTES} are accepted")
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    if not isinstance(data, str):
        raise NoteError(f"a note must be text, got {type(data).__name__}")
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError(f"note has {len(data)} characters, at most {MAX_NOTE_BYTES} are accepted")
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sig_block = data[: split + 1], data[split + 2 :]
    _check_text(text)
    if not sig_block.endswith("\n"):
        raise NoteError("the signature block must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signatures, at most {MAX_SIGNATURES} are accepted")
    signatures: list[NoteSignature] = []
    for n, line in enumerate(lines, start=1):
        if not line.startswith(_DASH):
            raise NoteError(f"signature line {n} does not start with '— '")
        parts = line[len(_DASH) :].split(" ")
        if len(parts) != 2:
            raise NoteError(f"signature line {n} is not '— <name> <base64 signature>'")
        name, b64 = parts
        try:
            _check_name(name)
            raw = _b64decode(b64, f"signature line {n}")
        except KeyFormatError as exc:
            raise NoteError(str(exc)) from None
        if len(raw) < 5:
            raise NoteError(f"signature line {n} is too short to hold a key ID and a signature")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise NoteError("note has no signatures")
    return Note(text, tuple(signatures))


class NoteVerifier:
    """An Ed25519 public key with its name and signature type (0x01 or 0x04)."""

    def __init__(self, name: str, public_key: Ed25519PublicKey, sig_type: int = SIG_TYPE_ED25519):
        if sig_type not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
            raise KeyFormatError(f"signature type 0x{sig_type:02x} is not supported")
        self.name: Final = _check_name(name)
        self.sig_type: Final = sig_type
        self.public_key: Final = public_key
        self.key_id: Final = key_id(name, sig_type, _public_bytes(public_key))

    def vkey(self) -> str:
        """The verifier key text ``name+hexid+base64(type||public key)``."""
        material = bytes([self.sig_type]) + _public_bytes(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(material).decode()}"

    def matches(self, sig: NoteSignature) -> bool:
        """True if the signature line names this key (name and key ID)."""
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> bool:
        """True if ``sig`` is a valid signature of this key over the note text."""
        if not self.matches(sig):
            return False
        if self.sig_type == SIG_TYPE_ED25519:
            message, signature = text.encode(), sig.blob
        else:
            if len(sig.blob) != 8 + 64:
                return False
            (timestamp,) = struct.unpack(">Q", sig.blob[:8])
            if timestamp >= 2**63:
                return False
            message = _cosigned_message(text, timestamp)
            signature = sig.blob[8:]
        if len(signature) != 64:
            return False
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def timestamp(self, sig: NoteSignature) -> int | None:
        """The cosignature's POSIX timestamp, or ``None`` for a plain signature."""
        if self.sig_type != SIG_TYPE_COSIGNATURE_V1 or len(sig.blob) != 72:
            return None
        return int(struct.unpack(">Q", sig.blob[:8])[0])


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return (_COSIG_HEADER + f"time {timestamp}\n" + text).encode()


class NoteSigner:
    """An Ed25519 private key with its name and signature type, passed in by the caller."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey, sig_type: int = SIG_TYPE_ED25519):
        self._key = private_key
        self.verifier: Final = NoteVerifier(name, private_key.public_key(), sig_type)
        self.name: Final = self.verifier.name
        self.sig_type: Final = sig_type

    def sign(self, text: str, now: datetime | None = None) -> NoteSignature:
        """Sign the note text. A cosigner (type 0x04) needs ``now``, an aware datetime."""
        _check_text(text)
        if self.sig_type == SIG_TYPE_ED25519:
            blob = self._key.sign(text.encode())
        else:
            if now is None or now.tzinfo is None:
                raise NoteError("a cosignature needs the current time as an aware datetime")
            timestamp = int(now.astimezone(UTC).timestamp())
            if not 0 <= timestamp < 2**63:
                raise NoteError(f"timestamp {timestamp} is out of range")
            blob = struct.pack(">Q", timestamp) + self._key.sign(_cosigned_message(text, timestamp))
        return NoteSignature(self.name, self.verifier.key_id, blob)

    def unsafe_export_skey(self) -> str:
        """The secret signer key text ``PRIVATE+KEY+name+hexid+base64(type||seed)``.

        Unsafe: whoever holds this text can sign as this key. Write it only to a
        file readable by its owner.
        """
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material = base64.b64encode(bytes([self.sig_type]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{material}"


def _parse_key_text(text: object, what: str) -> tuple[str, bytes, int, bytes]:
    if not isinstance(text, str):
        raise KeyFormatError(f"{what} must be text, got {type(text).__name__}")
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError(f"{what} is not of the form name+hexid+base64")
    name, hex_id, b64 = parts
    _check_name(name)
    if len(hex_id) != 8 or hex_id.lower() != hex_id:
        raise KeyFormatError(f"{what}: key ID {hex_id!r} is not 8 lower-case hex digits")
    try:
        kid = bytes.fromhex(hex_id)
    except ValueError:
        raise KeyFormatError(f"{what}: key ID {hex_id!r} is not hex") from None
    raw = _b64decode(b64, f"{what} key material")
    if len(raw) != 33:
        raise KeyFormatError(f"{what}: key material has {len(raw)} bytes, expected 1 + 32")
    return name, kid, raw[0], raw[1:]


def parse_vkey(text: object) -> NoteVerifier:
    """Parse a verifier key text; the embedded key ID must match the key."""
    name, kid, sig_type, material = _parse_key_text(text, "verifier key")
    if sig_type not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
        raise KeyFormatError(f"verifier key type 0x{sig_type:02x} is not supported")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(material)
    except ValueError:
        raise KeyFormatError("verifier key is not a valid Ed25519 public key") from None
    verifier = NoteVerifier(name, public_key, sig_type)
    if verifier.key_id != kid:
        raise KeyFormatError(f"verifier key ID {kid.hex()} does not match its key")
    return verifier


def parse_skey(text: object) -> NoteSigner:
    """Parse a signer key text ``PRIVATE+KEY+name+hexid+base64(type||seed)``."""
    if not isinstance(text, str) or not text.strip().startswith("PRIVATE+KEY+"):
        raise KeyFormatError("signer key must start with PRIVATE+KEY+")
    name, kid, sig_type, seed = _parse_key_text(text.strip()[len("PRIVATE+KEY+") :], "signer key")
    if sig_type not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
        raise KeyFormatError(f"signer key type 0x{sig_type:02x} is not supported")
    signer = NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed), sig_type)
    if signer.verifier.key_id != kid:
        raise KeyFormatError(f"signer key ID {kid.hex()} does not match its key")
    return signer


def sign_note(text: str, signers: Sequence[NoteSigner], now: datetime | None = None) -> Note:
    """A new note over ``text`` signed by each signer (``now`` is needed for cosigners)."""
    return Note(text, tuple(s.sign(text, now) for s in signers))


def verified_signers(note: Note, verifiers: Iterable[NoteVerifier]) -> list[NoteVerifier]:
    """The verifiers whose valid signature is on the note, with Go's ``note.Open`` semantics.

    A signature line by a known key (same name and key ID) that does not verify makes the
    whole note invalid (:class:`NoteError`, "invalid signature for key …"), whatever other
    lines hold; lines by unknown keys are ignored; duplicate valid lines count once.
    """
    known = list(verifiers)
    out: list[NoteVerifier] = []
    for sig in note.signatures:
        for verifier in known:
            if not verifier.matches(sig):
                continue
            if not verifier.verify(note.text, sig):
                raise NoteError(
                    f"invalid signature for key {verifier.name}+{sig.key_id.hex()}: "
                    "a note with a failing signature of a known key is refused"
                )
            if verifier not in out:
                out.append(verifier)
    return out
