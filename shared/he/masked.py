"""The masked comparison protocol (DESIGN §3a) in integers, without any cryptography in it.

Units are euro cents. For a household with ``n`` months in the period, the rule's HE plan gives
an integer total threshold ``X`` (SVB's secret) and UWV an integer total ``S``; eligible iff
``S < X``.

- SVB encrypts ``X`` (BFV, integers mod a ~56-bit prime ``t``), after checking that its
  monthly value lies in the public band ``|X/n| ≤ 2**20``;
- UWV clamps ``S' = clamp(S, −B − 1, B)`` (``B = 24·2**20``, so every threshold lies in
  ``[−B, B]``) and evaluates slot-wise ``v = Enc(X)·2r + (e − r·(2S' + 1))``, i.e.::

      v = r·(2d − 1) + e,   d = X − S'

  with a fresh mask ``r = ⌊2**U(0, L)⌋ ∈ [1, 2**L)`` (log-uniform, from ``secrets``) and
  ``e`` uniform in ``(−r, r)``;
- SVB decrypts and keeps the sign: eligible iff ``v > 0``.

Why exact: ``d`` is an integer, so ``|2d − 1| ≥ 1`` and ``|e| < r`` cannot flip the sign;
``S < X ⇔ S' < X ⇔ d ≥ 1`` for every integer ``S`` (clamping never changes a decision, as in
strict mode). ``|v| < 2**L · (4B + 4) < t/2`` (checked by :class:`MaskedParams`), so nothing
wraps modulo ``t``. Households exactly at the threshold and a cent either side are decided
exactly.

What SVB learns beyond the bit (docs/he.md, measured by tests): ``|v| ≈ r·|2d − 1|`` with ``r``
unknown in ``[1, 2**L)``, i.e. the distance within a factor ``2**L``, capped by the clamp.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import InputError, IntegrityError
from shared.he.params import MASKED_TOTAL_BAND_CENTS, MaskedParams

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
RandomBytes = Callable[[int], bytes]

THRESHOLD_BAND_CENTS: Final = 2**20
"""Monthly thresholds lie in [−2**20, 2**20] cents (±EUR 10,485.76): every norm is below it
and SVB's known income is capped at EUR 10,000. Public: both sides know it."""

MAX_MONTHS: Final = 24
TOTAL_BAND_CENTS: Final = MASKED_TOTAL_BAND_CENTS
"""``B``: every total threshold ``X`` lies in ``[−B, B]``."""


def _uniform(random_bytes: RandomBytes, count: int) -> FloatArray:
    """``count`` floats uniform in [0, 1) from a cryptographic byte source."""
    raw = np.frombuffer(random_bytes(8 * count), dtype=np.uint64)
    return (raw >> np.uint64(11)).astype(np.float64) / float(2**53)


# --- SVB side -----------------------------------------------------------------------------


def encode_thresholds(total_thresholds_cents: IntArray, months: int) -> IntArray:
    """The slot values SVB encrypts: the integer total thresholds, checked against the band.

    A rule comparing with ``<=`` is handled by the caller passing ``X + 1`` (integers).
    """
    if not 1 <= months <= MAX_MONTHS:
        raise InputError(f"a period of {months} months is outside 1..{MAX_MONTHS}")
    x = np.asarray(total_thresholds_cents)
    if x.ndim != 1 or x.dtype.kind not in "iu":
        raise InputError(f"thresholds must be a 1-D integer array, got {x.dtype} {x.shape}")
    if x.dtype.kind == "u":
        x = np.minimum(x, np.uint64(months * THRESHOLD_BAND_CENTS + 1))
    x = x.astype(np.int64)
    bad = np.flatnonzero(np.abs(x) > months * THRESHOLD_BAND_CENTS)
    if bad.size:
        raise InputError(
            f"monthly threshold {int(x[bad[0]]) / months:.2f} cents at position {int(bad[0])} "
            f"is outside the band ±{THRESHOLD_BAND_CENTS}"
        )
    return x


@dataclass(frozen=True, slots=True)
class SlotDecisions:
    """Decisions for one chunk: ``eligible[i]`` is meaningful only where ``valid[i]``."""

    eligible: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]


def max_abs_value(params: MaskedParams) -> int:
    """Largest |v| an honest server can produce: ``r < 2**L`` times ``4B + 4``."""
    return (4 * TOTAL_BAND_CENTS + 4) << params.mask_log2_range


def decide(values: IntArray, params: MaskedParams) -> SlotDecisions:
    """Decrypted values → decisions; 0 and values beyond the honest range are invalid."""
    v = np.asarray(values, dtype=np.int64)
    valid = (v != 0) & (np.abs(v) < max_abs_value(params))
    return SlotDecisions(eligible=v > 0, valid=valid)


def integrity_error(slot: int, value: int) -> IntegrityError:
    return IntegrityError(
        f"result slot {slot} decrypted to {value}, outside the documented range of an honest "
        "evaluation; no decision is taken for this household"
    )


# --- UWV side -----------------------------------------------------------------------------


def clamp_totals(totals_cents: IntArray) -> IntArray:
    """``S' = clamp(S, −B − 1, B)``: never changes a decision, caps what ``|v|`` can say."""
    s = np.asarray(totals_cents)
    if s.ndim != 1 or s.dtype.kind not in "iu":
        raise InputError(f"totals must be a 1-D integer array, got {s.dtype} {s.shape}")
    if s.dtype.kind == "u":
        s = np.minimum(s, np.uint64(TOTAL_BAND_CENTS))
    return np.clip(s.astype(np.int64), -TOTAL_BAND_CENTS - 1, TOTAL_BAND_CENTS)


@dataclass(frozen=True, slots=True)
class MaskOperands:
    """The plaintext operands of ``ct·multiply + add`` (``multiply = 2r``,
    ``add = e − r·(2S' + 1)``); ``masks`` is ``r`` (for tests and the leakage report)."""

    multiply: IntArray
    add: IntArray
    masks: IntArray


def mask_operands(
    totals_cents: IntArray,
    params: MaskedParams,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> MaskOperands:
    """Fresh per-slot masks and noise for one chunk of household totals."""
    s = clamp_totals(totals_cents)
    count = len(s)
    r = np.floor(np.exp2(_uniform(random_bytes, count) * params.mask_log2_range)).astype(np.int64)
    r = np.clip(r, 1, (1 << params.mask_log2_range) - 1)
    raw = np.frombuffer(random_bytes(8 * count), dtype=np.uint64)
    e = (raw % (2 * r - 1).astype(np.uint64)).astype(np.int64) - (r - 1)
    return MaskOperands(multiply=2 * r, add=e - r * (2 * s + 1), masks=r)


def plaintext_decisions(
    total_thresholds_cents: IntArray, totals_cents: IntArray
) -> npt.NDArray[np.bool_]:
    """The oracle: ``S < X`` in integers."""
    x = np.asarray(total_thresholds_cents, dtype=np.int64)
    out: npt.NDArray[np.bool_] = np.asarray(totals_cents, dtype=np.int64) < x
    return out
