"""Glue over SEAL's own API (``tenseal.sealapi``): contexts for named sets, bytes ⇄ objects,
raw coefficient arrays, and the common random polynomial that public keys must use.

``sealapi`` saves and loads through file paths only, so bytes go through a private temporary
directory (on ``/dev/shm`` where there is one). Loading is SEAL's own checked load: it refuses
data whose header, parameters or coefficients (≥ ``q_i``) are not valid for the context.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import os
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as sealapi

from shared.errors import CryptoError

U64Array = npt.NDArray[np.uint64]

CRS_LABEL: Final = b"aio-screening/v1/public-key-a"
"""Domain separation for the common random polynomial ``a`` (see :func:`crs_polynomial`)."""

DEFAULT_CRS_SEED: Final = hashlib.sha256(b"aio-screening common reference string, 2026").digest()
"""The seed of ``a`` unless UWV configures its own: public, fixed, chosen by nobody who could
profit from it (a hash of a fixed sentence). What matters is that SVB cannot choose ``a``."""

_SHM = Path("/dev/shm")
_TMP = Path(tempfile.mkdtemp(prefix="aio-seal-", dir=_SHM if _SHM.is_dir() else None))
atexit.register(shutil.rmtree, _TMP, True)
_COUNTER = itertools.count()
_LOCK = threading.Lock()


class _Saveable(Protocol):
    def save(self, path: str) -> None: ...


def _path() -> Path:
    with _LOCK:
        n = next(_COUNTER)
    return _TMP / f"{os.getpid()}-{threading.get_ident()}-{n}"


def save_bytes(obj: _Saveable) -> bytes:
    """SEAL's own serialisation of ``obj`` (zstd-compressed where SEAL compresses)."""
    path = _path()
    try:
        obj.save(str(path))
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def load_into(obj: Any, context: sealapi.SEALContext, data: bytes, what: str) -> None:
    """SEAL's checked load of ``data`` into ``obj``; any failure is a :class:`CryptoError`.

    The bytes must be exactly one SEAL object: the size in its header must be their length
    (SEAL itself would ignore trailing bytes)."""
    if len(data) < 16 or struct.unpack_from("<Q", data, 8)[0] != len(data):
        raise CryptoError(f"{what} is not exactly one SEAL object ({len(data)} bytes)")
    path = _path()
    try:
        path.write_bytes(data)
        obj.load(context, str(path))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CryptoError(f"{what} does not parse under the parameter set: {exc}") from None
    finally:
        path.unlink(missing_ok=True)


@cache
def _header_version() -> tuple[int, int]:
    data = save_bytes(sealapi.Plaintext("1"))
    return data[3], data[4]


def _header(total: int) -> bytes:
    major, minor = _header_version()
    return struct.pack("<HBBBBHQ", 0xA15E, 16, major, minor, 0, 0, total)


def ciphertext_bytes(parms_id: list[int], ntt_form: bool, polys: U64Array) -> bytes:
    """SEAL's uncompressed serialisation of a ciphertext (or public key) from raw residues.

    ``polys`` has shape (size, primes, N). Layout (SEAL 4): header, parms_id, NTT flag, size,
    N, number of primes, scale, correction factor, then the coefficient array (own header).
    """
    size, primes, n = polys.shape
    body = (
        struct.pack("<4Q", *parms_id)
        + struct.pack("<B", 1 if ntt_form else 0)
        + struct.pack("<3Q", size, n, primes)
        + struct.pack("<d", 1.0)
        + struct.pack("<Q", 1)
    )
    coeffs = struct.pack("<Q", polys.size) + np.ascontiguousarray(polys, dtype="<u8").tobytes()
    array = _header(16 + len(coeffs)) + coeffs
    return _header(16 + len(body) + len(array)) + body + array


def raw_polys(ct: sealapi.Ciphertext) -> U64Array:
    """The residues of a (small number of) ciphertext(s) as an array (size, primes, N).

    Element by element (~0.15 µs each): for keys, not for per-chunk data.
    """
    arr = ct.dyn_array()
    values = np.fromiter((arr.at(i) for i in range(arr.size())), dtype=np.uint64)
    return values.reshape(ct.size(), ct.coeff_modulus_size(), ct.poly_modulus_degree())


def raw_plaintext(pt: sealapi.Plaintext, primes: int, n: int) -> U64Array:
    arr = pt.dyn_array()
    values = np.fromiter((arr.at(i) for i in range(arr.size())), dtype=np.uint64)
    return values.reshape(primes, n)


@dataclass(frozen=True)
class SealParams:
    """A SEAL BFV context built from a named set, with its primes and plain modulus."""

    context: sealapi.SEALContext
    plain_modulus: int
    key_primes: tuple[int, ...]
    """The primes of the key level: the data primes and, last, the special prime."""
    poly_modulus_degree: int

    @property
    def data_primes(self) -> tuple[int, ...]:
        return self.key_primes[:-1]

    def parms_id_with(self, primes: int) -> list[int]:
        """The parms_id of the level holding ``primes`` data primes."""
        data = self.context.first_context_data()
        while data is not None:
            if data.parms().coeff_modulus().__len__() == primes:
                return list(data.parms_id())
            data = data.next_context_data()
        raise CryptoError(f"no level with {primes} primes")


