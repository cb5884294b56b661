"""Masked mode on BFV through SEAL's own API: SVB's secret context and UWV's public one.

Why BFV and not CKKS: CKKS slots are complex, so a threshold ``t + b·i`` came back with UWV's
secret mask as its imaginary part (issue 14). BFV slots are integers mod ``t``: there is no
second channel in the plaintext space.

Why the public key's random part is fixed: UWV re-randomises every answer with a fresh
public-key encryption of zero ``(p0·u + e1, a·u + e2)``. That hides the answer's second
component only if ``a`` is uniformly random; with ``a = 0`` or a constant the answer's ``c1``
still carries ``c1_in · P`` (UWV's mask). So ``a`` is the common random polynomial
:func:`shared.he.backend._seal.crs_polynomial` of a seed UWV trusts, SVB rebases its key onto
it (same ``s`` and ``e``), and UWV refuses any key whose ``a`` differs. ``p0`` cannot be
checked without ``s``, and need not be: whatever it is, ``p0·u + e1`` adds only UWV's fresh
randomness to the answer's noise, not a function of UWV's data.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as sealapi

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he.backend import _seal
from shared.he.params import MaskedParams, parameter_set

IntArray = npt.NDArray[np.int64]
RandomBytes = Callable[[int], bytes]

MAX_MASKED_CIPHERTEXT_BYTES: Final = 4 * 1024 * 1024
"""A fresh N=16384, 4-prime BFV ciphertext is ~1 MB (~0.5 MB with its seeded c1)."""

MAX_PUBLIC_KEY_BYTES: Final = 4 * 1024 * 1024
"""A public key at N=16384 with 5 primes is ~1.3 MB."""

_SECRET_MAGIC: Final = b"AIOMASK1"


def seal_params(params: MaskedParams) -> _seal.SealParams:
    sp = _seal.bfv_context(
        params.poly_modulus_degree, params.coeff_mod_bit_sizes, params.plain_modulus_bits
    )
    q = 1
    for prime in sp.data_primes:
        q *= prime
    if (q // sp.plain_modulus).bit_length() - 1 < params.delta_log2:
        raise CryptoError(f"{params.name}: q/t is below the 2**{params.delta_log2} assumed")
    return sp


def crs_a(params: MaskedParams, seed: bytes) -> npt.NDArray[np.uint64]:
    """The ``a`` every public key for ``params`` must carry (NTT form, key-level primes)."""
    sp = seal_params(params)
    return _seal.crs_polynomial(
        seed, _seal.CRS_LABEL + b"/" + params.name.encode(), sp.key_primes, sp.poly_modulus_degree
    )


def _encode(encoder: sealapi.BatchEncoder, values: IntArray, n: int) -> sealapi.Plaintext:
    padded = np.zeros(n, dtype=np.int64)
    padded[: len(values)] = values
    plain = sealapi.Plaintext()
    encoder.encode(padded.tolist(), plain)
    return plain


def _check_slots(values: IntArray, params: MaskedParams, t: int) -> IntArray:
    v = np.asarray(values)
    if v.ndim != 1 or not 1 <= len(v) <= params.slots or v.dtype.kind not in "iu":
        raise CryptoError(
            f"a masked chunk holds 1 to {params.slots} integers, got {v.dtype} {v.shape}"
        )
    half = t // 2
    if int(v.min()) < -half or int(v.max()) > half:
        raise CryptoError(f"slot values must lie in [-{half}, {half}]")
    return v.astype(np.int64)


def _load_ciphertext(sp: _seal.SealParams, data: bytes) -> sealapi.Ciphertext:
    if len(data) > MAX_MASKED_CIPHERTEXT_BYTES:
        raise CryptoError(f"ciphertext of {len(data)} bytes exceeds {MAX_MASKED_CIPHERTEXT_BYTES}")
    ct = sealapi.Ciphertext()
    _seal.load_into(ct, sp.context, data, "ciphertext")
    return ct


class SecretMaskedContext:
    """SVB's keys for masked mode: the secret key and its public key rebased onto ``a``."""

    def __init__(
        self,
        params: MaskedParams,
        secret_key: sealapi.SecretKey,
        public_key: sealapi.PublicKey,
        crs_seed: bytes,
    ) -> None:
        self.params = params
        self.crs_seed = crs_seed
        self._sp = seal_params(params)
        self._sk = secret_key
        self._pk = public_key
        self._encoder = sealapi.BatchEncoder(self._sp.context)
        self._encryptor = sealapi.Encryptor(self._sp.context, secret_key)
        self._decryptor = sealapi.Decryptor(self._sp.context, secret_key)

    @classmethod
    def generate(
        cls, params: MaskedParams, crs_seed: bytes = _seal.DEFAULT_CRS_SEED
    ) -> SecretMaskedContext:
        """Fresh keys (SEAL's system randomness), public key rebased onto ``a(crs_seed)``."""
        sp = seal_params(params)
        keygen = sealapi.KeyGenerator(sp.context)
        secret = keygen.secret_key()
        standard = sealapi.PublicKey()
        keygen.create_public_key(standard)
        n, primes = sp.poly_modulus_degree, sp.key_primes
        s_ntt = _seal.raw_plaintext(secret.data(), len(primes), n)
        rebased = _seal.rebase_public_key(
            _seal.raw_polys(standard.data()), s_ntt, crs_a(params, crs_seed), primes
        )
        public = sealapi.PublicKey()
        _seal.load_into(
            public,
            sp.context,
            _seal.ciphertext_bytes(list(sp.context.key_parms_id()), True, rebased),
            "rebased public key",
        )
        return cls(params, secret, public, crs_seed)

    def public_bytes(self) -> bytes:
        """What UWV gets: the rebased public key, nothing else."""
        return _seal.save_bytes(self._pk)

    def secret_bytes(self) -> bytes:
        """Secret and public key with the parameter set and seed: only for the key store."""
        name = self.params.name.encode()
        parts = [name, self.crs_seed, _seal.save_bytes(self._sk), self.public_bytes()]
        return _SECRET_MAGIC + b"".join(struct.pack("<I", len(p)) + p for p in parts)

    @classmethod
    def from_secret_bytes(cls, data: bytes, params_name: str) -> SecretMaskedContext:
        params = parameter_set(params_name)
        if not data.startswith(_SECRET_MAGIC):
            raise CryptoError("stored masked key is not in the expected format")
        parts: list[bytes] = []
        at = len(_SECRET_MAGIC)
        try:
            for _ in range(4):
                (length,) = struct.unpack_from("<I", data, at)
                parts.append(data[at + 4 : at + 4 + length])
                at += 4 + length
        except struct.error:
            raise CryptoError("stored masked key is truncated") from None
        if parts[0].decode(errors="replace") != params.name:
            raise CryptoError(f"stored key is for {parts[0]!r}, not {params.name!r}")
        sp = seal_params(params)
        secret, public = sealapi.SecretKey(), sealapi.PublicKey()
        _seal.load_into(secret, sp.context, parts[2], "stored secret key")
        _seal.load_into(public, sp.context, parts[3], "stored public key")
        return cls(params, secret, public, parts[1])

    def encrypt(self, values: IntArray) -> bytes:
        """Encrypt up to ``slots`` integers (|v| ≤ t/2) under the secret key (seeded ``c1``:
        half the bytes of a public-key encryption)."""
        v = _check_slots(values, self.params, self._sp.plain_modulus)
        plain = _encode(self._encoder, v, self._sp.poly_modulus_degree)
        return _seal.save_bytes(self._encryptor.encrypt_symmetric(plain))

    def decrypt(self, ciphertext: bytes) -> IntArray:
        """All ``N`` slots of a result as signed integers in ``(−t/2, t/2]``."""
        ct = _load_ciphertext(self._sp, ciphertext)
        if ct.size() != 2:
            raise CryptoError(f"a result has 2 polynomials, this one {ct.size()}")
        plain = sealapi.Plaintext()
        try:
            self._decryptor.decrypt(ct, plain)
            return np.asarray(self._encoder.decode_int64(plain), dtype=np.int64)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"result ciphertext does not decrypt: {exc}") from None

    def unsafe_noise_budget_bits(self, ciphertext: bytes) -> int:
        """SEAL's invariant noise budget of a ciphertext: for tests and measurements only."""
        ct = _load_ciphertext(self._sp, ciphertext)
        return int(self._decryptor.invariant_noise_budget(ct))


