"""Strict mode: exact decisions against the integer oracle, refusals, integrity errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import CryptoError, InputError, IntegrityError
from shared.he import strict
from shared.he.backend import PublicBfvContext, SecretBfvContext
from shared.he.masked import THRESHOLD_BAND_CENTS
from shared.he.params import (
    FLOOD_STATISTICAL_BITS,
    MIN_NOISE_MARGIN_BITS,
    STRICT_BFV_N8192,
    STRICT_BFV_N16384,
    BfvParams,
)
from shared.he.strict import TOTAL_BAND_CENTS

# The smallest set with enough depth: keys in ~0.1 s, one chunk in well under a second.
PARAMS = STRICT_BFV_N8192


@pytest.fixture(scope="module")
def secret() -> SecretBfvContext:
    return SecretBfvContext.generate(PARAMS)


@pytest.fixture(scope="module")
def public(secret: SecretBfvContext) -> PublicBfvContext:
    return PublicBfvContext(secret.public_bytes(), PARAMS.name)


def edge_cases(months: int) -> tuple[np.ndarray, np.ndarray]:
    """Total thresholds and totals at, one cent around, and far from the threshold; band edges."""
    b = THRESHOLD_BAND_CENTS
    monthly = [-b, -b + 1, -1, 0, 1, 150_107, 205_348, b - 1, b]
    # Total thresholds X = n·T, and X not a multiple of n (a rule with <= passes X + 1).
    totals_x = {months * t for t in monthly} | {months * t + 1 for t in monthly if t < b}
    x_rows: list[int] = []
    s_rows: list[int] = []
    for x in sorted(totals_x):
        for s in (x - 1, x, x + 1, x - 2, x + 2, 0, -1, 1, -(10**12), 10**12):
            x_rows.append(x)
            s_rows.append(s)
    for s in (
        -TOTAL_BAND_CENTS - 2,
        -TOTAL_BAND_CENTS - 1,
        -TOTAL_BAND_CENTS,
        TOTAL_BAND_CENTS,
        TOTAL_BAND_CENTS + 1,
        np.iinfo(np.int64).min,
        np.iinfo(np.int64).max,
    ):
        for x in (-months * b, 0, months * b):
            x_rows.append(x)
            s_rows.append(int(s))
    return np.array(x_rows, dtype=np.int64), np.array(s_rows, dtype=np.int64)


def run(
    secret: SecretBfvContext, public: PublicBfvContext, t: np.ndarray, months: int, s: np.ndarray
) -> strict.StrictDecisions:
    cts = strict.encrypt_thresholds(secret, t, months)
    result = strict.evaluate_chunk(public, cts, s)
    return strict.decrypt_decisions(secret, result, len(t))


@pytest.mark.parametrize("months", [1, 7, 24])
def test_edges_match_the_integer_oracle(
    secret: SecretBfvContext, public: PublicBfvContext, months: int
) -> None:
    t, s = edge_cases(months)
    got = run(secret, public, t, months, s)
    assert got.valid.all()
    np.testing.assert_array_equal(got.eligible, strict.plaintext_decisions(t, s))


def test_random_full_chunk_matches_the_oracle(
    secret: SecretBfvContext, public: PublicBfvContext
) -> None:
    rng = np.random.default_rng(20260101)
    months = 12
    n = PARAMS.slots
    t = rng.integers(-THRESHOLD_BAND_CENTS * months, THRESHOLD_BAND_CENTS * months + 1, n)
    # Most households close to their threshold (where a wrong bit would show), some anywhere.
    s = t + rng.integers(-3, 4, n)
    far = rng.random(n) < 0.2
    s[far] = rng.integers(-(2**40), 2**40, int(far.sum()))
    got = run(secret, public, t, months, s)
    assert got.valid.all()
    np.testing.assert_array_equal(got.eligible, strict.plaintext_decisions(t, s))


def test_encoding_is_exact_for_every_integer_in_and_around_the_band() -> None:
    """The offset/clamp encoding alone (no encryption) agrees with ``S < n·T`` everywhere."""
    rng = np.random.default_rng(7)
    for months in (1, 2, 23, 24):
        band = THRESHOLD_BAND_CENTS * months
        t = rng.integers(-band, band + 1, 20_000)
        t[:4] = [-band, -band + 1, band - 1, band]
        s = np.concatenate([t + rng.integers(-2, 3, 20_000), rng.integers(-(2**62), 2**62, 20_000)])
        t = np.concatenate([t, t])
        a = strict.encode_total_thresholds(t, months)
        e = strict.encode_totals(s)
        assert a.min() >= 1 and a.max() <= strict.OFFSET_LIMIT < 2**PARAMS.compared_bits
        assert e.min() >= 0 and e.max() <= strict.OFFSET_LIMIT
        np.testing.assert_array_equal(e < a, strict.plaintext_decisions(t, s))


def test_noise_margin_is_at_least_the_documented_minimum(
    secret: SecretBfvContext, public: PublicBfvContext
) -> None:
    t, s = edge_cases(24)
    result = strict.evaluate_chunk(public, strict.encrypt_thresholds(secret, t, 24), s)
    measured = secret.unsafe_noise_budget_bits(result)
    assert measured >= MIN_NOISE_MARGIN_BITS
    # The static estimate that refuses parameters must not be optimistic.
    assert measured >= PARAMS.estimated_remaining_budget_bits


def test_server_context_holds_no_secret_key(
    secret: SecretBfvContext, public: PublicBfvContext
) -> None:
    assert not public.holds_secret_key
    with pytest.raises(CryptoError, match="secret key"):
        PublicBfvContext(secret.secret_bytes(), PARAMS.name)


def test_server_refuses_context_without_relin_keys_or_with_other_parameters(
    secret: SecretBfvContext,
) -> None:
    import tenseal as ts  # test-only: builds a context the facade would never produce

    ctx = ts.context_from(secret.public_bytes())
    bare = ctx.serialize(save_public_key=True, save_secret_key=False, save_relin_keys=False)
    with pytest.raises(CryptoError, match="relinearisation"):
        PublicBfvContext(bare, PARAMS.name)
    with pytest.raises(CryptoError, match="parameters"):
        PublicBfvContext(secret.public_bytes(), STRICT_BFV_N16384.name)
    with pytest.raises(CryptoError, match="does not parse"):
        PublicBfvContext(b"not a context", PARAMS.name)


def test_tampered_result_is_an_integrity_error_not_a_decision(
    secret: SecretBfvContext, public: PublicBfvContext
) -> None:
    t = np.array([100, 100, 100, 100], dtype=np.int64)
    s = np.array([0, 10**9, 0, 10**9], dtype=np.int64)
    cts = strict.encrypt_thresholds(secret, t, 1)
    honest = strict.evaluate_chunk(public, cts, s)
    # A broken server adds 2 to slot 1 and 5 to slot 2. (Turning 1 into 0 would pass: the check
    # catches corruption, not a server that deliberately computes the other bit.)
    bad = public.load(honest, 4).add_plain(np.array([0, 2, 5, 0], dtype=np.int64)).serialize()
    got = strict.decrypt_decisions(secret, bad, 4)
    np.testing.assert_array_equal(got.valid, [True, False, False, True])
    errors = got.integrity_errors()
    assert [type(e) for e in errors] == [IntegrityError, IntegrityError]
    assert "slot 1" in str(errors[0]) and "slot 2" in str(errors[1])
    # Flipped bytes never become a decision: the ciphertext is refused or the slots invalid.
    broken = bytearray(honest)
    for i in range(200, len(broken), 997):
        broken[i] ^= 0x5A
    try:
        flipped = strict.decrypt_decisions(secret, bytes(broken), 4)
    except CryptoError:
        return
    assert not flipped.valid.all() or (flipped.eligible == [True, False, True, False]).all()


def test_malformed_chunks_are_refused(secret: SecretBfvContext, public: PublicBfvContext) -> None:
    t = np.array([1, 2, 3], dtype=np.int64)
    cts = strict.encrypt_thresholds(secret, t, 3)
    assert len(cts) == PARAMS.ciphertexts_per_chunk == 39
    with pytest.raises(CryptoError, match="39 ciphertexts"):
        strict.evaluate_chunk(public, cts[:-1], np.zeros(3, dtype=np.int64))
    with pytest.raises(CryptoError, match="slots"):
        strict.evaluate_chunk(public, cts, np.zeros(4, dtype=np.int64))
    result = strict.evaluate_chunk(public, cts, np.zeros(3, dtype=np.int64))
    with pytest.raises(CryptoError, match="slots"):
        strict.decrypt_decisions(secret, result, 5)
    with pytest.raises(InputError, match="outside the band"):
        strict.encrypt_thresholds(secret, np.array([THRESHOLD_BAND_CENTS + 1]), 1)
    with pytest.raises(InputError, match="outside the band"):
        strict.encrypt_thresholds(secret, np.array([-24 * THRESHOLD_BAND_CENTS - 1]), 24)
    with pytest.raises(InputError, match="months"):
        strict.encrypt_thresholds(secret, t, 25)
    with pytest.raises(InputError, match="integer"):
        strict.encode_totals(np.array([1.5]))
    # Unsigned input is capped, never wrapped to a negative value.
    huge = np.array([2**64 - 1, 2**63], dtype=np.uint64)
    assert (strict.encode_totals(huge) == strict.OFFSET_LIMIT).all()
    with pytest.raises(InputError, match="outside the band"):
        strict.encode_total_thresholds(np.array([2**64 - 5], dtype=np.uint64), 1)


def test_bad_parameters_are_refused_with_the_reason() -> None:
    with pytest.raises(CryptoError, match="128-bit"):
        BfvParams("x", 8192, 65537, (60, 60, 60, 60), 2, 13)
    with pytest.raises(CryptoError, match="noise budget"):
        BfvParams("x", 8192, 65537, (54, 54, 54, 56), 2, 13)
    with pytest.raises(CryptoError, match="batching"):
        BfvParams("x", 16384, 65539, (60, 60, 60, 60, 50), 2, 13)
    with pytest.raises(CryptoError, match="flooding noise only"):
        BfvParams("x", 16384, 65537, (60, 60, 60, 60, 50), 2, 13, flood_multiplications=5)
    with pytest.raises(CryptoError, match="noise budget"):
        BfvParams("x", 16384, 65537, (60, 60, 60, 60, 50), 2, 13, flood_multiplications=11)
    too_narrow = BfvParams("narrow", 8192, 65537, (43, 43, 44, 44, 44), 2, 12)
    with pytest.raises(CryptoError, match="24 bits"):
        strict.encrypt_thresholds(SecretBfvContext.generate(too_narrow), np.array([1]), 1)


@pytest.mark.slow
def test_default_set_full_chunk_exact_with_wide_margin() -> None:
    params = STRICT_BFV_N16384
    sk = SecretBfvContext.generate(params)
    pk = PublicBfvContext(sk.public_bytes(), params.name)
    rng = np.random.default_rng(3)
    t = 24 * rng.integers(-THRESHOLD_BAND_CENTS, THRESHOLD_BAND_CENTS + 1, params.slots)
    s = t + rng.integers(-2, 3, params.slots)
    result = strict.evaluate_chunk(pk, strict.encrypt_thresholds(sk, t, 24), s)
    got = strict.decrypt_decisions(sk, result, params.slots)
    assert got.valid.all()
    np.testing.assert_array_equal(got.eligible, strict.plaintext_decisions(t, s))
    measured = sk.unsafe_noise_budget_bits(result)
    assert measured >= params.estimated_remaining_budget_bits >= MIN_NOISE_MARGIN_BITS
    # Flooding: the result's noise is at least 2**40 times what the circuit alone leaves
    # (whose budget the N=8192 test shows the estimate does not overstate).
    assert measured <= params.estimated_circuit_budget_bits - FLOOD_STATISTICAL_BITS


def test_flooding_uses_the_given_randomness_and_keeps_the_message_zero() -> None:
    params = STRICT_BFV_N16384
    sk = SecretBfvContext.generate(params)
    pk = PublicBfvContext(sk.public_bytes(), params.name)
    calls: list[int] = []

    def counting(n: int) -> bytes:
        calls.append(n)
        return bytes(n)  # all-zero "randomness": every flooding factor is −t//2

    zero = strict.flooded_zero(pk, 8, counting)
    assert len(calls) == params.flood_multiplications
    np.testing.assert_array_equal(sk.decrypt(zero.serialize()), np.zeros(8))
    assert strict.flooded_zero(pk, 8, lambda n: bytes(n)).serialize() != zero.serialize()


def test_upload_that_is_not_one_hot_gives_random_slots_not_digits(
    secret: SecretBfvContext, public: PublicBfvContext
) -> None:
    """A dishonest SVB encoding weights (1, 2, 4) to read UWV's digits gets only noise."""
    count = 64
    x = np.zeros(count, dtype=np.int64)
    s = np.arange(count, dtype=np.int64) * 1_000_003
    honest = strict.encrypt_thresholds(secret, x, 12)
    per_digit = (1 << PARAMS.digit_bits) - 1
    weights = np.zeros(count, dtype=np.int64)
    weights[::2] = 1  # odd slots keep a valid encoding, even slots get weights 1, 2, 4
    forged = list(honest)
    for d in range(per_digit):
        idx = 6 * per_digit + d
        valid_part = secret.decrypt(honest[idx])
        forged[idx] = secret.encrypt(np.where(weights == 1, 1 << d, valid_part))
    deterministic = random.Random(1).randbytes  # randomness is passed in: reproducible test
    result = strict.evaluate_chunk(public, forged, s, deterministic)
    got = strict.decrypt_decisions(secret, result, count)
    assert not got.valid[::2].any()
    assert got.valid[1::2].all()
    np.testing.assert_array_equal(got.eligible[1::2], strict.plaintext_decisions(x, s)[1::2])
    assert len(got.integrity_errors()) == count // 2


