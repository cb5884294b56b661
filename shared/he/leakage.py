"""What SVB's decrypted values reveal beyond the decision, measured on a batch.

SVB is entitled to one bit per household. In masked mode it decrypts
``v = r·(2(X − S') − 1) + e`` and could try to read the distance to the threshold from
``|v|``; in strict mode it decrypts 0 or 1. This module runs both modes on the same batch and
reports, per mode:

- ``correct``: fraction of decisions equal to the integer oracle ``S < n·T``;
- ``spearman``: rank correlation of ``|v|`` with the true ``|distance|`` (0: no ordering info);
- ``cond_mi_bits``: a binned estimate of the mutual information between ``|v|`` and
  ``|distance|`` *given the decision*, in bits: what the value says beyond the bit
  (quantile bins, so it is invariant to the scale of either quantity; a plug-in estimate, biased
  upwards by about ``(bins − 1)² / (2·count·ln 2)`` bits, reported as ``mi_bias_bits``);
- ``exact_bits``: fraction of values that are exactly 0 or 1;
- ``log2_ratio``: range of ``log2(|v| / |distance|)`` (masked: within ``[0, L + 1)``);
- ``distinct_per_decision``: how many different values SVB saw per decision.

``python -m shared.he.leakage --households 8192`` prints the report for a synthetic batch, so an
operator choosing a mode sees the numbers for this build and machine.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.he import masked, strict
from shared.he.backend import (
    PublicBfvContext,
    PublicMaskedContext,
    SecretBfvContext,
    SecretMaskedContext,
)
from shared.he.masked import THRESHOLD_BAND_CENTS, mask_operands
from shared.he.params import (
    BFV_PARAMETER_SETS,
    MASKED_DEFAULT,
    STRICT_DEFAULT,
    BfvParams,
    MaskedParams,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_BINS = 16


# --- statistics ---------------------------------------------------------------------------------


def ranks(x: FloatArray) -> FloatArray:
    """Ranks 0..n−1, ties given their average rank (as Spearman's coefficient requires)."""
    values, inverse, counts = np.unique(
        np.asarray(x, dtype=np.float64), return_inverse=True, return_counts=True
    )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.float64)
    average = starts + (counts - 1) / 2.0
    del values
    result: FloatArray = average[inverse]
    return result


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rank correlation; 0.0 where either side is constant (no ordering to leak)."""
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0.0 or ry.std() == 0.0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def _quantile_bins(x: FloatArray, bins: int) -> IntArray:
    """Bin index per value: equal-count bins over the ranks (ties share a bin)."""
    r = ranks(x)
    out: IntArray = np.minimum((r * bins / max(len(x), 1)).astype(np.int64), bins - 1)
    return out


def binned_mutual_information(x: FloatArray, y: FloatArray, bins: int = DEFAULT_BINS) -> float:
    """Plug-in mutual information (bits) between quantile-binned ``x`` and ``y``."""
    if len(x) == 0:
        return 0.0
    bx, by = _quantile_bins(x, bins), _quantile_bins(y, bins)
    joint = np.zeros((bins, bins), dtype=np.float64)
    np.add.at(joint, (bx, by), 1.0)
    joint /= joint.sum()
    px, py = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / np.outer(px, py)[nz])).sum())


def conditional_mutual_information(
    x: FloatArray, y: FloatArray, condition: npt.NDArray[np.bool_], bins: int = DEFAULT_BINS
) -> float:
    """``I(x; y | condition)`` for a boolean condition, each group binned on its own."""
    total = 0.0
    for group in (condition, ~condition):
        if group.sum() > 1:
            total += float(group.mean()) * binned_mutual_information(x[group], y[group], bins)
    return total


# --- a synthetic batch --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """Total thresholds ``X = n·T`` (SVB) and period totals ``S`` (UWV) in cents, and ``n``."""

    thresholds: IntArray
    totals: IntArray
    months: int

    def oracle(self) -> npt.NDArray[np.bool_]:
        return strict.plaintext_decisions(self.thresholds, self.totals)


def synthetic_batch(count: int, months: int, rng: np.random.Generator) -> Batch:
    """Norm minus known AOW as thresholds; other income around it, some exactly at it."""
    norms = rng.choice(np.array([150_107, 205_348], dtype=np.int64), count)
    aow = rng.integers(90_000, 140_000, count)
    thresholds = months * (norms - aow)
    monthly = norms - aow + np.round(rng.normal(0, 40_000, count)).astype(np.int64)
    totals = months * monthly + rng.integers(-months, months + 1, count)
    exact = rng.random(count) < 0.02
    totals[exact] = thresholds[exact] + rng.integers(-1, 2, int(exact.sum()))
    return Batch(thresholds=thresholds.astype(np.int64), totals=totals, months=months)


# --- running the modes --------------------------------------------------------------------------


def masked_values(batch: Batch, params: MaskedParams = MASKED_DEFAULT) -> IntArray:
    """Run the masked protocol (facade + :mod:`shared.he.masked`); SVB's decrypted values."""
    svb = SecretMaskedContext.generate(params)
    uwv = PublicMaskedContext(svb.public_bytes(), params.name)
    out: list[IntArray] = []
    for start in range(0, len(batch.thresholds), params.slots):
        t = batch.thresholds[start : start + params.slots]
        s = batch.totals[start : start + params.slots]
        parsed = uwv.parse(svb.encrypt(masked.encode_thresholds(t, batch.months)))
        ops = masked.mask_operands(s, params, secrets.token_bytes)
        out.append(svb.decrypt(uwv.evaluate(parsed, ops.multiply, ops.add))[: len(t)])
    return np.concatenate(out)


