"""SVB's HE secret key (masked or strict mode), encrypted at rest and never sent anywhere.

File format (one file, binary)::

    b"SVBKEY1\\n" ‖ header JSON ‖ b"\\n" ‖ AES-256-GCM(ciphertext of the secret)

The secret is SEAL's secret context in masked mode, and in strict mode the 32-byte master
seed of a :class:`~shared.he.keysets.StrictKeyFamily` (``"secret": "strict-seed/v1"`` in the
header): every key set is derived from it deterministically, so loading the same file gives
the same public-context bytes each time (the client uploads once), and the set UWV's key check
accepted is kept in the header (``"chosen"``; :func:`record_chosen` re-seals the file).

The AES key is derived from a passphrase with scrypt (n=2**15, r=8, p=1); the header (KDF
parameters, salt, nonce, parameter set name) is bound to the ciphertext as associated data,
so changing any of it makes decryption fail. Sealing, the bounds on the KDF parameters a file
may ask for, and the passphrase reader are :mod:`shared.crypto.at_rest`'s.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Final

from shared.crypto import at_rest
from shared.crypto.at_rest import (
    NONCE_BYTES,
    SALT_BYTES,
    AtRestError,
    ScryptParams,
    Sealed,
    open_sealed,
    seal,
)
from shared.errors import CryptoError
from shared.he.backend import SecretMaskedContext
from shared.he.keysets import StrictKeyFamily
from shared.he.params import BFV_PARAMETER_SETS, bfv_parameter_set, parameter_set

SecretContext = SecretMaskedContext | StrictKeyFamily
STRICT_SECRET: Final = "strict-seed/v1"

MAGIC: Final = b"SVBKEY1\n"
PASSPHRASE_ENV: Final = "SVB_KEY_PASSPHRASE"


def save_secret_key(ctx: SecretContext, path: Path, passphrase: bytes) -> None:
    """Encrypt the secret context under ``passphrase`` and write it (mode 0600) atomically."""
    params = ScryptParams()
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    fields: dict[str, object] = {
        "kdf": "scrypt",
        **params.to_json(),
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "params": ctx.params.name,
    }
    if isinstance(ctx, StrictKeyFamily):
        fields["secret"] = STRICT_SECRET
        if ctx.chosen is not None:
            fields["chosen"] = ctx.chosen
        secret = ctx.master
    else:
        secret = ctx.secret_bytes()
    header = json.dumps(fields, sort_keys=True).encode()
    sealed = seal(
        secret,
        passphrase,
        associated_data=MAGIC + header,
        params=params,
        salt=salt,
        nonce=nonce,
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(MAGIC + header + b"\n" + sealed.ciphertext)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_secret_key(path: Path, passphrase: bytes) -> SecretContext:
    """Read and decrypt a key file; a wrong passphrase, an altered file or KDF parameters
    outside the bounds raise CryptoError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read key file: {exc.strerror}") from None
    if not data.startswith(MAGIC):
        raise CryptoError(f"{path}: not an SVB key file")
    header, _, ciphertext = data[len(MAGIC) :].partition(b"\n")
    try:
        meta = json.loads(header)
        if meta.get("kdf") != "scrypt":
            raise AtRestError(f"unsupported key derivation {meta.get('kdf')!r}")
        sealed = Sealed(
            params=ScryptParams.from_json(meta),
            salt=base64.b64decode(meta["salt"], validate=True),
            nonce=base64.b64decode(meta["nonce"], validate=True),
            ciphertext=ciphertext,
        )
        name = str(meta["params"])
        kind = meta.get("secret")
        chosen = meta.get("chosen")
        if chosen is not None and (type(chosen) is not int or chosen < 0):
            raise ValueError(f"chosen key set {chosen!r} is not a non-negative integer")
    except AtRestError as exc:
        raise CryptoError(f"{path}: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CryptoError(f"{path}: key file header is corrupt: {exc}") from None
    plain = open_sealed(sealed, passphrase, associated_data=MAGIC + header, where=str(path))
    if name in BFV_PARAMETER_SETS:
        if kind != STRICT_SECRET:
            raise CryptoError(
                f"{path}: a strict-mode key file from before seeded key sets (issue 14): its "
                "keys cannot be checked by UWV; create a new key file"
            )
        return StrictKeyFamily(bfv_parameter_set(name), plain, chosen=chosen)
    return SecretMaskedContext.from_secret_bytes(plain, name)


def load_or_create(path: Path, passphrase: bytes, params_name: str) -> tuple[SecretContext, bool]:
    """Load the key at ``path``, or create one for ``params_name`` there if there is none."""
    if path.exists():
        ctx = load_secret_key(path, passphrase)
        if ctx.params.name != params_name:
            raise CryptoError(
                f"{path} holds a key for {ctx.params.name!r}, this batch needs {params_name!r}"
            )
        _keep_chosen(ctx, path, passphrase)
        return ctx, False
    new: SecretContext
    if params_name in BFV_PARAMETER_SETS:
        new = StrictKeyFamily.generate(bfv_parameter_set(params_name))
    else:
        new = SecretMaskedContext.generate(parameter_set(params_name))
    save_secret_key(new, path, passphrase)
    _keep_chosen(new, path, passphrase)
    return new, True


def _keep_chosen(ctx: SecretContext, path: Path, passphrase: bytes) -> None:
    if isinstance(ctx, StrictKeyFamily):
        family = ctx
        family.on_chosen = lambda chosen: record_chosen(path, passphrase, family, chosen)


def record_chosen(path: Path, passphrase: bytes, family: StrictKeyFamily, chosen: int) -> None:
    """Keep the key set UWV's key check accepted in the key file (re-sealed atomically)."""
    family.chosen = chosen
    save_secret_key(family, path, passphrase)


def read_passphrase(passphrase_file: Path | None) -> bytes:
    """The passphrase from ``--passphrase-file`` (first line) or ``$SVB_KEY_PASSPHRASE``."""
    return at_rest.read_passphrase(passphrase_file, variable=PASSPHRASE_ENV)
