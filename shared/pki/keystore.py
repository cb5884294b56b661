"""Private keys at rest: encrypted PKCS#8 PEM files, and the passphrase that opens them.

Keys are ECDSA P-256 (NIST SP 800-186; about 128-bit security, supported by every TLS 1.2 and
1.3 stack, and an ECDSA certificate can only be used with ephemeral ECDHE key exchange, so every
session has forward secrecy). A key file is PKCS#8 encrypted with ``cryptography``'s
``BestAvailableEncryption`` (PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC), written with mode 0600.
An unencrypted key file is refused when read: keys never rest in clear.

The passphrase comes from a file (its first line) or from an environment variable; both are
read with a bound, and every failure says which source was tried.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.crypto import at_rest
from shared.pki.errors import KeyAtRestError

PASSPHRASE_ENV: Final = "AIO_PKI_PASSPHRASE"
MIN_PASSPHRASE_BYTES: Final = 8
MAX_PASSPHRASE_BYTES: Final = 1024
MAX_KEY_FILE_BYTES: Final = 64 * 1024
"""A P-256 PKCS#8 PEM is ~300 bytes; anything near this bound is not a key file."""

PrivateKey = ec.EllipticCurvePrivateKey


def generate_key() -> PrivateKey:
    """A fresh ECDSA P-256 key from the operating system's random source."""
    return ec.generate_private_key(ec.SECP256R1())


def read_passphrase(
    path: Path | None, *, env: Mapping[str, str] | None = None, variable: str = PASSPHRASE_ENV
) -> bytes:
    """The passphrase from ``path`` (first line) or else from the environment ``variable``
    (the project's one reader, :func:`shared.crypto.at_rest.read_passphrase`)."""
    try:
        return at_rest.read_passphrase(path, variable=variable, env=env)
    except at_rest.AtRestError as exc:
        raise KeyAtRestError(str(exc)) from None


def save_private_key(
    key: PrivateKey, path: Path, passphrase: bytes, *, overwrite: bool = False
) -> None:
    """Write ``key`` encrypted under ``passphrase`` (mode 0600); refuses to overwrite by default."""
    if len(passphrase) < MIN_PASSPHRASE_BYTES:
        raise KeyAtRestError(
            f"the passphrase for {path} must be at least {MIN_PASSPHRASE_BYTES} bytes"
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyAtRestError(f"{path} exists already; refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """Open an encrypted key file; every failure is a :class:`KeyAtRestError` naming ``path``."""
    try:
        with path.open("rb") as f:
            pem = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyAtRestError(f"{path}: cannot read the key file: {exc.strerror}") from None
    if len(pem) > MAX_KEY_FILE_BYTES:
        raise KeyAtRestError(f"{path}: larger than {MAX_KEY_FILE_BYTES} bytes; not a key file")
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" not in pem:
        if b"PRIVATE KEY-----" in pem:
            raise KeyAtRestError(
                f"{path}: the private key is not encrypted; keys are kept encrypted at rest "
                "(re-create it with `uwv-server pki init` or `pki issue`)"
            )
        raise KeyAtRestError(f"{path}: not a PEM encrypted private key")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except ValueError:
        raise KeyAtRestError(f"{path}: wrong passphrase, or the key file is damaged") from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise KeyAtRestError(f"{path}: cannot open the key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyAtRestError(f"{path}: expected an ECDSA key, got {type(key).__name__}")
    return key


def unsafe_private_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM, for gRPC's credential constructors only.

    gRPC takes the private key as bytes; keep the result in memory, never write it.
    """
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