def strict_values(batch: Batch, params: BfvParams = STRICT_DEFAULT) -> IntArray:
    """Run the strict protocol; SVB's decrypted values (0 or 1 when all is well)."""
    svb = SecretBfvContext.generate(params)
    uwv = PublicBfvContext(svb.public_bytes(), params.name)
    out: list[IntArray] = []
    for start in range(0, len(batch.thresholds), params.slots):
        t = batch.thresholds[start : start + params.slots]
        s = batch.totals[start : start + params.slots]
        result = strict.evaluate_chunk(uwv, strict.encrypt_thresholds(svb, t, batch.months), s)
        out.append(svb.decrypt(result))
    return np.concatenate(out)


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeakageReport:
    """What one mode's decrypted values reveal on one batch (see the module docstring)."""

    mode: str
    households: int
    correct: float
    spearman: float
    cond_mi_bits: float
    mi_bias_bits: float
    exact_bits: float
    log2_ratio_min: float
    log2_ratio_max: float
    distinct_per_decision: tuple[int, int]

    def format(self) -> str:
        return (
            f"{self.mode:<8} n={self.households:<7} correct={self.correct:.6f} "
            f"spearman(|v|,|d|)={self.spearman:+.3f} "
            f"I(|v|;|d| | decision)={self.cond_mi_bits:.3f} bits (bias ~{self.mi_bias_bits:.3f}) "
            f"exact 0/1={self.exact_bits:.3f} "
            f"log2(|v|/|d|) in [{self.log2_ratio_min:.2f}, {self.log2_ratio_max:.2f}] "
            f"distinct values (ineligible, eligible)={self.distinct_per_decision}"
        )


def distance(batch: Batch) -> FloatArray:
    """The quantity masked mode multiplies: ``2(X − S') − 1``, S' the clamped total."""
    clamped = masked.clamp_totals(batch.totals)
    result: FloatArray = (2 * (batch.thresholds - clamped) - 1).astype(np.float64)
    return result


def report(
    mode: str, values: FloatArray | IntArray, batch: Batch, bins: int = DEFAULT_BINS
) -> LeakageReport:
    """Measure what ``values`` (SVB's decryptions for ``batch``) reveal in mode ``mode``."""
    v = np.asarray(values, dtype=np.float64)
    d = np.abs(distance(batch))
    oracle = batch.oracle()
    decided = v > 0 if mode == "masked" else v == 1.0
    with np.errstate(divide="ignore"):
        ratio = np.log2(np.abs(v) / d)
    finite = ratio[np.isfinite(ratio)]
    return LeakageReport(
        mode=mode,
        households=len(v),
        correct=float((decided == oracle).mean()),
        spearman=spearman(np.abs(v), d),
        cond_mi_bits=conditional_mutual_information(np.abs(v), d, oracle, bins),
        mi_bias_bits=(bins - 1) ** 2 / (2.0 * max(len(v), 1) * math.log(2)),
        exact_bits=float(((v == 0.0) | (v == 1.0)).mean()),
        log2_ratio_min=float(finite.min()) if finite.size else math.nan,
        log2_ratio_max=float(finite.max()) if finite.size else math.nan,
        distinct_per_decision=(
            int(np.unique(v[~oracle]).size),
            int(np.unique(v[oracle]).size),
        ),
    )


