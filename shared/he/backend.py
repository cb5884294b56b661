"""Typed facade over TenSEAL: the only module in the project that imports ``tenseal``.

Two roles, two classes:

- :class:`SecretCkksContext` (SVB) generates keys, encrypts thresholds and decrypts results.
  It is the only object that ever holds a secret key.
- :class:`PublicCkksContext` (UWV) is built from bytes a client uploaded; construction refuses
  anything that carries a secret key or does not match a named parameter set, so past the
  boundary the server provably holds no secret.

For strict mode (exact comparison, BFV) the same split: :class:`SecretBfvContext` (SVB) and
:class:`PublicBfvContext` (UWV, public and relinearisation keys only), with
:class:`BfvCiphertext` as the opaque handle the comparison circuit in :mod:`shared.he.strict`
computes with.

Every TenSEAL failure (``ValueError``/``RuntimeError`` on corrupt bytes, mismatched
parameters) is turned into :class:`shared.errors.CryptoError` here.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import tenseal as ts
import tenseal.sealapi as sealapi

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he.params import BfvParams, CkksParams, bfv_parameter_set, parameter_set

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_CIPHERTEXT_BYTES: Final = 4 * 1024 * 1024
"""A fresh N=8192, 3-prime CKKS ciphertext is ~330 KB; anything far larger is refused unread."""

MAX_BFV_CIPHERTEXT_BYTES: Final = 8 * 1024 * 1024
"""A fresh N=16384 strict-mode BFV ciphertext is ~1.4 MB, N=8192 ~430 KB; a relinearised
product before serialisation is the same size."""

MAX_CONTEXT_BYTES: Final = 64 * 1024 * 1024
"""Public contexts with relinearisation/Galois keys reach tens of MB; larger ones are refused."""

_NO_KEYS: Final = {
    "save_public_key": False,
    "save_secret_key": False,
    "save_galois_keys": False,
    "save_relin_keys": False,
}


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

    def check_ciphertext(self, ciphertext: bytes, count: int) -> None:
        """Refuse a ciphertext that would not evaluate: it must parse under this context, hold
        ``count`` slots and take the masked affine map (a trial run with neutral operands).
        Cheap next to the budget it protects: validate, then charge, then evaluate."""
        if len(ciphertext) > MAX_CIPHERTEXT_BYTES:
            raise CryptoError(
                f"ciphertext of {len(ciphertext)} bytes exceeds {MAX_CIPHERTEXT_BYTES}"
            )
        try:
            vec = ts.ckks_vector_from(self._ctx, ciphertext)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"ciphertext does not parse under this context: {exc}") from None
        if vec.size() != count:
            raise CryptoError(f"ciphertext holds {vec.size()} slots, the chunk has {count}")
        try:
            vec.sub([0.0] * count).mul([1.0] * count).add([0.0] * count)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"ciphertext cannot be evaluated: {exc}") from None

    def canonical_bytes(self) -> bytes:
        """The context re-serialised from what was parsed: parameters only. Unknown fields or
        trailing data of the upload are not in it (what the server stores)."""
        data: bytes = self._ctx.serialize(**_NO_KEYS)
        return data

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


# --- BFV (strict mode) ------------------------------------------------------------------------


def _new_bfv_context(params: BfvParams) -> ts.Context:
    return ts.context(
        ts.SCHEME_TYPE.BFV,
        params.poly_modulus_degree,
        params.plain_modulus,
        list(params.coeff_mod_bit_sizes),
    )


def _bfv_keyless_bytes(ctx: ts.Context) -> bytes:
    """The parameters alone, with TenSEAL's evaluation flags pinned.

    The flags travel in the serialisation and TenSEAL changes them after the first encryption,
    so they are set to fixed values (relinearise after every product) before comparing; the
    server decides them, not the uploader.
    """
    ctx.auto_relin = True
    ctx.auto_rescale = False
    ctx.auto_mod_switch = False
    data: bytes = ctx.serialize(**_NO_KEYS)
    return data


def _check_int_slots(values: IntArray, slots: int, plain_modulus: int) -> list[int]:
    v = np.asarray(values)
    if v.ndim != 1 or not 1 <= len(v) <= slots:
        raise CryptoError(f"a BFV chunk holds 1 to {slots} values, got shape {v.shape}")
    if v.dtype.kind not in "iub":
        raise CryptoError(f"BFV slot values must be integers, got dtype {v.dtype}")
    half = plain_modulus // 2
    if len(v) and (int(v.min()) < -half or int(v.max()) > half):
        # Values would wrap modulo t and change meaning silently.
        raise CryptoError(f"BFV slot values must lie in [-{half}, {half}]")
    out: list[int] = v.astype(np.int64).tolist()
    return out


class BfvCiphertext:
    """An opaque BFV ciphertext on the server, closed under the operations the circuit needs.

    Plaintext operands are integer slot vectors of the ciphertext's length; products are
    relinearised at once (the context carries relinearisation keys).
    """

    __slots__ = ("_vec",)

    def __init__(self, vec: ts.BFVVector) -> None:
        self._vec = vec

    def __len__(self) -> int:
        return int(self._vec.size())

    def __add__(self, other: BfvCiphertext) -> BfvCiphertext:
        return BfvCiphertext(self._vec + other._vec)

    def __mul__(self, other: BfvCiphertext) -> BfvCiphertext:
        return BfvCiphertext(self._vec * other._vec)

    def mul_plain(self, values: IntArray) -> BfvCiphertext:
        return BfvCiphertext(self._vec * np.asarray(values, dtype=np.int64).tolist())

    def mul_scalar(self, value: int) -> BfvCiphertext:
        """Multiply every slot by one integer (a constant plaintext: far cheaper than a vector)."""
        return BfvCiphertext(self._vec * int(value))

    def add_plain(self, values: IntArray) -> BfvCiphertext:
        return BfvCiphertext(self._vec + np.asarray(values, dtype=np.int64).tolist())

    def serialize(self) -> bytes:
        data: bytes = self._vec.serialize()
        return data


class SecretBfvContext:
    """SVB's BFV context for strict mode, holding the secret key."""

    def __init__(self, ctx: ts.Context, params: BfvParams) -> None:
        if not ctx.has_secret_key():
            raise CryptoError("a secret context needs its secret key")
        self._ctx = ctx
        self.params = params

    @classmethod
    def generate(cls, params: BfvParams) -> SecretBfvContext:
        """Fresh secret, public and relinearisation keys (randomness from SEAL's system source)."""
        ctx = _new_bfv_context(params)
        ctx.generate_relin_keys()
        return cls(ctx, params)

    def secret_bytes(self) -> bytes:
        """Serialisation including the secret key: only for SVB's key store to encrypt at rest."""
        data: bytes = self._ctx.serialize(save_secret_key=True)
        return data

    @classmethod
    def from_secret_bytes(cls, data: bytes, params_name: str) -> SecretBfvContext:
        params = bfv_parameter_set(params_name)
        try:
            ctx = ts.context_from(data)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"stored secret context is corrupt: {exc}") from None
        if not ctx.has_secret_key() or not ctx.has_relin_keys():
            raise CryptoError("stored BFV context lacks its secret or relinearisation key")
        if _bfv_keyless_bytes(ctx) != _bfv_keyless_bytes(_new_bfv_context(params)):
            raise CryptoError(f"stored context's parameters are not those of {params.name!r}")
        return cls(ctx, params)

    def public_bytes(self) -> bytes:
        """What the strict-mode server needs: public key (re-randomisation) and relinearisation
        keys (ciphertext products). Never the secret key."""
        data: bytes = self._ctx.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=True,
        )
        return data

    def encrypt(self, values: IntArray) -> bytes:
        """Encrypt up to ``slots`` integers (each within ``±t/2``) into one ciphertext."""
        data: bytes = ts.bfv_vector(
            self._ctx, _check_int_slots(values, self.params.slots, self.params.plain_modulus)
        ).serialize()
        return data

    def _load(self, ciphertext: bytes) -> ts.BFVVector:
        if len(ciphertext) > MAX_BFV_CIPHERTEXT_BYTES:
            raise CryptoError(f"result ciphertext of {len(ciphertext)} bytes exceeds the limit")
        try:
            return ts.bfv_vector_from(self._ctx, ciphertext)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"result ciphertext does not parse: {exc}") from None

    def decrypt(self, ciphertext: bytes) -> IntArray:
        """Decrypt to signed integers in ``[-t/2, t/2]``."""
        vec = self._load(ciphertext)
        try:
            return np.asarray(vec.decrypt(), dtype=np.int64)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"result ciphertext does not decrypt: {exc}") from None

    def unsafe_noise_budget_bits(self, ciphertext: bytes) -> int:
        """SEAL's invariant noise budget of a ciphertext (0 means it no longer decrypts).

        For tests and parameter measurements only: it inspects the noise, which a protocol
        decision must never depend on.
        """
        vec = self._load(ciphertext)
        decryptor = sealapi.Decryptor(self._ctx.seal_context().data, self._ctx.secret_key().data)
        return int(decryptor.invariant_noise_budget(vec.ciphertext()[0]))


