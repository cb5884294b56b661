"""Strict mode's TenSEAL BFV contexts: SVB's secret one and UWV's public one.

:class:`SecretBfvContext` (SVB) holds the secret key; :class:`PublicBfvContext` (UWV) is built
from uploaded bytes and refuses a context that carries a secret key, lacks the keys the mode
needs, does not match the named parameter set, or whose public key does not carry the common
random polynomial ``a`` (see :mod:`shared.he.backend._masked` for why). :class:`BfvCiphertext`
is the opaque handle the comparison circuit in :mod:`shared.he.strict` computes with.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt
import tenseal as ts
import tenseal.sealapi as sealapi

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he.backend import _keyset, _seal
from shared.he.params import BfvParams, bfv_parameter_set

IntArray = npt.NDArray[np.int64]

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


def _sealapi_params(params: BfvParams) -> _seal.SealParams:
    return _seal.bfv_context(
        params.poly_modulus_degree, params.coeff_mod_bit_sizes, plain_modulus=params.plain_modulus
    )


def strict_crs_a(params: BfvParams, seed: bytes) -> npt.NDArray[np.uint64]:
    """The ``a`` a strict-mode public key for ``params`` must carry (NTT form, key level)."""
    return _keyset.public_key_crs(params, seed)


def _check_public_key(ctx: ts.Context, params: BfvParams, crs_seed: bytes) -> None:
    """Refuse a public key whose random part is not the common ``a`` (e.g. 0 or a constant:
    the server's re-randomisation and flooding would then do nothing)."""
    sp = _sealapi_params(params)
    public = sealapi.PublicKey()
    _seal.load_into(public, sp.context, _seal.save_bytes(ctx.public_key().data), "public key")
    ct = public.data()
    if ct.size() != 2 or list(ct.parms_id()) != list(sp.context.key_parms_id()):
        raise CryptoError("the public key is not a 2-polynomial key at the key level")
    polys = _seal.raw_polys(ct)
    if not np.array_equal(polys[1], strict_crs_a(params, crs_seed)):
        raise CryptoError(
            "the public key's random part is not the common polynomial a for this server "
            "(a key with a = 0, a constant or any chosen a is refused)"
        )
    if not polys[0].any():
        raise CryptoError("the public key's first part is zero")


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
    """SVB's BFV context for strict mode: one key set derived from its 32-byte seed.

    The keys are a pure function of (parameter set, seed, UWV's common seed), see
    :mod:`shared.he.backend._keyset`: the same seed gives the same public bytes every time it
    is loaded (so the client uploads once), and UWV can regenerate a set from its seed when it
    opens it in the cut-and-choose check (:mod:`uwv_server.key_checks`)."""

    def __init__(
        self, params: BfvParams, seed: bytes, crs_seed: bytes = _seal.DEFAULT_CRS_SEED
    ) -> None:
        key_set = _keyset.derive_key_set(params, seed, crs_seed)
        self._ctx = key_set.secret
        self._public = key_set.public_bytes
        self.params = params
        self.seed = seed
        self.crs_seed = crs_seed

    @classmethod
    def generate(
        cls,
        params: BfvParams,
        crs_seed: bytes = _seal.DEFAULT_CRS_SEED,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> SecretBfvContext:
        """A key set from a fresh seed (from ``random_bytes``, a cryptographic source)."""
        return cls(params, random_bytes(_keyset.SEED_BYTES), crs_seed)

    def secret_bytes(self) -> bytes:
        """TenSEAL's serialisation including the secret key (tests and crafted attacks only;
        SVB's key store keeps the seed, see :mod:`svb_client.keys`)."""
        data: bytes = self._ctx.serialize(save_secret_key=True)
        return data

    def public_bytes(self) -> bytes:
        """What the strict-mode server needs: public key (re-randomisation, on the common
        ``a``) and relinearisation keys (ciphertext products, on the common ``a_i``). Never
        the secret key. The same bytes for the same seed, in every process."""
        return self._public

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

    def __init__(
        self, data: bytes, params_name: str, crs_seed: bytes = _seal.DEFAULT_CRS_SEED
    ) -> None:
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
        _check_public_key(ctx, self.params, crs_seed)
        _keyset.check_relin_keys(ctx, self.params, crs_seed)
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

    def check_upload(self, ciphertext: bytes) -> None:
        """Structural checks of one uploaded ciphertext, cheap enough to run before anything
        is charged: size limit, parses under this context, exactly one SEAL ciphertext of
        2 polynomials at the first level, not in NTT form (SEAL's load refuses coefficients
        ≥ q_i)."""
        if len(ciphertext) > MAX_BFV_CIPHERTEXT_BYTES:
            raise CryptoError(
                f"ciphertext of {len(ciphertext)} bytes exceeds {MAX_BFV_CIPHERTEXT_BYTES}"
            )
        try:
            vec = ts.bfv_vector_from(self._ctx, ciphertext)
            parts = vec.ciphertext()
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"ciphertext does not parse under this context: {exc}") from None
        first = list(self._ctx.seal_context().data.first_parms_id())
        if len(parts) != 1:
            raise CryptoError(f"a strict upload holds 1 SEAL ciphertext, this one {len(parts)}")
        ct = parts[0]
        if ct.size() != 2:
            raise CryptoError(f"a ciphertext has exactly 2 polynomials, this one {ct.size()}")
        if list(ct.parms_id()) != first:
            raise CryptoError("the ciphertext is not at the first level of the parameter set")
        if ct.is_ntt_form():
            raise CryptoError("a BFV ciphertext must not be in NTT form")

    def encrypt_zeros(self, count: int) -> BfvCiphertext:
        """A fresh public-key encryption of ``count`` zeros (for re-randomising results)."""
        return BfvCiphertext(ts.bfv_vector(self._ctx, [0] * count))