@settings(max_examples=500, deadline=None)
@given(
    months=st.integers(1, strict.MAX_MONTHS),
    monthly=st.integers(-THRESHOLD_BAND_CENTS, THRESHOLD_BAND_CENTS),
    extra=st.integers(0, 23),
    total=st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-TOTAL_BAND_CENTS - 3, TOTAL_BAND_CENTS + 3),
    ),
    near=st.integers(-2, 2),
    use_near=st.booleans(),
)
def test_encoding_property(
    months: int, monthly: int, extra: int, total: int, near: int, use_near: bool
) -> None:
    """For any integer total and any in-band threshold, ``s < a`` iff ``S < X``."""
    x = max(
        -months * THRESHOLD_BAND_CENTS, min(months * THRESHOLD_BAND_CENTS, months * monthly + extra)
    )
    s = x + near if use_near else total
    a = strict.encode_total_thresholds(np.array([x]), months)
    e = strict.encode_totals(np.array([s], dtype=np.int64))
    assert 0 <= int(e[0]) <= strict.OFFSET_LIMIT and 1 <= int(a[0]) <= strict.OFFSET_LIMIT
    assert bool(e[0] < a[0]) == (s < x)
    assert int(a[0]).bit_length() <= PARAMS.compared_bits


def test_secret_context_round_trips_through_its_seed(
    secret: SecretBfvContext, public: PublicBfvContext
) -> None:
    """SVB's key store keeps the seed (issue 14): the set derived again decrypts old results."""
    x = np.array([10, -10], dtype=np.int64)
    s = np.array([9, -10], dtype=np.int64)
    result = strict.evaluate_chunk(public, strict.encrypt_thresholds(secret, x, 1), s)
    restored = SecretBfvContext(PARAMS, secret.seed)
    assert restored.public_bytes() == secret.public_bytes()
    np.testing.assert_array_equal(strict.decrypt_decisions(restored, result, 2).eligible, [1, 0])
    with pytest.raises(CryptoError, match="32 bytes"):
        SecretBfvContext(PARAMS, b"\x00" * 16)
