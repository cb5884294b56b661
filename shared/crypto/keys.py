"""Ed25519 signing keys, and their encrypted file form.

A key file is JSON: the public key in clear (so tools can show its id without the
passphrase) and the raw 32-byte private key sealed with AES-256-GCM under a key derived from
the passphrase with scrypt (:mod:`shared.crypto.at_rest`: the project's one sealing helper,
which refuses KDF parameters outside its bounds). The header (format, owner, public key, KDF
parameters) is the AES-GCM associated data, so changing any of it makes the file fail to
open.

A key's id is the first 16 hex digits of SHA-256 over its raw public key: short enough to
show, long enough that two keys of one registry do not collide by accident (the registry
refuses duplicates anyway).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.crypto.at_rest import (
    SALT_BYTES,
    SCRYPT_N,
    AtRestError,
    ScryptParams,
    Sealed,
    open_sealed,
    seal,
)
from shared.crypto.errors import KeyFileError, SignatureInvalid

KEY_FILE_FORMAT: Final = "aio-ed25519-key/v1"


def key_id_of(public_raw: bytes) -> str:
    """The id of a public key: 16 hex digits of SHA-256 over its raw 32 bytes."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key with its id."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise SignatureInvalid(f"an Ed25519 public key has 32 bytes, got {len(self.raw)}")

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    @classmethod
    def from_b64(cls, text: str) -> PublicKey:
        try:
            return cls(base64.b64decode(text, validate=True))
        except ValueError:
            raise SignatureInvalid("public key is not base64") from None

    def to_b64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True iff ``signature`` is this key's Ed25519 signature over ``data``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


class SigningKey:
    """An Ed25519 private key with an owner label; never printed, never pickled."""

    def __init__(self, private: Ed25519PrivateKey, owner: str) -> None:
        self._private = private
        self.owner = owner
        self.public = PublicKey(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    def __repr__(self) -> str:
        return f"SigningKey(owner={self.owner!r}, key_id={self.key_id})"

    def __reduce__(self) -> Any:
        raise TypeError("signing keys are not pickled; pass the key file and passphrase")

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @classmethod
    def generate(cls, owner: str) -> SigningKey:
        """A fresh key from the operating system's random source."""
        return cls(Ed25519PrivateKey.generate(), owner)

    @classmethod
    def unsafe_from_raw(cls, raw: bytes, owner: str) -> SigningKey:
        """A key from its raw 32 private bytes (the runner gets its key this way on stdin)."""
        if len(raw) != 32:
            raise KeyFileError("an Ed25519 private key has 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw), owner)

    def unsafe_raw(self) -> bytes:
        """The raw private bytes: only to hand the runner its own key over a pipe."""
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    # --- the encrypted file form ---------------------------------------------------

    def save(self, path: Path, passphrase: bytes, *, scrypt_n: int = SCRYPT_N) -> None:
        """Write the key encrypted under ``passphrase``; refuses to overwrite a file."""
        if not passphrase:
            raise KeyFileError("an empty passphrase would leave the key unprotected")
        if path.exists():
            raise KeyFileError(f"{path} exists already; refusing to overwrite a key")
        try:
            params = ScryptParams(n=scrypt_n)
            salt = os.urandom(SALT_BYTES)
            header = {
                "format": KEY_FILE_FORMAT,
                "owner": self.owner,
                "key_id": self.key_id,
                "public_key": self.public.to_b64(),
                "kdf": {"name": "scrypt", **params.to_json()},
                "salt": base64.b64encode(salt).decode("ascii"),
            }
            sealed = seal(
                self.unsafe_raw(),
                passphrase,
                associated_data=_aad(header),
                params=params,
                salt=salt,
            )
        except AtRestError as exc:
            raise KeyFileError(str(exc)) from None
        doc = {
            **header,
            "nonce": base64.b64encode(sealed.nonce).decode("ascii"),
            "ciphertext": base64.b64encode(sealed.ciphertext).decode("ascii"),
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{path} exists already; refusing to overwrite a key") from None
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)

    @classmethod
    def load(cls, path: Path, passphrase: bytes) -> SigningKey:
        """Open a key file; a wrong passphrase, a changed file or KDF parameters outside the
        bounds raise :class:`KeyFileError`."""
        doc = _read_doc(path)
        try:
            header = {k: doc[k] for k in ("format", "owner", "key_id", "public_key", "kdf", "salt")}
            kdf = doc["kdf"]
            if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
                raise KeyFileError(f"{path}: unsupported key derivation {kdf!r}")
            sealed = Sealed(
                params=ScryptParams.from_json(kdf),
                salt=base64.b64decode(doc["salt"], validate=True),
                nonce=base64.b64decode(doc["nonce"], validate=True),
                ciphertext=base64.b64decode(doc["ciphertext"], validate=True),
            )
        except AtRestError as exc:
            raise KeyFileError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(f"{path}: not a key file of format {KEY_FILE_FORMAT}") from None
        try:
            raw = open_sealed(sealed, passphrase, associated_data=_aad(header), where=str(path))
        except AtRestError as exc:
            raise KeyFileError(str(exc)) from None
        key = cls.unsafe_from_raw(raw, str(doc["owner"]))
        if key.public.to_b64() != doc["public_key"]:
            raise KeyFileError(f"{path}: the public key does not belong to the private key")
        return key


def read_public(path: Path) -> PublicKey:
    """The public key of a key file, without the passphrase."""
    doc = _read_doc(path)
    try:
        return PublicKey.from_b64(str(doc["public_key"]))
    except (KeyError, SignatureInvalid):
        raise KeyFileError(f"{path}: no valid public_key in the key file") from None


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file: {exc.strerror}") from None
    except ValueError:
        raise KeyFileError(f"{path}: the key file is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{path}: not a key file of format {KEY_FILE_FORMAT}")
    return doc


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
