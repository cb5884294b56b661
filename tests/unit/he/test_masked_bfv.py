"""Masked mode on BFV: exact decisions, the edges of the parameter set, and what the server
refuses (keys without the common ``a``, ciphertexts of the wrong shape or level)."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal.sealapi as sealapi

from shared.errors import CryptoError
from shared.he.backend import PublicMaskedContext, SecretMaskedContext, _seal
from shared.he.backend._masked import crs_a, seal_params
from shared.he.masked import (
    THRESHOLD_BAND_CENTS,
    TOTAL_BAND_CENTS,
    decide,
    encode_thresholds,
    mask_operands,
    max_abs_value,
)
from shared.he.params import MASKED_DEFAULT, MAX_MODULUS_BITS_128, MaskedParams

P = MASKED_DEFAULT


@pytest.fixture(scope="module")
def server(secret_context: SecretMaskedContext) -> PublicMaskedContext:
    return PublicMaskedContext(secret_context.public_bytes(), P.name)


def _run(
    secret: SecretMaskedContext,
    server: PublicMaskedContext,
    thresholds: np.ndarray,
    totals: np.ndarray,
    months: int,
    random_bytes=None,  # type: ignore[no-untyped-def]
) -> np.ndarray:
    kwargs = {} if random_bytes is None else {"random_bytes": random_bytes}
    ops = mask_operands(totals, P, **kwargs)
    parsed = server.parse(secret.encrypt(encode_thresholds(thresholds, months)))
    values = secret.decrypt(server.evaluate(parsed, ops.multiply, ops.add, **kwargs))
    result = decide(values[: len(totals)], P)
    assert result.valid.all()
    return result.eligible


@pytest.mark.parametrize("months", [1, 12, 24])
def test_exact_at_and_around_the_threshold(
    secret_context: SecretMaskedContext, server: PublicMaskedContext, months: int
) -> None:
    rng = np.random.default_rng(months)
    n = 4096
    x = rng.integers(-THRESHOLD_BAND_CENTS, THRESHOLD_BAND_CENTS, n) * months
    offsets = np.array([0, -1, 1, -months, months, -(10**6), 10**6, -(10**12), 10**12])
    totals = x + offsets[np.arange(n) % len(offsets)]
    got = _run(secret_context, server, x, totals, months)
    assert (got == (totals < x)).all()


def test_band_edges_and_worst_case_masks(
    secret_context: SecretMaskedContext, server: PublicMaskedContext
) -> None:
    b = 24 * THRESHOLD_BAND_CENTS
    x = np.array([b, -b, b, -b, 0, 0, 0, 1, -1])
    totals = np.array([-(2**62), 2**62, b - 1, -b - 1, -1, 0, 1, 0, 0])
    # All-ones randomness: the largest mask 2**L − 1 and the largest |e| in every slot.
    got = _run(secret_context, server, x, totals, 24, random_bytes=lambda k: b"\xff" * k)
    assert (got == (totals < x)).all()


def test_values_stay_below_half_the_plain_modulus(server: PublicMaskedContext) -> None:
    assert max_abs_value(P) < server.plain_modulus // 2
    assert TOTAL_BAND_CENTS == 24 * THRESHOLD_BAND_CENTS


def test_refused_slots_decrypt_to_zero(
    secret_context: SecretMaskedContext, server: PublicMaskedContext
) -> None:
    totals = np.arange(10, dtype=np.int64)
    ops = mask_operands(totals, P)
    ops.multiply[[2, 5]] = 0
    ops.add[[2, 5]] = 0
    parsed = server.parse(secret_context.encrypt(np.full(10, 7, dtype=np.int64)))
    values = secret_context.decrypt(server.evaluate(parsed, ops.multiply, ops.add))
    assert values[2] == 0 and values[5] == 0 and (values[10:] == 0).all()
    assert not decide(values[:10], P).valid[[2, 5]].any()


def test_flood_buries_the_honest_noise(
    secret_context: SecretMaskedContext, server: PublicMaskedContext
) -> None:
    """The honest bound the parameter set assumes (2**72) holds: measured on an unflooded
    answer. And the flooded answer still decrypts (budget > 0)."""
    sp = seal_params(P)
    ct = server.parse(secret_context.encrypt(np.arange(P.slots, dtype=np.int64))).ciphertext
    ops = mask_operands(np.zeros(P.slots, dtype=np.int64), P)
    ev = sealapi.Evaluator(sp.context)
    enc = sealapi.BatchEncoder(sp.context)
    plain = sealapi.Plaintext()
    enc.encode(ops.multiply.tolist(), plain)
    out = sealapi.Ciphertext()
    ev.multiply_plain(ct, plain, out)
    budget = secret_context.unsafe_noise_budget_bits(_seal.save_bytes(out))
    q_bits = sum(p.bit_length() for p in sp.data_primes)
    noise_log2 = q_bits - sp.plain_modulus.bit_length() - budget
    assert noise_log2 <= P.honest_noise_log2
    result = server.evaluate(server.parse(_seal.save_bytes(ct)), ops.multiply, ops.add)
    assert secret_context.unsafe_noise_budget_bits(result) > 0


def test_parameter_set_checks() -> None:
    assert P.modulus_bits <= MAX_MODULUS_BITS_128[P.poly_modulus_degree]
    assert P.hidden_noise_bits >= 40
    with pytest.raises(CryptoError, match="t/2"):
        MaskedParams("x", 16384, (60, 60, 60, 60, 60), 56, 29, 72, 2, 2)
    with pytest.raises(CryptoError, match="flooding cannot hide"):
        MaskedParams("x", 8192, (60, 60, 60, 38), 56, 27, 72, 2, 2)
    with pytest.raises(CryptoError, match="128-bit"):
        MaskedParams("x", 8192, (60, 60, 60, 60), 56, 27, 72, 2, 2)


def test_secret_key_round_trip(secret_context: SecretMaskedContext) -> None:
    again = SecretMaskedContext.from_secret_bytes(secret_context.secret_bytes(), P.name)
    assert again.public_bytes() == secret_context.public_bytes()
    ct = secret_context.encrypt(np.array([1, -2, 3], dtype=np.int64))
    assert again.decrypt(ct)[:3].tolist() == [1, -2, 3]
    with pytest.raises(CryptoError):
        SecretMaskedContext.from_secret_bytes(b"AIOMASK1\x05", P.name)


# --- what the server refuses ----------------------------------------------------------------


def _public_key_with(secret: SecretMaskedContext, change: str) -> bytes:
    sp = seal_params(P)
    pk = sealapi.PublicKey()
    _seal.load_into(pk, sp.context, secret.public_bytes(), "pk")
    polys = _seal.raw_polys(pk.data())
    if change == "a-zero":
        polys[1] = 0
    elif change == "a-constant":
        polys[1] = 12345
    elif change == "a-other-seed":
        polys[1] = crs_a(P, b"another seed")
    elif change == "both-zero":
        polys[:] = 0
    elif change == "p0-zero":
        polys[0] = 0
    return _seal.ciphertext_bytes(list(sp.context.key_parms_id()), True, polys)


@pytest.mark.parametrize("change", ["a-zero", "a-constant", "a-other-seed", "both-zero", "p0-zero"])
def test_degenerate_public_keys_are_refused(
    secret_context: SecretMaskedContext, change: str
) -> None:
    with pytest.raises(CryptoError):
        PublicMaskedContext(_public_key_with(secret_context, change), P.name)


def test_key_for_another_seed_is_refused(secret_context: SecretMaskedContext) -> None:
    with pytest.raises(CryptoError, match="common polynomial"):
        PublicMaskedContext(secret_context.public_bytes(), P.name, crs_seed=b"x" * 32)


@pytest.mark.parametrize("data", [b"", b"garbage" * 100, b"\x5e\xa1" + b"\x00" * 200])
def test_garbage_public_keys_are_refused(data: bytes) -> None:
    with pytest.raises(CryptoError):
        PublicMaskedContext(data, P.name)


def test_unknown_parameter_set_is_refused(secret_context: SecretMaskedContext) -> None:
    with pytest.raises(CryptoError, match="unknown parameter set"):
        PublicMaskedContext(secret_context.public_bytes(), "ckks-masked-n8192")


def _fresh(secret: SecretMaskedContext) -> sealapi.Ciphertext:
    sp = seal_params(P)
    ct = sealapi.Ciphertext()
    _seal.load_into(ct, sp.context, secret.encrypt(np.arange(5, dtype=np.int64)), "ct")
    return ct


def test_wrong_shapes_and_levels_are_refused(
    secret_context: SecretMaskedContext, server: PublicMaskedContext
) -> None:
    sp = seal_params(P)
    ev = sealapi.Evaluator(sp.context)
    low = _fresh(secret_context)
    ev.mod_switch_to_next_inplace(low)
    product = sealapi.Ciphertext()
    ev.multiply(_fresh(secret_context), _fresh(secret_context), product)
    ntt = _fresh(secret_context)
    ev.transform_to_ntt_inplace(ntt)
    for bad, match in [(low, "first level"), (product, "2 polynomials"), (ntt, "NTT|parse")]:
        with pytest.raises(CryptoError, match=match):
            server.parse(_seal.save_bytes(bad))


def test_coefficients_beyond_the_modulus_are_refused(
    secret_context: SecretMaskedContext, server: PublicMaskedContext
) -> None:
    sp = seal_params(P)
    polys = _seal.raw_polys(_fresh(secret_context))
    polys[0, 0, 0] = sp.data_primes[0]
    with pytest.raises(CryptoError, match="does not parse"):
        server.parse(_seal.ciphertext_bytes(list(sp.context.first_parms_id()), False, polys))


def test_oversized_and_garbage_ciphertexts_are_refused(server: PublicMaskedContext) -> None:
    with pytest.raises(CryptoError, match="exceeds"):
        server.parse(b"\x00" * (5 * 1024 * 1024))
    with pytest.raises(CryptoError):
        server.parse(b"\x5e\xa1" + b"\x01" * 64)
