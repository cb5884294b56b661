"""What SVB's decrypted values reveal beyond the decision, measured on a batch.

SVB is entitled to one bit per household. In masked mode it decrypts
``v = r·(T − I − 1/(2n)) + e`` and could try to read the distance to the threshold from
``|v|``; in strict mode it decrypts 0 or 1. This module runs both modes on the same batch and
reports, per mode:

- ``correct``: fraction of decisions equal to the integer oracle ``S < n·T``;
- ``spearman``: rank correlation of ``|v|`` with the true ``|distance|`` (0: no ordering info);
- ``cond_mi_bits``: a binned estimate of the mutual information between ``|v|`` and
  ``|distance|`` *given the decision*, in bits: what the value says beyond the bit
  (quantile bins, so it is invariant to the scale of either quantity; a plug-in estimate, biased
  upwards by about ``(bins − 1)² / (2·count·ln 2)`` bits, reported as ``mi_bias_bits``);
- ``exact_bits``: fraction of values that are exactly 0 or 1;
- ``log2_ratio``: range of ``log2(|v| / |distance|)`` (masked: within ``[log2 0.75, L]``);
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

import numpy as np
import numpy.typing as npt

from shared.he import masked, strict
from shared.he.backend import (
    PublicBfvContext,
    PublicCkksContext,
    SecretBfvContext,
    SecretCkksContext,
)
from shared.he.params import (
    BFV_PARAMETER_SETS,
    MASKED_N8192,
    STRICT_DEFAULT,
    BfvParams,
    CkksParams,
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


def masked_values(batch: Batch, params: CkksParams = MASKED_N8192) -> FloatArray:
    """Run the masked protocol (lead's facade + :mod:`shared.he.masked`); SVB's decrypted values."""
    svb = SecretCkksContext.generate(params)
    uwv = PublicCkksContext(svb.public_bytes_for_masked(), params.name)
    out: list[FloatArray] = []
    for start in range(0, len(batch.thresholds), params.slots):
        t = batch.thresholds[start : start + params.slots]
        s = batch.totals[start : start + params.slots]
        ct = svb.encrypt(masked.encode_thresholds(t, batch.months))
        ops = masked.mask_operands(s, batch.months, params, secrets.token_bytes)
        out.append(svb.decrypt(uwv.masked_affine(ct, ops.subtract, ops.multiply, ops.add)))
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
    """The quantity masked mode multiplies: ``X/n − I − 1/(2n)``, I the clamped monthly average."""
    income = masked.clamp_monthly_income(batch.totals, batch.months)
    monthly = batch.thresholds / float(batch.months)
    result: FloatArray = monthly - income - 1.0 / (2.0 * batch.months)
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
    args = parser.parse_args(argv)
    batch = synthetic_batch(args.households, args.months, np.random.default_rng(args.seed))
    print(f"synthetic batch: {args.households} households, {args.months} months, seed {args.seed}")
    print(report("masked", masked_values(batch), batch).format())
    strict_params = BFV_PARAMETER_SETS[args.strict_params]
    print(report("strict", strict_values(batch, strict_params), batch).format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
