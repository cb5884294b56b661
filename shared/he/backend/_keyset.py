"""Strict-mode key sets derived deterministically from a 32-byte seed (issue 14, cut-and-choose).

A *key set* is a secret key ``s``, a public key rebased onto the common polynomial ``a``, and
relinearisation keys whose random parts are common polynomials too. SVB derives several sets
from independent seeds and uploads all their public contexts; UWV opens all but one at random
and regenerates them from their seeds with this very code (:mod:`uwv_server.key_checks`). So
the derivation must be a pure function of (parameter set, seed, common seed): same bytes in
every process, on every machine with the same SEAL build.

Randomness. SEAL's ``Blake2xbPRNGFactory`` with a fixed seed hands the *same* stream to every
``create()``, and one ``KeyGenerator`` call creates several (secret key sampling, then each
encryption of zero): all components of one call would share randomness (for relinearisation
keys that leaks ``s²``). So every component gets its own sub-seed,
``SHAKE-256(domain ‖ label ‖ seed)``, and its own seeded SEAL context:

- ``secret``: ``KeyGenerator(ctx_secret)`` samples the ternary ``s``;
- ``public``: ``KeyGenerator(ctx_public, s).create_public_key()`` gives ``(−a'·s − e, a')``,
  rebased onto the common ``a`` (``p0 + (a' − a)·s``, same ``s`` and ``e``);
- ``relin/i`` for each data prime ``q_i``: the same, rebased onto the common ``a_i``, plus
  ``(P mod q_i)·s²`` in limb ``i`` of the first part (``P`` the special prime). That is SEAL's
  ``generate_one_kswitch_key`` (an encryption of zero under ``s`` plus the factor times the
  new key in its own limb), built here with numpy in NTT form.

The relinearisation keys are loaded into a TenSEAL context by bytes (SEAL's ``KSwitchKeys``
layout: parms_id, the outer and inner counts, each key as an uncompressed ciphertext).
TenSEAL regenerates relinearisation keys from the secret key when it loads a *secret*
context, so the public context is assembled from a public one (which cannot).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import cache
from typing import Final

import numpy as np
import tenseal as ts
import tenseal.sealapi as sealapi

from shared.errors import CryptoError
from shared.he.backend import _seal
from shared.he.params import BfvParams

SEED_BYTES: Final = 32
"""A key set's seed: 256 bits from a cryptographic source (SVB's), revealed when opened."""

_DOMAIN: Final = b"aio-screening/v1/strict-key-set"

_PUBLIC_ONLY: Final = {
    "save_public_key": True,
    "save_secret_key": False,
    "save_galois_keys": False,
    "save_relin_keys": True,
}


def _sub_seed(seed: bytes, label: bytes) -> list[int]:
    """Eight 64-bit words (Blake2xb's seed) for one component of one key set."""
    digest = hashlib.shake_256(_DOMAIN + len(label).to_bytes(2, "little") + label + seed).digest(64)
    return list(struct.unpack("<8Q", digest))


def _seeded_context(params: BfvParams, seed: bytes, label: bytes) -> sealapi.SEALContext:
    """A SEAL context for ``params`` whose only randomness is the component's sub-seed.

    Only the key level and the first data level are built (``expand_mod_chain=False``): keys
    live at the key level, and the chain's other levels would cost time for nothing."""
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(params.poly_modulus_degree)
    parms.set_coeff_modulus(
        sealapi.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_mod_bit_sizes))
    )
    parms.set_plain_modulus(sealapi.Modulus(params.plain_modulus))
    parms.set_random_generator(sealapi.Blake2xbPRNGFactory(_sub_seed(seed, label)))
    context = sealapi.SEALContext(parms, False, sealapi.SEC_LEVEL_TYPE.TC128)
    if not context.parameters_set():
        raise CryptoError(f"SEAL refuses {params.name}: {context.parameters_error_message()}")
    return context


def _sealapi_params(params: BfvParams) -> _seal.SealParams:
    return _seal.bfv_context(
        params.poly_modulus_degree, params.coeff_mod_bit_sizes, plain_modulus=params.plain_modulus
    )


def public_key_crs(params: BfvParams, crs_seed: bytes) -> _seal.U64Array:
    """The ``a`` a strict-mode public key for ``params`` must carry (NTT form, key level)."""
    sp = _sealapi_params(params)
    label = _seal.CRS_LABEL + b"/" + params.name.encode()
    return _seal.crs_polynomial(crs_seed, label, sp.key_primes, sp.poly_modulus_degree)


@cache
def relin_key_crs(params: BfvParams, crs_seed: bytes) -> tuple[_seal.U64Array, ...]:
    """The ``a_i`` of every relinearisation key component, one per data prime (NTT form)."""
    sp = _sealapi_params(params)
    out = []
    for i in range(len(sp.data_primes)):
        label = _seal.CRS_LABEL + b"/relin/" + params.name.encode() + b"/" + str(i).encode()
        out.append(_seal.crs_polynomial(crs_seed, label, sp.key_primes, sp.poly_modulus_degree))
    return tuple(out)


