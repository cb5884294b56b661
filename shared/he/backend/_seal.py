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
    """SEAL's checked load of ``data`` into ``obj``; any failure is a :class:`CryptoError`."""
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


def uniform_flood(random_bytes: Any, log2_width: int, primes: tuple[int, ...], n: int) -> U64Array:
    """Residues of ``n`` integers uniform in ``[−2**w, 2**w)`` (w = ``log2_width``).

    Drawn as ``w + 1`` random bits each (exactly uniform), from the injected source.
    """
    words = (log2_width + 1 + 63) // 64
    raw = np.frombuffer(random_bytes(8 * words * n), dtype="<u8").reshape(words, n)
    top_bits = log2_width + 1 - 64 * (words - 1)
    value = (raw[words - 1] & np.uint64((1 << top_bits) - 1)).astype(object)
    for k in range(words - 2, -1, -1):
        value = (value << 64) + raw[k].astype(object)
    value = value - (1 << log2_width)
    out = np.empty((len(primes), n), dtype=np.uint64)
    for i, q in enumerate(primes):
        out[i] = (value % q).astype(np.uint64)
    return out
