"""What a dishonest SVB would write by hand: SEAL objects built with ``tenseal.sealapi`` and
raw residues, without the project's client or facade.

The writer follows SEAL 4's uncompressed serialisation (header, parms_id, NTT flag, size, N,
number of primes, scale, correction factor, coefficient array), independently of
``shared.he.backend``.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tenseal.sealapi as sealapi

_DIR = Path(tempfile.mkdtemp(prefix="attack-"))


def save(obj: Any) -> bytes:
    path = _DIR / f"o{os.getpid()}-{id(obj)}"
    obj.save(str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def load(obj: Any, context: Any, data: bytes) -> Any:
    path = _DIR / f"i{os.getpid()}-{id(obj)}"
    path.write_bytes(data)
    try:
        obj.load(context, str(path))
    finally:
        path.unlink()
    return obj


def _header(total: int, version: tuple[int, int]) -> bytes:
    return struct.pack("<HBBBBHQ", 0xA15E, 16, version[0], version[1], 0, 0, total)


def raw_bytes(
    parms_id: list[int],
    ntt: bool,
    polys: np.ndarray,
    scale: float = 1.0,
    version: tuple[int, int] = (4, 3),
) -> bytes:
    """Serialise residues of shape (size, primes, N) as SEAL would, any shape or flag."""
    size, primes, n = polys.shape
    body = struct.pack("<4QB3QdQ", *parms_id, 1 if ntt else 0, size, n, primes, scale, 1)
    coeffs = struct.pack("<Q", polys.size) + np.ascontiguousarray(polys, dtype="<u8").tobytes()
    array = _header(16 + len(coeffs), version) + coeffs
    return _header(16 + len(body) + len(array), version) + body + array


def residues(ct: Any) -> np.ndarray:
    arr = ct.dyn_array()
    values = np.fromiter((arr.at(i) for i in range(arr.size())), dtype=np.uint64)
    return values.reshape(ct.size(), ct.coeff_modulus_size(), ct.poly_modulus_degree())


def bfv_context(n: int, bits: list[int], plain_bits: int) -> tuple[Any, int, list[int]]:
    """A SEAL BFV context as the attacker builds it (same public parameters as the set)."""
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(sealapi.CoeffModulus.Create(n, bits))
    parms.set_plain_modulus(sealapi.PlainModulus.Batching(n, plain_bits))
    ctx = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    return ctx, int(parms.plain_modulus().value()), [int(m.value()) for m in parms.coeff_modulus()]


def secret_key_of(secret_bytes: bytes, context: Any) -> Any:
    """The SEAL secret key inside a masked-mode key store blob (the attacker is SVB: it has it)."""
    at = 8
    parts = []
    for _ in range(4):
        (length,) = struct.unpack_from("<I", secret_bytes, at)
        parts.append(secret_bytes[at + 4 : at + 4 + length])
        at += 4 + length
    return load(sealapi.SecretKey(), context, parts[2])


def mulmod(a: np.ndarray, b: np.ndarray, q: int) -> np.ndarray:
    return ((a.astype(object) * b.astype(object)) % q).astype(np.uint64)


def phase(context: Any, secret_key: Any, data: bytes, primes: list[int]) -> list[int]:
    """``c0 + c1·s`` of a 2-polynomial ciphertext as centred integers mod its modulus Q."""
    ct = load(sealapi.Ciphertext(), context, data)
    ev = sealapi.Evaluator(context)
    ev.transform_to_ntt_inplace(ct)
    polys = residues(ct)
    levels, n = polys.shape[1], polys.shape[2]
    s = secret_key.data().dyn_array()
    s_ntt = np.fromiter((s.at(i) for i in range(s.size())), dtype=np.uint64).reshape(-1, n)
    w = np.zeros((2, levels, n), dtype=np.uint64)
    for i in range(levels):
        q = np.uint64(primes[i])
        w[0, i] = (polys[0, i] + mulmod(polys[1, i], s_ntt[i], primes[i])) % q
    w[1] = 1  # any nonzero c1: SEAL refuses to transform a "transparent" ciphertext; unused
    back = load(sealapi.Ciphertext(), context, raw_bytes(list(ct.parms_id()), True, w))
    ev.transform_from_ntt_inplace(back)
    coeffs = residues(back)[0]
    modulus = 1
    for q in primes[:levels]:
        modulus *= q
    out = [0] * n
    for i, q in enumerate(primes[:levels]):
        m = modulus // q
        factor = m * pow(m, -1, q)
        for j in range(n):
            out[j] += int(coeffs[i, j]) * factor
    return [(v % modulus) - modulus if (v % modulus) > modulus // 2 else v % modulus for v in out]


def level_modulus(primes: list[int], levels: int) -> int:
    modulus = 1
    for q in primes[:levels]:
        modulus *= q
    return modulus


def with_constant_c1(context: Any, secret_key: Any, ct: Any, c: int, primes: list[int]) -> bytes:
    """The same plaintext (and noise) as ``ct``, but with ``c1`` the constant polynomial ``c``:
    ``c0' = c0 + c1·s − c·s``, computed in NTT form, as the issue's attacker did."""
    ev = sealapi.Evaluator(context)
    work = load(sealapi.Ciphertext(), context, save(ct))
    ev.transform_to_ntt_inplace(work)
    polys = residues(work)
    levels, n = polys.shape[1], polys.shape[2]
    s = secret_key.data().dyn_array()
    s_ntt = np.fromiter((s.at(i) for i in range(s.size())), dtype=np.uint64).reshape(-1, n)
    out = np.zeros_like(polys)
    for i in range(levels):
        q = primes[i]
        diff = (polys[1, i].astype(object) + (q - c % q)) % q
        out[0, i] = ((polys[0, i].astype(object) + diff * s_ntt[i].astype(object)) % q).astype(
            np.uint64
        )
        out[1, i] = c % q
    back = load(sealapi.Ciphertext(), context, raw_bytes(list(work.parms_id()), True, out))
    ev.transform_from_ntt_inplace(back)
    return save(back)


def relin_components(context: Any, public: bytes) -> tuple[list[int], list[np.ndarray]]:
    """The relinearisation key components of a public TenSEAL context (by hand: SEAL's own
    load of the saved keys), as residues (2, primes, N) in NTT form, and their parms_id."""
    import tenseal as ts

    ctx = ts.context_from(public)
    keys = load(sealapi.RelinKeys(), context, save(ctx.relin_keys().data))
    return list(keys.parms_id()), [residues(k.data()) for k in keys.data()[0]]


def with_relin_components(
    public: bytes, parms_id: list[int], components: list[np.ndarray], version: tuple[int, int]
) -> bytes:
    """``public`` with its relinearisation keys replaced by ``components`` (SEAL 4's
    KSwitchKeys layout written by hand: parms_id, outer count 1, inner count, each key)."""
    import tenseal as ts

    body = struct.pack("<4QQQ", *parms_id, 1, len(components))
    for polys in components:
        body += raw_bytes(parms_id, True, polys, version=version)
    data = _header(16 + len(body), version) + body
    ctx = ts.context_from(public)
    load(ctx.relin_keys().data, ctx.seal_context().data, data)
    out: bytes = ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=True
    )
    return out


def malformed_relin(
    context: Any, public: bytes, primes: list[int], z: int, version: tuple[int, int] = (4, 3)
) -> bytes:
    """The attack of issue 14: ``b_i += F_i·Z`` in limb i of every component (F_i = P mod
    q_i, P the special prime; a constant ``Z`` is ``Z`` in every NTT slot), so relinearising
    ``c2`` adds about ``c2·Z`` to the product: a function of what the server multiplied."""
    parms_id, comps = relin_components(context, public)
    special = primes[-1]
    for i, polys in enumerate(comps):
        q = primes[i]
        add = np.uint64((special % q) * z % q)
        polys[0, i] = (polys[0, i] + add) % np.uint64(q)
    return with_relin_components(public, parms_id, comps, version)