# --- yearly bound: bits about one person per calendar year, per mode (issue 9) ---------------
#
# The server answers a person at most ``k`` times a year (the budget; once per batch). What the
# strongest attack we built learns in ``k`` answers, measured on the exact operands the server
# uses (``mask_operands``) in plaintext: CKKS noise would only blur the values further, so the
# plaintext figure is an upper bound of what the same attack gets from real ciphertexts.
#
# The attacker knows the protocol: ``v = r·(T − I − δ) + e`` with ``δ = 1/(2n)``, ``|e| ≤ 1/(8n)``
# and ``r ∈ [1, 2**L)``. From one answer it keeps ``I`` in an interval: the sign gives the side
# of ``T``, ``r ≥ 1`` bounds the distance from above by ``|v|`` and ``r < 2**L`` from below by
# ``|v| / 2**L``. It chooses each next ``T`` adaptively from the interval it holds. Strategies
# tried (the bound takes the best one at every ``k``): bisect the interval; put ``T`` just above
# it (every distance is then at most its width, so ``|v|`` ≤ width happens more often); just
# below it; and a few fixed fractions inside it. The prior is uniform over the public band
# ``[0, 2**20)`` cents a month: at most 20 bits are there to learn (resolution: one cent).

BOUND_PRIOR_CENTS: Final = float(THRESHOLD_BAND_CENTS)
BOUND_CAP_BITS: Final = math.log2(BOUND_PRIOR_CENTS)
_STRATEGIES: Final = ("bisect", "above", "below", "quarter", "eighth", "edge-then-bisect")


@dataclass(frozen=True, slots=True)
class ModeBound:
    """Bits about one person learnt in ``answers`` answers of ``mode``: mean and 95th pct."""

    mode: str
    answers: int
    mean_bits: float
    p95_bits: float
    strategy: str


def _next_threshold(strategy: str, lo: FloatArray, hi: FloatArray, step: int) -> FloatArray:
    width = hi - lo
    if strategy == "bisect" or (strategy == "edge-then-bisect" and step > 0):
        t: FloatArray = lo + width / 2.0
    elif strategy in ("above", "edge-then-bisect"):
        t = hi + 1.0
    elif strategy == "below":
        t = lo - 1.0
    elif strategy == "quarter":
        t = lo + width / 4.0
    else:
        t = lo + width / 8.0
    return t


def _bits(lo: FloatArray, hi: FloatArray) -> FloatArray:
    width = np.maximum(hi - lo, 1.0)
    out: FloatArray = np.minimum(BOUND_CAP_BITS, np.log2(BOUND_PRIOR_CENTS / width))
    return out


def masked_attack_bits(
    answers: int,
    strategy: str,
    *,
    trials: int,
    params: MaskedParams = MASKED_DEFAULT,
    months: int = 12,
    rng: np.random.Generator,
) -> FloatArray:
    """Bits learnt per trial by ``strategy`` after ``answers`` masked answers (see above).

    SVB decrypts ``v = r·D + e`` with ``D = 2(X − S) − 1``, ``1 ≤ r < 2**L``, ``|e| ≤ r − 1``:
    so ``(|v| + 1)/2**L − 1 < |D| ≤ |v|``, and the sign says which side of ``X`` the total is.
    """
    income = np.floor(rng.random(trials) * BOUND_PRIOR_CENTS)  # monthly, whole cents
    totals = (income * months).astype(np.int64)
    lo = np.zeros(trials)
    hi = np.full(trials, BOUND_PRIOR_CENTS)
    top = float(2**params.mask_log2_range)
    for step in range(answers):
        t = _next_threshold(strategy, lo, hi, step)
        x = np.round(t * months).astype(np.int64)
        ops = mask_operands(totals, params, secrets.token_bytes)
        v = (2 * x * ops.masks + ops.add).astype(np.float64)  # what SVB decrypts
        a = np.abs(v)
        pos = v > 0
        far = a  # |D| is at most this …
        near = np.maximum((a + 1.0) / top - 1.0, 1.0)  # … and at least this
        # eligible (S < X): S = X − (|D| + 1)/2; otherwise S = X + (|D| − 1)/2 (total cents)
        new_lo = np.where(pos, x - (far + 1) / 2, x + (near - 1) / 2) / months
        new_hi = np.where(pos, x - (near + 1) / 2, x + (far - 1) / 2) / months
        lo, hi = np.maximum(lo, new_lo), np.minimum(hi, new_hi)
        hi = np.maximum(hi, lo)
    return _bits(lo, hi)


