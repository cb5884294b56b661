"""What a dishonest SVB would send, and how it would read the answer: for the demonstrations in
:mod:`shared.he.leakage_dishonest` only. Every function is ``unsafe_``: none of it is used by
the client or the server.

The attacker holds its own secret key (it is SVB), so it can write any ciphertext components
and compute an answer's exact decryption noise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as sealapi

from shared.he.backend import _seal
from shared.he.backend._masked import SecretMaskedContext, seal_params

IntArray = npt.NDArray[np.int64]


def _secret_ntt(secret: SecretMaskedContext) -> npt.NDArray[np.uint64]:
    sp = seal_params(secret.params)
    return _seal.raw_plaintext(secret._sk.data(), len(sp.key_primes), sp.poly_modulus_degree)


def _load(secret: SecretMaskedContext, data: bytes) -> sealapi.Ciphertext:
    ct = sealapi.Ciphertext()
    _seal.load_into(ct, seal_params(secret.params).context, data, "ciphertext")
    return ct


def _ntt_phase(secret: SecretMaskedContext, ct: sealapi.Ciphertext) -> npt.NDArray[np.uint64]:
    """``c0 + c1·s`` in NTT form (levels, N)."""
    sp = seal_params(secret.params)
    work = _load(secret, _seal.save_bytes(ct))
    sealapi.Evaluator(sp.context).transform_to_ntt_inplace(work)
    polys = _seal.raw_polys(work)
    s = _secret_ntt(secret)
    out = np.empty(polys.shape[1:], dtype=np.uint64)
    for i in range(polys.shape[1]):
        q = sp.data_primes[i]
        out[i] = (polys[0, i] + _seal.mulmod(polys[1, i], s[i], q)) % np.uint64(q)
    return out


def _from_ntt(
    secret: SecretMaskedContext,
    parms_id: list[int],
    c0: npt.NDArray[np.uint64],
    c1: npt.NDArray[np.uint64],
) -> sealapi.Ciphertext:
    sp = seal_params(secret.params)
    ct = sealapi.Ciphertext()
    _seal.load_into(
        ct, sp.context, _seal.ciphertext_bytes(parms_id, True, np.stack([c0, c1])), "crafted"
    )
    sealapi.Evaluator(sp.context).transform_from_ntt_inplace(ct)
    return ct


def unsafe_constant_c1(secret: SecretMaskedContext, values: IntArray, c: int) -> bytes:
    """An encryption of ``values`` whose ``c1`` is the constant polynomial ``c``
    (``c0' = c0 + c1·s − c·s``): it still decrypts to ``values``."""
    sp = seal_params(secret.params)
    ct = _load(secret, secret.encrypt(values))
    w = _ntt_phase(secret, ct)
    s = _secret_ntt(secret)
    c0 = np.empty_like(w)
    c1 = np.empty_like(w)
    for i in range(w.shape[0]):
        q = sp.data_primes[i]
        cs = _seal.mulmod(np.full(w.shape[1], c % q, dtype=np.uint64), s[i], q)
        c0[i] = (w[i] + (np.uint64(q) - cs)) % np.uint64(q)
        c1[i] = c % q
    return _seal.save_bytes(_from_ntt(secret, list(ct.parms_id()), c0, c1))


def unsafe_inflated_noise(secret: SecretMaskedContext, values: IntArray, log2_delta: int) -> bytes:
    """An encryption of ``values`` with ``2**log2_delta`` added to its noise."""
    sp = seal_params(secret.params)
    ct = _load(secret, secret.encrypt(values))
    polys = _seal.raw_polys(ct)
    for i, q in enumerate(sp.data_primes):
        polys[0, i, 0] = (int(polys[0, i, 0]) + (1 << log2_delta)) % q
    return _seal.ciphertext_bytes(list(ct.parms_id()), False, polys)


def _crt(residues: npt.NDArray[np.uint64], primes: tuple[int, ...]) -> list[int]:
    modulus = 1
    for q in primes:
        modulus *= q
    total = [0] * residues.shape[1]
    for i, q in enumerate(primes):
        m = modulus // q
        factor = m * pow(m, -1, q)
        row = residues[i].tolist()
        for j, r in enumerate(row):
            total[j] += r * factor
    half = modulus // 2
    return [v % modulus - modulus if v % modulus > half else v % modulus for v in total]


def _decode(secret: SecretMaskedContext, coefficients: list[int]) -> IntArray:
    sp = seal_params(secret.params)
    t = sp.plain_modulus
    terms = [f"{c % t:X}x^{i}" if i else f"{c % t:X}" for i, c in enumerate(coefficients) if c % t]
    plain = sealapi.Plaintext(" + ".join(reversed(terms)) or "0")
    return np.asarray(sealapi.BatchEncoder(sp.context).decode_int64(plain), dtype=np.int64)


def unsafe_masks_from_c1(secret: SecretMaskedContext, answer: bytes, c: int) -> IntArray:
    """The attacker's reading of UWV's masks ``r`` from an answer's ``c1 ≈ c·2r``."""
    sp = seal_params(secret.params)
    ct = _load(secret, answer)
    levels = ct.coeff_modulus_size()
    q0 = sp.data_primes[0]
    first = _seal.raw_polys(ct)[1, 0].tolist()
    scale = 1
    for q in sp.data_primes[levels:]:
        scale *= q  # undo the switch down to ``levels`` primes (approximately)
    inverse = pow(c, -1, q0)
    coeffs = [(v * scale * inverse) % q0 for v in first]
    coeffs = [v - q0 if v > q0 // 2 else v for v in coeffs]
    return _decode(secret, coeffs) // 2


def unsafe_masks_from_noise(
    secret: SecretMaskedContext, answer: bytes, log2_delta: int
) -> IntArray:
    """The attacker's reading of the masks from the answer's noise ``≈ 2**k·2r`` (scaled by
    the switch to fewer primes)."""
    sp = seal_params(secret.params)
    ct = _load(secret, answer)
    levels = ct.coeff_modulus_size()
    primes = sp.data_primes[:levels]
    ev = sealapi.Evaluator(sp.context)
    w_ntt = _ntt_phase(secret, ct)
    ones = np.ones_like(w_ntt)  # SEAL refuses to transform a ciphertext whose c1 is zero
    back = _seal.raw_polys(_from_ntt(secret, list(ct.parms_id()), w_ntt, ones))[0]
    del ev
    w = _crt(back, primes)
    modulus, full = 1, 1
    for q in primes:
        modulus *= q
    for q in sp.data_primes:
        full *= q
    t = sp.plain_modulus
    delta = max(1, (1 << log2_delta) * modulus // full)
    coeffs = []
    for v in w:
        m = (v * t + modulus // 2) // modulus
        noise = (v * t - m * modulus) // t
        coeffs.append((noise + delta // 2) // delta)
    return _decode(secret, coeffs) // 2


def unsafe_public_key(secret: SecretMaskedContext, change: str) -> bytes:
    """The attacker's public key with its random part replaced (``a-zero``, ``a-constant``,
    ``zero``)."""
    sp = seal_params(secret.params)
    pk = sealapi.PublicKey()
    _seal.load_into(pk, sp.context, secret.public_bytes(), "pk")
    polys = _seal.raw_polys(pk.data())
    if change == "a-zero":
        polys[1] = 0
    elif change == "a-constant":
        polys[1] = 7
    else:
        polys[:] = 0
    return _seal.ciphertext_bytes(list(sp.context.key_parms_id()), True, polys)


def unsafe_reshaped(secret: SecretMaskedContext, change: str) -> bytes:
    """A fresh ciphertext with one structural property changed (``scale``, ``level``,
    ``size``, ``big``)."""
    sp = seal_params(secret.params)
    ct = _load(secret, secret.encrypt(np.arange(4, dtype=np.int64)))
    if change == "level":
        sealapi.Evaluator(sp.context).mod_switch_to_next_inplace(ct)
        return _seal.save_bytes(ct)
    polys = _seal.raw_polys(ct)
    parms = list(ct.parms_id())
    if change == "size":
        return _seal.ciphertext_bytes(parms, False, np.concatenate([polys, polys[:1]]))
    if change == "big":
        polys[1, 0, 0] = sp.data_primes[0]
        return _seal.ciphertext_bytes(parms, False, polys)
    data = bytearray(_seal.ciphertext_bytes(parms, False, polys))
    data[16 + 32 + 1 + 24 : 16 + 32 + 1 + 32] = np.float64(2.0**40).tobytes()
    return bytes(data)


# --- strict mode: relinearisation keys (issue 14) ----------------------------------------------


def unsafe_relin_keys(public: bytes, change: str, z: int = 1) -> bytes:
    """``public`` (a strict context) with its relinearisation keys altered.

    ``malformed``: ``b_i += (P mod q_i)·Z`` in limb ``i`` of every component (``Z`` a
    constant: ``Z`` in every NTT slot), so relinearising ``c2`` adds about ``c2·Z`` to the
    product; ``zero``: every component 0; ``constant``: random parts 5; ``not-common``:
    random parts shifted by one slot (not the common ``a_i``)."""
    import tenseal as ts

    from shared.he.backend import _keyset

    ctx = ts.context_from(public)
    seal_ctx = ctx.seal_context().data
    data = seal_ctx.key_context_data()
    primes = [int(m.value()) for m in data.parms().coeff_modulus()]
    components = _keyset.relin_key_polys(ctx)
    for i, polys in enumerate(components):
        if change == "malformed":
            q = primes[i]
            add = np.uint64((primes[-1] % q) * z % q)
            polys[0, i] = (polys[0, i] + add) % np.uint64(q)
        elif change == "zero":
            polys[:] = 0
        elif change == "constant":
            polys[1] = 5
        elif change == "not-common":
            polys[1] = np.roll(polys[1], 1, axis=-1)
        else:
            raise ValueError(f"unknown change {change!r}")
    keys = _keyset._key_switch_bytes(list(seal_ctx.key_parms_id()), components)
    _seal.load_into(ctx.relin_keys().data, seal_ctx, keys, "relinearisation keys")
    out: bytes = ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=True
    )
    return out
