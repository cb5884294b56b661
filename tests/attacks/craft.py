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
