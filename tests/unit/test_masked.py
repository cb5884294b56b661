"""The masked protocol: exact decisions, the precision edge, and what each side holds."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import CryptoError, InputError
from shared.he.backend import PublicCkksContext, SecretCkksContext, keyless_context_bytes
from shared.he.masked import (
    THRESHOLD_BAND_CENTS,
    decide,
    encode_thresholds,
    mask_operands,
    max_abs_value,
)
from shared.he.params import MASKED_N8192, MAX_MODULUS_BITS_128, parameter_set

P = MASKED_N8192


def _run(
    secret: SecretCkksContext,
    monthly_t: np.ndarray,
    totals: np.ndarray,
    months: int,
    random_bytes=None,
) -> np.ndarray:  # type: ignore[no-untyped-def]
    server = PublicCkksContext(secret.public_bytes_for_masked(), P.name)
    kwargs = {} if random_bytes is None else {"random_bytes": random_bytes}
    ops = mask_operands(totals, months, P, **kwargs)
    out = server.masked_affine(
        secret.encrypt(encode_thresholds(monthly_t * months, months)),
        ops.subtract,
        ops.multiply,
        ops.add,
    )
    values = secret.decrypt(out)
    result = decide(values, months, P)
    assert result.valid.all()
    return result.eligible


@pytest.mark.parametrize("months", [1, 7, 12, 24])
def test_exact_at_and_around_the_threshold(secret_context: SecretCkksContext, months: int) -> None:
    rng = np.random.default_rng(months)
    t = rng.integers(-THRESHOLD_BAND_CENTS, THRESHOLD_BAND_CENTS, 4096)
    base = t * months
    # exactly at, one cent of total either side, one cent of monthly average either side,
    # far away, and below/above the band (clamped)
    offsets = np.array([0, -1, 1, -months, months, -(10**6), 10**6, -(10**10), 10**10])
    totals = base + offsets[np.arange(4096) % len(offsets)]
    got = _run(secret_context, t, totals, months)
    assert (got == (totals < months * t)).all()


def test_band_edges_and_zero_income(secret_context: SecretCkksContext) -> None:
    months = 12
    t = np.array([THRESHOLD_BAND_CENTS, -THRESHOLD_BAND_CENTS, 0, 0, 0, 1, -1])
    totals = np.array([12 * THRESHOLD_BAND_CENTS - 1, -12 * THRESHOLD_BAND_CENTS, 0, -1, 1, 0, 0])
    got = _run(secret_context, t, totals, months)
    assert got.tolist() == (totals < months * t).tolist()


def test_precision_edge_worst_case_masks(secret_context: SecretCkksContext) -> None:
    """Smallest mask next to the largest, smallest distance next to the largest (the cliff)."""
    months = 24
    slots = P.slots
    t = np.where(np.arange(slots) % 2 == 0, THRESHOLD_BAND_CENTS, -THRESHOLD_BAND_CENTS)
    # even slots: one cent of total below the threshold (smallest distance);
    # odd slots: the largest distance the band allows
    totals = np.where(np.arange(slots) % 2 == 0, months * t - 1, 10**12)
    masks = iter([0.0, 1.0 - 2**-53] * slots)

    def extreme(n: int) -> bytes:
        # u = 0 (mask 1) on even slots, u -> 1 (mask 2**24) on odd slots, for masks and noise
        count = n // 8
        vals = np.array([next(masks) for _ in range(count)])
        return (vals * 2**53).astype(np.uint64).__lshift__(np.uint64(11)).tobytes()

    got = _run(secret_context, t, totals, months, random_bytes=extreme)
    assert (got == (totals < months * t)).all()


def test_masks_are_fresh_per_slot_and_log_uniform() -> None:
    ops = mask_operands(np.zeros(4096, dtype=np.int64), 12, P)
    logs = np.log2(ops.multiply)
    assert logs.min() >= 0 and logs.max() < P.mask_log2_range
    assert len(np.unique(ops.multiply)) == 4096
    # log-uniform: each quarter of the exponent range holds about a quarter of the masks
    quarters = np.histogram(logs, bins=4, range=(0, P.mask_log2_range))[0]
    assert (quarters > 800).all()
    assert np.abs(ops.add).max() <= 1 / (8 * 12)


def test_out_of_band_threshold_is_refused() -> None:
    with pytest.raises(InputError, match="position 1"):
        encode_thresholds(np.array([0, THRESHOLD_BAND_CENTS + 1]), 1)
    with pytest.raises(InputError, match="position 0"):
        encode_thresholds(np.array([-12 * THRESHOLD_BAND_CENTS - 1]), 12)
    assert encode_thresholds(np.array([7]), 2).tolist() == [3.5]


def test_values_outside_the_honest_range_are_integrity_errors() -> None:
    values = np.array([5.0, -5.0, 0.0, 1e-9, max_abs_value(P) * 2, np.nan, np.inf])
    result = decide(values, 12, P)
    assert result.valid.tolist() == [True, True, False, False, False, False, False]


def test_server_context_holds_no_secret_key(secret_context: SecretCkksContext) -> None:
    public = secret_context.public_bytes_for_masked()
    assert len(public) < 1000  # parameters only: no public, relinearisation or Galois keys
    server = PublicCkksContext(public, P.name)
    assert server.holds_secret_key is False
    assert public == keyless_context_bytes(P)


def test_context_with_secret_key_is_refused(secret_context: SecretCkksContext) -> None:
    with pytest.raises(CryptoError, match="secret key"):
        PublicCkksContext(secret_context.secret_bytes(), P.name)


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x00" * 100])
def test_corrupt_context_is_refused(data: bytes) -> None:
    with pytest.raises(CryptoError, match="does not parse"):
        PublicCkksContext(data, P.name)


def test_unknown_parameter_set_is_refused(secret_context: SecretCkksContext) -> None:
    with pytest.raises(CryptoError, match="unknown parameter set"):
        PublicCkksContext(secret_context.public_bytes_for_masked(), "ckks-tiny")


@pytest.mark.parametrize("mangle", ["truncate", "flip", "empty", "huge"])
def test_corrupt_ciphertexts_are_refused(secret_context: SecretCkksContext, mangle: str) -> None:
    server = PublicCkksContext(secret_context.public_bytes_for_masked(), P.name)
    ct = secret_context.encrypt(np.zeros(4, dtype=np.float64))
    bad = {
        "truncate": ct[: len(ct) // 2],
        "flip": ct[:10] + bytes([ct[10] ^ 0xFF]) + ct[11:40],
        "empty": b"",
        "huge": b"\x00" * (5 * 1024 * 1024),
    }[mangle]
    z = np.zeros(4)
    with pytest.raises(CryptoError):
        server.masked_affine(bad, z, z + 1, z)


def test_slot_count_mismatch_is_refused(secret_context: SecretCkksContext) -> None:
    server = PublicCkksContext(secret_context.public_bytes_for_masked(), P.name)
    ct = secret_context.encrypt(np.zeros(4, dtype=np.float64))
    with pytest.raises(CryptoError, match="4 slots"):
        server.masked_affine(ct, np.zeros(5), np.ones(5), np.zeros(5))


def test_parameter_sets_are_128_bit_secure() -> None:
    params = parameter_set(P.name)
    assert params.modulus_bits <= MAX_MODULUS_BITS_128[params.poly_modulus_degree]
    assert params.depth >= 1
