"""Typed facade over TenSEAL: the only module in the project that imports ``tenseal``.

Two roles, two classes:

- :class:`SecretCkksContext` (SVB) generates keys, encrypts thresholds and decrypts results.
  It is the only object that ever holds a secret key.
- :class:`PublicCkksContext` (UWV) is built from bytes a client uploaded; construction refuses
  anything that carries a secret key or does not match a named parameter set, so past the
  boundary the server provably holds no secret.

Every TenSEAL failure (``ValueError``/``RuntimeError`` on corrupt bytes, mismatched
parameters) is turned into :class:`shared.errors.CryptoError` here.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np
import numpy.typing as npt
import tenseal as ts

from shared.errors import CryptoError
from shared.he.params import CkksParams, parameter_set

FloatArray = npt.NDArray[np.float64]

MAX_CIPHERTEXT_BYTES: Final = 4 * 1024 * 1024
"""A fresh N=8192, 3-prime CKKS ciphertext is ~330 KB; anything far larger is refused unread."""

MAX_CONTEXT_BYTES: Final = 64 * 1024 * 1024
"""Public contexts with relinearisation/Galois keys reach tens of MB; larger ones are refused."""

_NO_KEYS: Final = {
    "save_public_key": False,
    "save_secret_key": False,
    "save_galois_keys": False,
    "save_relin_keys": False,
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _new_context(params: CkksParams) -> ts.Context:
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    ctx.global_scale = float(2**params.scale_bits)
    return ctx


def keyless_context_bytes(params: CkksParams) -> bytes:
    """The context serialised without any key: only the encryption parameters (~100 bytes).

    Deterministic for a parameter set, so the server can check an upload against it.
    """
    data: bytes = _new_context(params).serialize(**_NO_KEYS)
    return data


class SecretCkksContext:
    """SVB's CKKS context, holding the secret key. Never serialised except encrypted at rest."""

    def __init__(self, ctx: ts.Context, params: CkksParams) -> None:
        if not ctx.has_secret_key():
            raise CryptoError("a secret context needs its secret key")
        self._ctx = ctx
        self.params = params

    @classmethod
    def generate(cls, params: CkksParams) -> SecretCkksContext:
        """Fresh keys for ``params`` (randomness from SEAL's system source)."""
        return cls(_new_context(params), params)

    def secret_bytes(self) -> bytes:
        """Serialisation including the secret key: only for :mod:`svb_client.keys` to encrypt."""
        data: bytes = self._ctx.serialize(save_secret_key=True)
        return data

    @classmethod
    def from_secret_bytes(cls, data: bytes, params_name: str) -> SecretCkksContext:
        params = parameter_set(params_name)
        try:
            ctx = ts.context_from(data)
        except (ValueError, RuntimeError) as exc:
            raise CryptoError(f"stored secret context is corrupt: {exc}") from None
        if not ctx.has_secret_key():
            raise CryptoError("stored context holds no secret key")
        return cls(ctx, params)

    def public_bytes_for_masked(self) -> bytes:
        """What the masked-mode server needs: parameters only, no key of any kind."""
        data: bytes = self._ctx.serialize(**_NO_KEYS)
        return data

    def encrypt(self, values: FloatArray) -> bytes:
        """Encrypt up to ``slots`` values into one serialised ciphertext."""
        if values.ndim != 1 or len(values) > self.params.slots:
            raise CryptoError(f"can encrypt at most {self.params.slots} values per ciphertext")
        vec = ts.ckks_vector(self._ctx, values.astype(np.float64).tolist())
        data: bytes = vec.serialize()
        return data

    def decrypt(self, ciphertext: bytes) -> FloatArray:
        """Decrypt a serialised result ciphertext."""
        if len(ciphertext) > MAX_CIPHERTEXT_BYTES:
            raise CryptoError(f"result ciphertext of {len(ciphertext)} bytes exceeds the limit")
        try:
            vec = ts.ckks_vector_from(self._ctx, ciphertext)
            return np.asarray(vec.decrypt(), dtype=np.float64)
        except (ValueError, RuntimeError) as exc:
            raise CryptoError(f"result ciphertext does not decrypt: {exc}") from None


class PublicCkksContext:
    """UWV's view of a client's context: parameters (and at most public keys), never a secret."""

    def __init__(self, data: bytes, params_name: str) -> None:
        if len(data) > MAX_CONTEXT_BYTES:
            raise CryptoError(f"public context of {len(data)} bytes exceeds {MAX_CONTEXT_BYTES}")
        self.params = parameter_set(params_name)
        try:
            ctx = ts.context_from(data)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"public context does not parse: {exc}") from None
        if ctx.has_secret_key() or ctx.is_private():
            raise CryptoError("the uploaded context holds a secret key; refusing to store it")
        if ctx.serialize(**_NO_KEYS) != keyless_context_bytes(self.params):
            raise CryptoError(
                f"the uploaded context's parameters are not those of {self.params.name!r}"
            )
        self._ctx = ctx
        self.sha256 = sha256_hex(data)

    @property
    def holds_secret_key(self) -> bool:
        """Always False (checked at construction); exposed so tests can assert it."""
        return bool(self._ctx.has_secret_key())

    def masked_affine(
        self, ciphertext: bytes, subtract: FloatArray, multiply: FloatArray, add: FloatArray
    ) -> bytes:
        """Evaluate ``(ct - subtract) * multiply + add`` slot-wise with plaintext operands.

        The plaintext operands never need encrypting (about five times faster, DESIGN §3a).
        """
        if len(ciphertext) > MAX_CIPHERTEXT_BYTES:
            raise CryptoError(
                f"ciphertext of {len(ciphertext)} bytes exceeds {MAX_CIPHERTEXT_BYTES}"
            )
        try:
            vec = ts.ckks_vector_from(self._ctx, ciphertext)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"ciphertext does not parse under this context: {exc}") from None
        n = vec.size()
        if n != len(subtract) or n != len(multiply) or n != len(add):
            raise CryptoError(f"ciphertext holds {n} slots, the chunk has {len(subtract)}")
        try:
            out = vec.sub(subtract.tolist()).mul(multiply.tolist()).add(add.tolist())
            data: bytes = out.serialize()
        except (ValueError, RuntimeError, TypeError) as exc:
            # A ciphertext at the wrong level or scale (crafted or corrupt) lands here.
            raise CryptoError(f"ciphertext cannot be evaluated: {exc}") from None
        return data