def one_bit_attack_bits(answers: int, *, trials: int, rng: np.random.Generator) -> FloatArray:
    """Strict and compute-to-data answer one exact bit: bisection learns exactly one per answer."""
    income = np.floor(rng.random(trials) * BOUND_PRIOR_CENTS)
    lo, hi = np.zeros(trials), np.full(trials, BOUND_PRIOR_CENTS)
    for _ in range(answers):
        t = np.floor((lo + hi) / 2.0)
        below = income < t
        lo, hi = np.where(below, lo, t), np.where(below, t, hi)
    return _bits(lo, hi)


def yearly_bounds(limits: dict[str, int], *, trials: int = 2000, seed: int = 9) -> list[ModeBound]:
    """Per mode, what the strongest attack learns about one person within its yearly budget."""
    out = []
    for mode, k in limits.items():
        rng = np.random.default_rng(seed)
        if mode == "masked":
            best: tuple[float, float, str] = (-1.0, 0.0, "")
            for strategy in _STRATEGIES:
                bits = masked_attack_bits(k, strategy, trials=trials, rng=rng)
                mean = float(bits.mean())
                if mean > best[0]:
                    best = (mean, float(np.percentile(bits, 95)), strategy)
            out.append(ModeBound(mode, k, best[0], best[1], best[2]))
        else:
            bits = one_bit_attack_bits(k, trials=trials, rng=rng)
            out.append(
                ModeBound(mode, k, float(bits.mean()), float(np.percentile(bits, 95)), "bisect")
            )
    return out


def format_bounds(bounds: list[ModeBound], total: int) -> str:
    lines = [
        f"yearly bound: bits about one person per calendar year (prior: 0..2^20 cents a "
        f"month, at most {BOUND_CAP_BITS:.0f} bits; total budget {total} answers, all modes)"
    ]
    per_answer: dict[str, float] = {}
    for b in bounds:
        lines.append(
            f"  {b.mode:<8} {b.answers:>2} answers: {b.mean_bits:5.2f} bits mean, "
            f"{b.p95_bits:5.2f} bits 95th percentile  (best attack: {b.strategy})"
        )
        per_answer[b.mode] = b.mean_bits / max(b.answers, 1)
    masked = next((b for b in bounds if b.mode == "masked"), None)
    if masked is not None:
        rest = max(0, total - masked.answers)
        combined = min(BOUND_CAP_BITS, masked.p95_bits + rest)
        lines.append(
            f"  all modes together: at most {combined:.2f} bits (95th pct: {masked.answers} "
            f"masked answers, then {rest} one-bit answers of the other modes)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.he.leakage",
        description="Measure what SVB's decrypted values reveal in masked and strict mode.",
    )
    parser.add_argument("--households", type=int, default=8192)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data only")
    parser.add_argument(
        "--strict-params", default=STRICT_DEFAULT.name, choices=sorted(BFV_PARAMETER_SETS)
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=12,
        help="yearly budget (answers per person) for the bound section, all modes",
    )
    parser.add_argument(
        "--mode-budget",
        action="append",
        default=[],
        metavar="MODE=N",
        help="a lower yearly budget for one mode, as uwv-server serve --mode-budget",
    )
    parser.add_argument(
        "--bound-only", action="store_true", help="print only the yearly bound section"
    )
    args = parser.parse_args(argv)
    limits = {m: args.budget for m in ("masked", "strict", "enclave")}
    for item in args.mode_budget:
        mode, _, n = item.partition("=")
        limits[mode] = min(args.budget, int(n))
    if args.bound_only:
        print(format_bounds(yearly_bounds(limits), args.budget))
        return 0
    batch = synthetic_batch(args.households, args.months, np.random.default_rng(args.seed))
    print(f"synthetic batch: {args.households} households, {args.months} months, seed {args.seed}")
    print(report("masked", masked_values(batch), batch).format())
    strict_params = BFV_PARAMETER_SETS[args.strict_params]
    print(report("strict", strict_values(batch, strict_params), batch).format())
    print(format_bounds(yearly_bounds(limits), args.budget))
    # A dishonest SVB's hand-crafted encodings (issue 14), in their own module.
    from shared.he.leakage_dishonest import report_text

    print(report_text(strict_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
