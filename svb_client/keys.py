"""SVB's CKKS secret key, encrypted at rest and never sent anywhere.

File format (one file, binary)::

    b"SVBKEY1\\n" ‖ header JSON ‖ b"\\n" ‖ AES-256-GCM(ciphertext of the secret context)

The AES key is derived from a passphrase with scrypt (n=2**15, r=8, p=1); the header (KDF
parameters, salt, nonce, parameter set name) is bound to the ciphertext as associated data,
so changing any of it makes decryption fail.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shared.errors import CryptoError
from shared.he.backend import SecretBfvContext, SecretCkksContext
from shared.he.params import BFV_PARAMETER_SETS, bfv_parameter_set, parameter_set

SecretContext = SecretCkksContext | SecretBfvContext

MAGIC: Final = b"SVBKEY1\n"
_SCRYPT_N: Final = 2**15


def _derive(passphrase: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase)


def save_secret_key(ctx: SecretContext, path: Path, passphrase: bytes) -> None:
    """Encrypt the secret context under ``passphrase`` and write it (mode 0600) atomically."""
    if len(passphrase) < 8:
        raise CryptoError("the key passphrase must be at least 8 characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = json.dumps(
        {
            "kdf": "scrypt",
            "n": _SCRYPT_N,
            "r": 8,
            "p": 1,
            "salt": base64.b64encode(salt).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "params": ctx.params.name,
        },
        sort_keys=True,
    ).encode()
    sealed = AESGCM(_derive(passphrase, salt, _SCRYPT_N)).encrypt(
        nonce, ctx.secret_bytes(), MAGIC + header
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(MAGIC + header + b"\n" + sealed)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_secret_key(path: Path, passphrase: bytes) -> SecretContext:
    """Read and decrypt a key file; a wrong passphrase or altered file raises CryptoError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read key file: {exc.strerror}") from None
    if not data.startswith(MAGIC):
        raise CryptoError(f"{path}: not an SVB key file")
    header, _, sealed = data[len(MAGIC) :].partition(b"\n")
    try:
        meta = json.loads(header)
        salt = base64.b64decode(meta["salt"])
        nonce = base64.b64decode(meta["nonce"])
        key = _derive(passphrase, salt, int(meta["n"]))
        plain = AESGCM(key).decrypt(nonce, sealed, MAGIC + header)
    except InvalidTag:
        raise CryptoError(f"{path}: wrong passphrase, or the key file was altered") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CryptoError(f"{path}: key file header is corrupt: {exc}") from None
    name = str(meta["params"])
    if name in BFV_PARAMETER_SETS:
        return SecretBfvContext.from_secret_bytes(plain, name)
    return SecretCkksContext.from_secret_bytes(plain, name)


def load_or_create(path: Path, passphrase: bytes, params_name: str) -> tuple[SecretContext, bool]:
    """Load the key at ``path``, or create one for ``params_name`` there if there is none."""
    if path.exists():
        ctx = load_secret_key(path, passphrase)
        if ctx.params.name != params_name:
            raise CryptoError(
                f"{path} holds a key for {ctx.params.name!r}, this batch needs {params_name!r}"
            )
        return ctx, False
    new: SecretContext
    if params_name in BFV_PARAMETER_SETS:
        new = SecretBfvContext.generate(bfv_parameter_set(params_name))
    else:
        new = SecretCkksContext.generate(parameter_set(params_name))
    save_secret_key(new, path, passphrase)
    return new, True


def read_passphrase(passphrase_file: Path | None) -> bytes:
    """The passphrase from ``--passphrase-file`` or the ``SVB_KEY_PASSPHRASE`` variable."""
    if passphrase_file is not None:
        try:
            return passphrase_file.read_bytes().strip()
        except OSError as exc:
            raise CryptoError(
                f"{passphrase_file}: cannot read passphrase: {exc.strerror}"
            ) from None
    value = os.environ.get("SVB_KEY_PASSPHRASE")
    if not value:
        raise CryptoError(
            "no key passphrase: pass --passphrase-file FILE or set SVB_KEY_PASSPHRASE"
        )
    return value.encode()