class PublicBfvContext:
    """UWV's view of a client's strict-mode context: public and relinearisation keys only."""

    def __init__(self, data: bytes, params_name: str) -> None:
        if len(data) > MAX_CONTEXT_BYTES:
            raise CryptoError(f"public context of {len(data)} bytes exceeds {MAX_CONTEXT_BYTES}")
        self.params = bfv_parameter_set(params_name)
        try:
            ctx = ts.context_from(data)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"public context does not parse: {exc}") from None
        if ctx.has_secret_key() or ctx.is_private():
            raise CryptoError("the uploaded context holds a secret key; refusing to store it")
        if not ctx.has_public_key() or not ctx.has_relin_keys():
            raise CryptoError(
                "a strict-mode context needs its public key (re-randomisation) and "
                "relinearisation keys (ciphertext products)"
            )
        if _bfv_keyless_bytes(ctx) != _bfv_keyless_bytes(_new_bfv_context(self.params)):
            raise CryptoError(
                f"the uploaded context's parameters are not those of {self.params.name!r}"
            )
        self._ctx = ctx
        self.sha256 = sha256_hex(data)

    @property
    def holds_secret_key(self) -> bool:
        """Always False (checked at construction); exposed so tests can assert it."""
        return bool(self._ctx.has_secret_key())

    def canonical_bytes(self) -> bytes:
        """The context re-serialised from what was parsed: public and relinearisation keys,
        never a secret or anything unknown the upload carried (what the server stores)."""
        data: bytes = self._ctx.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=True,
        )
        return data

    def load(self, ciphertext: bytes, count: int) -> BfvCiphertext:
        """Parse an uploaded ciphertext that must hold exactly ``count`` slots."""
        if len(ciphertext) > MAX_BFV_CIPHERTEXT_BYTES:
            raise CryptoError(
                f"ciphertext of {len(ciphertext)} bytes exceeds {MAX_BFV_CIPHERTEXT_BYTES}"
            )
        try:
            vec = ts.bfv_vector_from(self._ctx, ciphertext)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"ciphertext does not parse under this context: {exc}") from None
        if vec.size() != count:
            raise CryptoError(f"ciphertext holds {vec.size()} slots, the chunk has {count}")
        return BfvCiphertext(vec)

    def encrypt_zeros(self, count: int) -> BfvCiphertext:
        """A fresh public-key encryption of ``count`` zeros (for re-randomising results)."""
        return BfvCiphertext(ts.bfv_vector(self._ctx, [0] * count))