@dataclass(frozen=True)
class MaskedInput:
    """One uploaded ciphertext that passed every structural check (see
    :meth:`PublicMaskedContext.parse`); only such an object can be evaluated."""

    ciphertext: sealapi.Ciphertext


class PublicMaskedContext:
    """UWV's view of a client's masked-mode key: a public key whose ``a`` is the common one.

    Parameters (``N``, primes, ``t``, the flood) come from the named set; the upload
    contributes ``p0`` only.
    """

    def __init__(
        self, data: bytes, params_name: str, crs_seed: bytes = _seal.DEFAULT_CRS_SEED
    ) -> None:
        self.params = parameter_set(params_name)
        if data.startswith(_SECRET_MAGIC):
            raise CryptoError("the upload holds a secret key; refusing to store it")
        if len(data) > MAX_PUBLIC_KEY_BYTES:
            raise CryptoError(f"public key of {len(data)} bytes exceeds {MAX_PUBLIC_KEY_BYTES}")
        sp = seal_params(self.params)
        public = sealapi.PublicKey()
        _seal.load_into(public, sp.context, data, "public key")
        ct = public.data()
        if list(ct.parms_id()) != list(sp.context.key_parms_id()) or ct.size() != 2:
            raise CryptoError("the public key is not a 2-polynomial key at the key level")
        if not ct.is_ntt_form():
            raise CryptoError("the public key is not in NTT form")
        polys = _seal.raw_polys(ct)
        if not np.array_equal(polys[1], crs_a(self.params, crs_seed)):
            raise CryptoError(
                "the public key's random part is not the common polynomial a for this server "
                "(a key with a = 0, a constant or any chosen a is refused: it would let the "
                "answers carry UWV's masks)"
            )
        if not polys[0].any():
            raise CryptoError("the public key's first part is zero")
        self._sp = sp
        self._public = public
        self._encoder = sealapi.BatchEncoder(sp.context)
        self._encryptor = sealapi.Encryptor(sp.context, public)
        self._evaluator = sealapi.Evaluator(sp.context)
        self._first = list(sp.context.first_parms_id())
        self._result_level = sp.parms_id_with(self.params.result_primes)
        self.sha256 = sha256_hex(data)

    @property
    def plain_modulus(self) -> int:
        return self._sp.plain_modulus

    @property
    def holds_secret_key(self) -> bool:
        """Always False: this object is built from a public key alone."""
        return False

    def canonical_bytes(self) -> bytes:
        """The public key re-serialised by SEAL from what was parsed (what the server stores):
        unknown or trailing bytes of the upload are not in it."""
        return _seal.save_bytes(self._public)

    def parse(self, ciphertext: bytes) -> MaskedInput:
        """Refuse anything but a fresh-shaped ciphertext at the first level (cheap: run it
        before anything is charged). SEAL's load already refuses coefficients ≥ ``q_i`` and
        foreign parameters."""
        ct = _load_ciphertext(self._sp, ciphertext)
        if ct.size() != 2:
            raise CryptoError(f"a ciphertext has exactly 2 polynomials, this one {ct.size()}")
        if list(ct.parms_id()) != self._first:
            raise CryptoError("the ciphertext is not at the first level of the parameter set")
        if ct.is_ntt_form():
            raise CryptoError("a BFV ciphertext must not be in NTT form")
        if ct.scale != 1.0:
            raise CryptoError(f"a BFV ciphertext has scale 1, this one {ct.scale}")
        if not sealapi.is_valid_for(ct, self._sp.context):
            raise CryptoError("the ciphertext's coefficients are not valid for the parameters")
        return MaskedInput(ct)

    def unsafe_evaluate_unprotected(
        self, parsed: MaskedInput, multiply: IntArray, add: IntArray
    ) -> bytes:
        """``ct·multiply + add`` with no re-randomisation, flooding or switching: the old
        server's answer, whose components and noise carry UWV's operands. Only for the
        dishonest-SVB demonstrations (:mod:`shared.he.leakage_dishonest`) and tests."""
        t, n = self._sp.plain_modulus, self._sp.poly_modulus_degree
        out = sealapi.Ciphertext()
        p = _encode(self._encoder, _check_slots(multiply, self.params, t), n)
        self._evaluator.multiply_plain(parsed.ciphertext, p, out)
        q = _encode(self._encoder, _check_slots(add, self.params, t), n)
        self._evaluator.add_plain_inplace(out, q)
        return _seal.save_bytes(out)

    def evaluate(
        self,
        parsed: MaskedInput,
        multiply: IntArray,
        add: IntArray,
        random_bytes: RandomBytes = secrets.token_bytes,
    ) -> bytes:
        """``ct·multiply + add`` slot-wise, re-randomised, flooded, switched down, serialised.

        The answer is ``Enc(m·P + Q)`` with noise ``e_in·P + (fresh encryption of zero) + f``,
        ``f`` uniform in ``[−2**flood_log2, 2**flood_log2)`` per coefficient from
        ``random_bytes``; then switched to ``result_primes`` primes (a deterministic function
        of the flooded ciphertext, so it cannot undo the flooding).
        """
        t, n = self._sp.plain_modulus, self._sp.poly_modulus_degree
        p = _check_slots(multiply, self.params, t)
        q = _check_slots(add, self.params, t)
        if len(p) != len(q):
            raise CryptoError(f"operands of {len(p)} and {len(q)} slots")
        ev = self._evaluator
        try:
            zero = sealapi.Ciphertext()
            self._encryptor.encrypt_zero(self._first, zero)
            if p.any():
                out = sealapi.Ciphertext()
                ev.multiply_plain(parsed.ciphertext, _encode(self._encoder, p, n), out)
                ev.add_inplace(out, zero)
            else:  # every slot refused: ct·0 would be "transparent", which SEAL refuses
                out = zero
            if q.any():
                ev.add_plain_inplace(out, _encode(self._encoder, q, n))
            flood = np.zeros((2, len(self._sp.data_primes), n), dtype=np.uint64)
            flood[0] = _seal.uniform_flood(
                random_bytes, self.params.flood_log2, self._sp.data_primes, n
            )
            noise = sealapi.Ciphertext()
            _seal.load_into(
                noise, self._sp.context, _seal.ciphertext_bytes(self._first, False, flood), "flood"
            )
            ev.add_inplace(out, noise)
            ev.mod_switch_to_inplace(out, self._result_level)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CryptoError(f"ciphertext cannot be evaluated: {exc}") from None
        return _seal.save_bytes(out)