@cache
def bfv_context(
    n: int, bit_sizes: tuple[int, ...], plain_bits: int = 0, plain_modulus: int = 0
) -> SealParams:
    """The SEAL context of a named BFV set: primes and ``t`` (a batching prime of
    ``plain_bits`` bits, or ``plain_modulus`` itself) are found deterministically."""
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(sealapi.CoeffModulus.Create(n, list(bit_sizes)))
    if plain_modulus:
        parms.set_plain_modulus(sealapi.Modulus(plain_modulus))
    else:
        parms.set_plain_modulus(sealapi.PlainModulus.Batching(n, plain_bits))
    context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    if not context.parameters_set():
        raise CryptoError(f"SEAL refuses the parameters: {context.parameters_error_message()}")
    primes = tuple(int(m.value()) for m in parms.coeff_modulus())
    return SealParams(context, int(parms.plain_modulus().value()), primes, n)


def crs_polynomial(seed: bytes, label: bytes, primes: tuple[int, ...], n: int) -> U64Array:
    """A uniformly random polynomial in NTT form, per prime, from SHAKE-256(seed, label).

    Rejection sampling (bits masked to the prime's length, values ≥ q_i dropped), so every
    residue is exactly uniform. Both sides compute it; SVB cannot choose it.
    """
    out = np.empty((len(primes), n), dtype=np.uint64)
    for i, q in enumerate(primes):
        mask = np.uint64((1 << q.bit_length()) - 1)
        got: list[U64Array] = []
        have, round_ = 0, 0
        while have < n:
            xof = hashlib.shake_256(
                struct.pack("<II", i, round_) + len(label).to_bytes(2, "little") + label + seed
            )
            words = np.frombuffer(xof.digest(16 * n), dtype="<u8").astype(np.uint64) & mask
            ok = words[words < np.uint64(q)]
            got.append(ok)
            have += len(ok)
            round_ += 1
        out[i] = np.concatenate(got)[:n]
    return out


def mulmod(a: U64Array, b: U64Array, q: int) -> U64Array:
    """Pointwise ``a·b mod q`` for residues of a 60-bit prime (through Python integers)."""
    product = (a.astype(object) * b.astype(object)) % q
    out: U64Array = product.astype(np.uint64)
    return out


def rebase_public_key(
    public: U64Array, secret_ntt: U64Array, a_new: U64Array, primes: tuple[int, ...]
) -> U64Array:
    """``(p0 + (a − a')·s, a')`` for a key ``(p0, a) = (−(a·s + e), a)``: same ``s`` and ``e``.

    All in NTT form (pointwise per prime), which is how SEAL stores keys.
    """
    out = public.copy()
    for i, q in enumerate(primes):
        qq = np.uint64(q)
        diff = (public[1, i] + (qq - a_new[i])) % qq
        out[0, i] = (public[0, i] + mulmod(diff, secret_ntt[i], q)) % qq
        out[1, i] = a_new[i]
    return out


_LONG_DOUBLE_EXACT: Final = np.finfo(np.longdouble).nmant >= 63
"""x86's 80-bit long double: a 64-bit mantissa is enough for exact 60-bit modular products."""


def mulmod_constant(x: U64Array, constant: int, q: int) -> U64Array:
    """``x·constant mod q`` for ``x < q`` and a constant ``< q < 2**61``, vectorised.

    The quotient ``⌊x·c/q⌋`` is estimated in long double (error below 1 with a 64-bit
    mantissa), the remainder computed exactly modulo 2**64 and corrected once either way.
    Without an 80-bit long double, falls back to Python integers.
    """
    if not _LONG_DOUBLE_EXACT:
        return mulmod(x, np.full(x.shape, constant, dtype=np.uint64), q)
    c, qq = np.uint64(constant), np.uint64(q)
    # Non-negative, so truncating to uint64 is the floor (np.floor on long double is slow).
    ratio = np.longdouble(constant) / np.longdouble(q)
    quotient = (x.astype(np.longdouble) * ratio).astype(np.uint64)
    with np.errstate(over="ignore"):
        remainder = x * c - quotient * qq  # exact modulo 2**64; true value in (−q, 2q)
    remainder = np.where(remainder >= np.uint64(1 << 63), remainder + qq, remainder)
    remainder = np.where(remainder >= qq, remainder - qq, remainder)
    out: U64Array = remainder
    return out


def uniform_flood(random_bytes: Any, log2_width: int, primes: tuple[int, ...], n: int) -> U64Array:
    """Residues of ``n`` integers uniform in ``[−2**w, 2**w)`` (w = ``log2_width``).

    Drawn as ``w + 1`` random bits each (exactly uniform), from the injected source, as
    64-bit words ``f = Σ w_k·2**(64k) − 2**w``, reduced per prime without big integers.
    """
    words = (log2_width + 1 + 63) // 64
    raw = np.frombuffer(random_bytes(8 * words * n), dtype="<u8").reshape(words, n).copy()
    top_bits = log2_width + 1 - 64 * (words - 1)
    raw[words - 1] &= np.uint64((1 << top_bits) - 1)
    out = np.empty((len(primes), n), dtype=np.uint64)
    for i, q in enumerate(primes):
        qq = np.uint64(q)
        acc = raw[0] % qq
        for k in range(1, words):
            term = mulmod_constant(raw[k] % qq, pow(2, 64 * k, q), q)
            acc = acc + term
            acc = np.where(acc >= qq, acc - qq, acc)
        shift = np.uint64(pow(2, log2_width, q))
        out[i] = np.where(acc >= shift, acc - shift, acc + (qq - shift))
    return out
