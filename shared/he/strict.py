"""The strict comparison protocol (DESIGN §3a, issue 3): SVB learns the decision bit, nothing else.

Units are euro cents. For a household with ``n`` months, integer total threshold ``X`` (the
rule's ``n·T``, SVB's, secret) and period total ``S`` (UWV's, plaintext to UWV), the decision
is exactly::

    eligible  iff  S < X

Encoding (public, both sides). ``n ≤ 24`` and a monthly threshold ``|X/n| ≤ 2**20`` give
``|X| ≤ B = 24·2**20``. Both sides shift into non-negative integers below ``2**26``::

    a = X + B + 1                      in [1, 2B + 1]     (SVB, encrypted)
    s = clamp(S, −B − 1, B) + B + 1    in [0, 2B + 1]     (UWV, plaintext)

and ``S < X  iff  s < a`` for *every* integer ``S``: inside the clamp band the shift is
the same on both sides; ``S < −B − 1`` clamps to ``s = 0 < a`` (and indeed ``S < X``);
``S > B`` clamps to ``s = 2B + 1 ≥ a`` (and indeed ``S ≥ X``). So households exactly at the
threshold, one cent either side, negative totals and band edges are all decided exactly.

Circuit. ``a`` is split into ``digits`` digits of ``digit_bits`` bits; SVB encrypts each digit
one-hot (``2**digit_bits − 1`` ciphertexts per digit; the zero indicator is implied), batched
over up to ``slots`` households. For a digit whose plaintext value on the server is ``y`` (per
slot), "SVB's digit is greater" and "equal" are *linear* in the encrypted indicators ``h_d``::

    GT = Σ_d h_d·[d > y]        EQ = [y = 0] + Σ_d h_d·([d = y] − [y = 0])

(one plaintext multiplication per term). Digits are combined in a balanced tree,
``GT = GT_hi + EQ_hi·GT_lo`` and ``EQ = EQ_hi·EQ_lo`` (the two GT terms are exclusive, so the
sum is 0 or 1), giving ``[a > s]`` with ``ceil(log2(digits))`` ciphertext multiplications on the
longest path. The result decrypts to exactly 0 or 1; anything else is an integrity error.

Circuit privacy: the result's noise is a function of UWV's plaintext digits and of
intermediate comparison results, and SVB (holding the secret key) can compute that noise. So
before returning, the server adds a fresh public-key encryption of zero (re-randomisation: the
ciphertext components become independent of the uploaded ones) and, where the parameter set
allows (``flood_multiplications``), floods: that encryption of zero is first multiplied by
uniformly random plaintexts, so its noise exceeds the circuit's by ``2**50`` (estimate; tests
measure it). docs/he.md says what that buys and what it does not.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError, InputError, IntegrityError
from shared.he.backend import BfvCiphertext, PublicBfvContext, SecretBfvContext
from shared.he.masked import THRESHOLD_BAND_CENTS
from shared.he.params import BfvParams

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
RandomBytes = Callable[[int], bytes]

MAX_MONTHS: Final = 24
"""Longest reference period (months) a household total may cover."""

TOTAL_BAND_CENTS: Final = MAX_MONTHS * THRESHOLD_BAND_CENTS
"""``B``: every total threshold ``X = n·T`` lies in ``[−B, B]``."""

OFFSET_LIMIT: Final = 2 * TOTAL_BAND_CENTS + 1
"""Largest encoded value on either side (``2B + 1 < 2**26``)."""


# --- encoding (both sides) --------------------------------------------------------------------


def encode_total_thresholds(total_thresholds_cents: IntArray, months: int) -> IntArray:
    """SVB: ``a = X + B + 1`` for integer total thresholds ``X`` (the rule's ``n·T``).

    Checks ``1 ≤ n ≤ 24`` and that the monthly threshold ``X/n`` lies in the public band, which
    bounds ``|X| ≤ B``. (``X`` need not be a multiple of ``n``: a rule comparing with ``<=``
    passes ``X + 1``.)
    """
    if not 1 <= months <= MAX_MONTHS:
        raise InputError(f"a period of {months} months is outside 1..{MAX_MONTHS}")
    x = np.asarray(total_thresholds_cents)
    if x.ndim != 1 or x.dtype.kind not in "iu":
        raise InputError(f"thresholds must be a 1-D integer array, got {x.dtype} {x.shape}")
    if x.dtype.kind == "u":
        # Cap before the cast: uint64 values above 2**63 would wrap to negative thresholds.
        x = np.minimum(x, np.uint64(months * THRESHOLD_BAND_CENTS + 1))
    x = x.astype(np.int64)
    bad = np.flatnonzero(np.abs(x) > months * THRESHOLD_BAND_CENTS)
    if bad.size:
        raise InputError(
            f"total threshold {int(x[bad[0]])} cents at position {int(bad[0])} is outside the "
            f"band ±{months}·{THRESHOLD_BAND_CENTS} for {months} months"
        )
    return x + (TOTAL_BAND_CENTS + 1)


def encode_totals(totals_cents: IntArray) -> IntArray:
    """UWV: ``s = clamp(S, −B − 1, B) + B + 1``; clamping never changes a decision."""
    s = np.asarray(totals_cents)
    if s.ndim != 1 or s.dtype.kind not in "iu":
        raise InputError(f"totals must be a 1-D integer array, got {s.dtype} {s.shape}")
    if s.dtype.kind == "u":
        # Cap before the cast: uint64 totals above 2**63 would wrap to negative incomes.
        s = np.minimum(s, np.uint64(TOTAL_BAND_CENTS))
    clamped = np.clip(s.astype(np.int64), -TOTAL_BAND_CENTS - 1, TOTAL_BAND_CENTS)
    return clamped + (TOTAL_BAND_CENTS + 1)


def _check_capacity(params: BfvParams) -> None:
    if 1 << params.compared_bits <= OFFSET_LIMIT:
        raise CryptoError(
            f"{params.name} compares {params.compared_bits} bits; encoded values reach "
            f"{OFFSET_LIMIT} and need {OFFSET_LIMIT.bit_length()}"
        )


def _digits(values: IntArray, params: BfvParams) -> list[IntArray]:
    """Digits of ``values``, least significant first."""
    mask = (1 << params.digit_bits) - 1
    return [(values >> (params.digit_bits * i)) & mask for i in range(params.digits)]


# --- SVB side ---------------------------------------------------------------------------------


def encrypt_thresholds(
    ctx: SecretBfvContext, total_thresholds_cents: IntArray, months: int
) -> list[bytes]:
    """Encrypt one chunk (at most ``slots`` households) of total thresholds ``X = n·T``.

    Returns ``params.ciphertexts_per_chunk`` serialised ciphertexts: for each digit (least
    significant first) the indicators ``[digit = d]`` for ``d = 1 .. 2**digit_bits − 1``.
    """
    params = ctx.params
    _check_capacity(params)
    a = encode_total_thresholds(total_thresholds_cents, months)
    if not 1 <= len(a) <= params.slots:
        raise InputError(f"a chunk holds 1 to {params.slots} households, got {len(a)}")
    out: list[bytes] = []
    for digit in _digits(a, params):
        for d in range(1, 1 << params.digit_bits):
            out.append(ctx.encrypt((digit == d).astype(np.int64)))
    return out


@dataclass(frozen=True, slots=True)
class StrictDecisions:
    """Decisions for one chunk: ``eligible[i]`` is meaningful only where ``valid[i]``."""

    eligible: BoolArray
    valid: BoolArray

    def integrity_errors(self) -> list[IntegrityError]:
        """One error per slot that did not decrypt to exactly 0 or 1."""
        return [
            IntegrityError(
                f"strict result slot {int(i)} did not decrypt to exactly 0 or 1; no decision is "
                "taken for this household"
            )
            for i in np.flatnonzero(~self.valid)
        ]


def decide(values: IntArray) -> StrictDecisions:
    """Decrypted slot values → decisions; only exactly 0 and exactly 1 are decisions."""
    v = np.asarray(values, dtype=np.int64)
    return StrictDecisions(eligible=v == 1, valid=(v == 0) | (v == 1))


def decrypt_decisions(ctx: SecretBfvContext, result: bytes, count: int) -> StrictDecisions:
    """Decrypt a chunk's result; a result of the wrong length is a :class:`CryptoError`."""
    values = ctx.decrypt(result)
    if len(values) != count:
        raise CryptoError(f"result holds {len(values)} slots, the chunk has {count}")
    return decide(values)


# --- UWV side ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    """A subtree of the comparison: ``gt`` is None where it is known to be zero in every slot."""

    gt: BfvCiphertext | None
    eq: BfvCiphertext | None


def _linear(
    terms: Sequence[tuple[BfvCiphertext, IntArray]], constant: IntArray | None
) -> BfvCiphertext | None:
    acc: BfvCiphertext | None = None
    for ct, coefficient in terms:
        if not coefficient.any():
            continue  # skipping all-zero masks saves a plaintext multiplication
        term = ct.mul_plain(coefficient)
        acc = term if acc is None else acc + term
    if constant is not None and acc is not None and constant.any():
        acc = acc.add_plain(constant)
    return acc


def _leaf(indicators: Sequence[BfvCiphertext], y: IntArray, need_eq: bool) -> _Node:
    levels = range(1, len(indicators) + 1)
    gt = _linear(
        [(h, (y < d).astype(np.int64)) for h, d in zip(indicators, levels, strict=True)], None
    )
    eq = None
    if need_eq:
        y0 = (y == 0).astype(np.int64)
        eq = _linear(
            [(h, (y == d).astype(np.int64) - y0) for h, d in zip(indicators, levels, strict=True)],
            y0,
        )
        # Every slot has a nonzero coefficient (its own digit, or all −1 when y = 0), so eq is
        # always a ciphertext.
        if eq is None:
            raise CryptoError("internal: equality term vanished")
    return _Node(gt=gt, eq=eq)


def _tree(
    leaves: Sequence[Sequence[BfvCiphertext]], ys: Sequence[IntArray], need_eq: bool
) -> _Node:
    """Balanced comparison over digits ``leaves`` (least significant first)."""
    if len(leaves) == 1:
        return _leaf(leaves[0], ys[0], need_eq)
    half = len(leaves) // 2
    lo = _tree(leaves[:half], ys[:half], need_eq)
    hi = _tree(leaves[half:], ys[half:], True)
    assert hi.eq is not None
    gt = hi.gt
    if lo.gt is not None:
        carried = hi.eq * lo.gt
        gt = carried if gt is None else gt + carried
    eq = hi.eq * lo.eq if need_eq and lo.eq is not None else None
    return _Node(gt=gt, eq=eq)


def _uniform_mod(random_bytes: RandomBytes, count: int, modulus: int) -> IntArray:
    """``count`` values uniform modulo ``modulus`` (bias below 2**-46), centred around 0."""
    raw = np.frombuffer(random_bytes(8 * count), dtype=np.uint64)
    values: IntArray = (raw % np.uint64(modulus)).astype(np.int64) - modulus // 2
    return values


def flooded_zero(ctx: PublicBfvContext, count: int, random_bytes: RandomBytes) -> BfvCiphertext:
    """A fresh encryption of zero whose noise is flooded by random plaintext products.

    Multiplying by a uniformly random slot vector multiplies by a uniformly random polynomial
    (batch encoding is a bijection), which scales the noise by about ``t·sqrt(N)`` while the
    message stays zero.
    """
    zero = ctx.encrypt_zeros(count)
    for _ in range(ctx.params.flood_multiplications):
        zero = zero.mul_plain(_uniform_mod(random_bytes, count, ctx.params.plain_modulus))
    return zero


def _nonzero_scalar(random_bytes: RandomBytes, modulus: int) -> int:
    return 1 + int.from_bytes(random_bytes(8), "little") % (modulus - 1)


def validity_check(
    ctx: PublicBfvContext, leaves: Sequence[Sequence[BfvCiphertext]], random_bytes: RandomBytes
) -> BfvCiphertext:
    """Zero in every slot whose upload is a valid one-hot encoding; random elsewhere.

    A dishonest SVB could upload indicators that are not 0/1 or not one-hot (say 1, 2, 4) and
    read several of UWV's digits from one result. Per digit, with secret random scalars
    ``ρ_d``: ``(Σ ρ_d h_d)² − Σ ρ_d² h_d = Σ ρ_d² (h_d² − h_d) + 2 Σ_{d<e} ρ_d ρ_e h_d h_e``,
    a polynomial in ρ that is identically zero iff the digit is valid, so for an invalid digit
    it vanishes with probability at most 2/t (Schwartz–Zippel). Digits are combined with random
    weights and the sum multiplied by a uniformly random nonzero slot vector, so an invalid
    slot's result is uniformly random: an integrity error for SVB, and no information.
    Soundness error per slot at most 3/t (< 2**-14 at t = 65537).
    """
    t = ctx.params.plain_modulus
    count = len(leaves[0][0])
    total: BfvCiphertext | None = None
    for indicators in leaves:
        rho = [_nonzero_scalar(random_bytes, t) for _ in indicators]
        u: BfvCiphertext | None = None
        v: BfvCiphertext | None = None
        for h, r in zip(indicators, rho, strict=True):
            hu, hv = h.mul_scalar(r), h.mul_scalar(r * r % t)
            u = hu if u is None else u + hu
            v = hv if v is None else v + hv
        assert u is not None and v is not None
        digit_check = (u * u + v.mul_scalar(t - 1)).mul_scalar(_nonzero_scalar(random_bytes, t))
        total = digit_check if total is None else total + digit_check
    assert total is not None
    spread = _uniform_mod(random_bytes, count, t - 1)
    # Shift from [-(t-1)/2, (t-1)/2) to the nonzero residues, so a nonzero check stays nonzero.
    spread = np.where(spread >= 0, spread + 1, spread)
    return total.mul_plain(spread)


def evaluate_chunk(
    ctx: PublicBfvContext,
    ciphertexts: Sequence[bytes],
    totals_cents: IntArray,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> bytes:
    """UWV: the encrypted decision ``[S < X]`` for one chunk, re-randomised, serialised.

    ``ciphertexts`` are SVB's upload for the chunk (as from :func:`encrypt_thresholds`),
    ``totals_cents`` UWV's household totals over the period, in the same order.
    ``random_bytes`` (a cryptographic source; passed in for tests) drives the noise flooding.
    """
    params = ctx.params
    _check_capacity(params)
    per_digit = (1 << params.digit_bits) - 1
    if len(ciphertexts) != params.ciphertexts_per_chunk:
        raise CryptoError(
            f"a strict chunk has {params.ciphertexts_per_chunk} ciphertexts, got {len(ciphertexts)}"
        )
    s = encode_totals(totals_cents)
    count = len(s)
    if not 1 <= count <= params.slots:
        raise InputError(f"a chunk holds 1 to {params.slots} households, got {count}")
    cts = [ctx.load(c, count) for c in ciphertexts]
    leaves = [cts[i * per_digit : (i + 1) * per_digit] for i in range(params.digits)]
    root = _tree(leaves, _digits(s, params), need_eq=False)
    check = validity_check(ctx, leaves, random_bytes)
    # Re-randomise (and flood, if the set allows): a fresh public-key encryption of zero makes
    # the result's components independent of the uploaded ones (also covers the all-zero case).
    fresh = flooded_zero(ctx, count, random_bytes)
    result = check + fresh if root.gt is None else root.gt + check + fresh
    return result.serialize()


def plaintext_decisions(total_thresholds_cents: IntArray, totals_cents: IntArray) -> BoolArray:
    """The oracle: ``S < X`` in integers, without any encoding."""
    x = np.asarray(total_thresholds_cents, dtype=np.int64)
    return np.asarray(totals_cents, dtype=np.int64) < x