def _key_switch_bytes(parms_id: list[int], components: list[_seal.U64Array]) -> bytes:
    """SEAL's serialisation of relinearisation keys (one key, for ``s²``) from residues."""
    body = struct.pack("<4Q", *parms_id) + struct.pack("<Q", 1) + struct.pack("<Q", len(components))
    for polys in components:
        body += _seal.ciphertext_bytes(parms_id, True, polys)
    return _seal._header(16 + len(body)) + body


def relin_key_polys(context: ts.Context) -> list[_seal.U64Array]:
    """The residues (2, primes, N) of each relinearisation key component of ``context``."""
    params = context.seal_context().data
    keys = sealapi.RelinKeys()
    _seal.load_into(keys, params, _seal.save_bytes(context.relin_keys().data), "relin keys")
    if keys.size() != 1:
        raise CryptoError(f"relinearisation keys hold {keys.size()} keys, expected 1 (for s²)")
    return [_seal.raw_polys(k.data()) for k in keys.data()[0]]


@dataclass(frozen=True, slots=True)
class KeySet:
    """One derived key set: TenSEAL's secret context (SVB's) and its public context bytes."""

    secret: ts.Context
    public_bytes: bytes


def derive_key_set(params: BfvParams, seed: bytes, crs_seed: bytes) -> KeySet:
    """The key set of ``seed`` for ``params`` under UWV's common seed ``crs_seed``.

    Deterministic: the same arguments give the same ``public_bytes`` in every process."""
    if len(seed) != SEED_BYTES:
        raise CryptoError(f"a key set's seed is {SEED_BYTES} bytes, got {len(seed)}")
    sp = _sealapi_params(params)
    primes, n = sp.key_primes, sp.poly_modulus_degree
    key_parms = list(sp.context.key_parms_id())

    secret = sealapi.KeyGenerator(_seeded_context(params, seed, b"secret")).secret_key()
    s = _seal.raw_plaintext(secret.data(), len(primes), n)

    def encryption_of_zero(label: bytes, a: _seal.U64Array) -> _seal.U64Array:
        key = sealapi.PublicKey()
        sealapi.KeyGenerator(_seeded_context(params, seed, label), secret).create_public_key(key)
        return _seal.rebase_public_key(_seal.raw_polys(key.data()), s, a, primes)

    public = encryption_of_zero(b"public", public_key_crs(params, crs_seed))
    special = primes[-1]
    components = []
    for i, a_i in enumerate(relin_key_crs(params, crs_seed)):
        q = primes[i]
        k = encryption_of_zero(b"relin/" + str(i).encode(), a_i)
        s_squared = _seal.mulmod(s[i], s[i], q)
        k[0, i] = (k[0, i] + _seal.mulmod_constant(s_squared, special % q, q)) % np.uint64(q)
        components.append(k)

    ctx = ts.context(
        ts.SCHEME_TYPE.BFV,
        params.poly_modulus_degree,
        params.plain_modulus,
        list(params.coeff_mod_bit_sizes),
    )
    seal_ctx = ctx.seal_context().data
    _seal.load_into(ctx.secret_key().data, seal_ctx, _seal.save_bytes(secret), "secret key")
    _seal.load_into(
        ctx.public_key().data, seal_ctx, _seal.ciphertext_bytes(key_parms, True, public), "pk"
    )
    # TenSEAL builds its encryptor and decryptor when a context is loaded: round-trip it.
    ctx.generate_relin_keys()
    secret_ctx = ts.context_from(ctx.serialize(save_secret_key=True))
    public_ctx = ts.context_from(secret_ctx.serialize(**_PUBLIC_ONLY))
    _seal.load_into(
        public_ctx.relin_keys().data,
        public_ctx.seal_context().data,
        _key_switch_bytes(key_parms, components),
        "relinearisation keys",
    )
    public_bytes: bytes = public_ctx.serialize(**_PUBLIC_ONLY)
    return KeySet(secret=secret_ctx, public_bytes=public_bytes)


def check_relin_keys(context: ts.Context, params: BfvParams, crs_seed: bytes) -> None:
    """Refuse relinearisation keys whose shape or random parts are not the expected ones.

    Each component must be a 2-polynomial key at the key level whose second part is the
    common ``a_i``: zero, constant or chosen random parts are refused. What this cannot see
    is the first part's error (a malformed ``b_i``): that is what cut-and-choose is for."""
    sp = _sealapi_params(params)
    expected = relin_key_crs(params, crs_seed)
    components = relin_key_polys(context)
    if len(components) != len(expected):
        raise CryptoError(
            f"relinearisation keys have {len(components)} components, {params.name} needs "
            f"{len(expected)}"
        )
    for i, (polys, a_i) in enumerate(zip(components, expected, strict=True)):
        if polys.shape != (2, len(sp.key_primes), sp.poly_modulus_degree):
            raise CryptoError(f"relinearisation key component {i} has shape {polys.shape}")
        if not np.array_equal(polys[1], a_i):
            raise CryptoError(
                f"relinearisation key component {i}: its random part is not the common "
                "polynomial a_i for this server (a zero, constant or chosen a_i is refused)"
            )
        if not polys[0].any():
            raise CryptoError(f"relinearisation key component {i}: its first part is zero")
