"""Secrets at rest under a passphrase: scrypt (RFC 7914) + AES-256-GCM, and the passphrase
reader. The one implementation behind SVB's HE key file (:mod:`svb_client.keys`) and the
Ed25519 signing key files (:mod:`shared.crypto.keys`).

The key derivation parameters are stored with each file, so they can be raised later; a
file is opened only if its parameters are within :data:`N_RANGE`, :data:`R_RANGE` and
:data:`P_RANGE` and need at most :data:`MAX_SCRYPT_MEMORY` bytes: a file that asks for
absurd parameters (gigabytes of memory, hours of CPU) is refused before any work is done.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shared.errors import CryptoError

SCRYPT_N: Final = 2**15
"""Default cost (RFC 7914 §2): n=2^15, r=8 takes ~32 MiB and ~0.1 s, OWASP's interactive
level."""
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
N_RANGE: Final = (2**10, 2**20)
R_RANGE: Final = (1, 32)
P_RANGE: Final = (1, 16)
MAX_SCRYPT_MEMORY: Final = 1 << 30
"""scrypt needs 128·n·r bytes; 1 GiB is far above any parameter we write."""
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12
MAX_PASSPHRASE_BYTES: Final = 1024
MIN_NEW_PASSPHRASE_BYTES: Final = 8


class AtRestError(CryptoError):
    """A sealed secret that cannot be opened: wrong passphrase, altered, or bad parameters."""


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost parameters, checked against the bounds on construction."""

    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def __post_init__(self) -> None:
        for name, value, (low, high) in (
            ("n", self.n, N_RANGE),
            ("r", self.r, R_RANGE),
            ("p", self.p, P_RANGE),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise AtRestError(f"scrypt {name}={value!r} is outside {low}..{high}")
        if self.n & (self.n - 1):
            raise AtRestError(f"scrypt n={self.n} is not a power of two")
        if 128 * self.n * self.r > MAX_SCRYPT_MEMORY:
            raise AtRestError(
                f"scrypt n={self.n}, r={self.r} needs {128 * self.n * self.r:,} bytes of "
                f"memory, more than {MAX_SCRYPT_MEMORY:,}"
            )

    @classmethod
    def from_json(cls, doc: Any) -> ScryptParams:
        """Parameters from a file's header (``{"n": …, "r": …, "p": …}``), bounded."""
        if not isinstance(doc, Mapping):
            raise AtRestError("the key derivation parameters are not an object")
        try:
            return cls(n=doc["n"], r=doc["r"], p=doc["p"])
        except KeyError as exc:
            raise AtRestError(f"the key derivation parameters lack {exc}") from None

    def to_json(self) -> dict[str, int]:
        return {"n": self.n, "r": self.r, "p": self.p}

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        """A 256-bit key from the passphrase."""
        if len(salt) < SALT_BYTES:
            raise AtRestError(f"the salt has {len(salt)} bytes, at least {SALT_BYTES} needed")
        return Scrypt(salt=salt, length=32, n=self.n, r=self.r, p=self.p).derive(passphrase)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A secret sealed under a passphrase; the caller stores these fields in its format."""

    params: ScryptParams
    salt: bytes
    nonce: bytes
    ciphertext: bytes


def seal(
    secret: bytes,
    passphrase: bytes,
    *,
    associated_data: bytes,
    params: ScryptParams | None = None,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> Sealed:
    """Encrypt ``secret`` under ``passphrase``; ``associated_data`` (the file's header) is
    authenticated with it, so changing the header makes :func:`open_sealed` fail.

    Salt and nonce are fresh random values unless given (the caller may need them inside its
    header, which is the associated data)."""
    if len(passphrase) < MIN_NEW_PASSPHRASE_BYTES:
        raise AtRestError(f"the passphrase must be at least {MIN_NEW_PASSPHRASE_BYTES} bytes long")
    params = params or ScryptParams()
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(params.derive(passphrase, salt)).encrypt(nonce, secret, associated_data)
    return Sealed(params, salt, nonce, ciphertext)


def open_sealed(sealed: Sealed, passphrase: bytes, *, associated_data: bytes, where: str) -> bytes:
    """The secret, or :class:`AtRestError` naming ``where`` (wrong passphrase or altered)."""
    if len(sealed.nonce) != NONCE_BYTES:
        raise AtRestError(f"{where}: the nonce has {len(sealed.nonce)} bytes, not {NONCE_BYTES}")
    key = sealed.params.derive(passphrase, sealed.salt)
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, associated_data)
    except InvalidTag:
        raise AtRestError(
            f"{where}: wrong passphrase, or the file was changed after it was written"
        ) from None


def read_passphrase(
    path: Path | None, *, variable: str, env: Mapping[str, str] | None = None
) -> bytes:
    """The passphrase: the first line of ``path``, or else the environment ``variable``.

    Bounded to :data:`MAX_PASSPHRASE_BYTES`; an empty one is refused. The one passphrase
    reader of the project (each key kind names its own variable)."""
    if path is not None:
        try:
            with path.open("rb") as f:
                data = f.read(MAX_PASSPHRASE_BYTES + 2)
        except OSError as exc:
            raise AtRestError(f"{path}: cannot read the passphrase: {exc.strerror}") from None
        source = str(path)
    else:
        value = (os.environ if env is None else env).get(variable)
        if value is None:
            raise AtRestError(f"no passphrase: give --passphrase-file or set {variable}")
        data, source = value.encode("utf-8"), f"${variable}"
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if len(line) > MAX_PASSPHRASE_BYTES:
        raise AtRestError(f"{source}: the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")
    if not line:
        raise AtRestError(f"{source}: the passphrase is empty")
    return line
