"""The masked comparison protocol (DESIGN §3a), without any cryptography in it.

Units are euro cents per month. For a household ``h`` with ``n`` months in the period, the
rule's HE plan (:mod:`shared.rules.he_plan`) gives an integer total threshold ``n·T_h`` (for
the AIO rule ``n·(N − K)``) and UWV an integer total ``S_h``; eligible iff ``S_h < n·T_h``.

- SVB encrypts its monthly threshold ``T_h`` (the total divided by ``n``);
- UWV computes the monthly average ``I_h = S_h / n`` of its own data, clamps it into the
  public band, and evaluates slot-wise on the ciphertext::

      v_h = r_h · (T_h − I_h − 1/(2n)) + e_h

  with a fresh mask ``r_h = 2**U(0, L)`` (log-uniform, cryptographic randomness) and noise
  ``|e_h| ≤ 1/(8n)``;
- SVB decrypts and keeps the sign: eligible iff ``v_h > 0``.

Why exact: ``S_h`` and ``n·T_h`` are integers, so ``S_h < n·T_h`` iff
``T_h − S_h/n ≥ 1/n``; the ``1/(2n)`` offset moves the comparison point halfway between
the two cases, so ``|T_h − I_h − 1/(2n)| ≥ 1/(2n)`` and neither the noise ``e_h`` nor the
CKKS error (relative error < 3e-3 at L = 24, measured) can flip a sign. Households exactly
at the threshold are therefore decided exactly, not only those a cent away.

What SVB learns beyond the bit (documented in docs/he.md, measured by tests):
``|v_h| / r_h = |T_h − I_h − 1/(2n)| ± 1/(8n)`` with ``r_h`` unknown in ``[1, 2**L)``, so the
distance to the threshold is known only within a factor ``2**L``; clamping caps it at the band.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import InputError, IntegrityError
from shared.he.params import CkksParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RandomBytes = Callable[[int], bytes]

THRESHOLD_BAND_CENTS: Final = 2**20
"""Monthly thresholds lie in [−2**20, 2**20] cents (±EUR 10,485.76): every norm is below it
and SVB's known income is capped at EUR 10,000. Public: both sides know it."""


def _uniform(random_bytes: RandomBytes, count: int) -> FloatArray:
    """``count`` floats uniform in [0, 1) from a cryptographic byte source."""
    raw = np.frombuffer(random_bytes(8 * count), dtype=np.uint64)
    return (raw >> np.uint64(11)).astype(np.float64) / float(2**53)


# --- SVB side -----------------------------------------------------------------------------


def encode_thresholds(total_thresholds_cents: IntArray, months: int) -> FloatArray:
    """Monthly slot values ``T/n`` for integer total thresholds, checked against the band.

    A rule comparing with ``<=`` is handled by the caller passing ``T + 1`` (integers).
    """
    monthly = np.asarray(total_thresholds_cents, dtype=np.int64).astype(np.float64) / months
    bad = np.flatnonzero(np.abs(monthly) > THRESHOLD_BAND_CENTS)
    if bad.size:
        raise InputError(
            f"monthly threshold {monthly[bad[0]]:.2f} cents at position {int(bad[0])} is outside "
            f"the band ±{THRESHOLD_BAND_CENTS}"
        )
    return monthly


@dataclass(frozen=True, slots=True)
class SlotDecisions:
    """Decisions for one chunk: ``eligible[i]`` is meaningful only where ``valid[i]``."""

    eligible: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]


def max_abs_value(params: CkksParams) -> float:
    """Largest |v| an honest server can produce: r < 2**L times the clamped band width."""
    return float(2**params.mask_log2_range) * (2 * THRESHOLD_BAND_CENTS + 3)


def decide(values: FloatArray, months: int, params: CkksParams) -> SlotDecisions:
    """Turn decrypted values into decisions; values outside the documented range are invalid.

    An honest evaluation gives ``|v| ≥ 1/(2n) − 1/(8n) = 3/(8n)`` (minus a CKKS error far
    below it) and ``|v| ≤ max_abs_value``; anything else is an integrity error, never a decision.
    """
    v = np.asarray(values, dtype=np.float64)
    lower = 1.0 / (4.0 * months)
    valid = np.isfinite(v) & (np.abs(v) >= lower) & (np.abs(v) <= max_abs_value(params))
    return SlotDecisions(eligible=v > 0, valid=valid)


def integrity_error(slot: int, value: float) -> IntegrityError:
    return IntegrityError(
        f"result slot {slot} decrypted to {value!r}, outside the documented range of an honest "
        "evaluation; no decision is taken for this household"
    )


# --- UWV side -----------------------------------------------------------------------------


def clamp_monthly_income(totals_cents: IntArray, months: int) -> FloatArray:
    """Monthly average ``S/n`` clamped to one cent outside the public threshold band.

    Clamping never changes a decision (every threshold is inside the band) and caps what the
    masked value can say about incomes far from any norm.
    """
    average = np.asarray(totals_cents, dtype=np.float64) / float(months)
    return np.clip(average, -THRESHOLD_BAND_CENTS - 1.0, THRESHOLD_BAND_CENTS + 1.0)


@dataclass(frozen=True, slots=True)
class MaskOperands:
    """The plaintext operands of ``(ct − subtract) · multiply + add``."""

    subtract: FloatArray
    multiply: FloatArray
    add: FloatArray


def mask_operands(
    totals_cents: IntArray,
    months: int,
    params: CkksParams,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> MaskOperands:
    """Fresh per-slot masks and noise for one chunk of household totals."""
    count = len(totals_cents)
    income = clamp_monthly_income(totals_cents, months)
    subtract = income + 1.0 / (2.0 * months)
    multiply = np.exp2(_uniform(random_bytes, count) * params.mask_log2_range)
    add = (_uniform(random_bytes, count) * 2.0 - 1.0) / (8.0 * months)
    return MaskOperands(subtract=subtract, multiply=multiply, add=add)
