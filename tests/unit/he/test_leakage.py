"""The documented leakage bounds hold on a measured batch (docs/he.md, "What leaks")."""

from __future__ import annotations

import numpy as np
import pytest

from shared.he import leakage
from shared.he.params import MASKED_DEFAULT, STRICT_BFV_N8192


@pytest.fixture(scope="module")
def batch() -> leakage.Batch:
    return leakage.synthetic_batch(4096, 12, np.random.default_rng(5))


def test_masked_value_reveals_distance_only_within_the_mask_factor(batch: leakage.Batch) -> None:
    values = leakage.masked_values(batch, MASKED_DEFAULT)
    rep = leakage.report("masked", values, batch)
    assert rep.correct == 1.0
    # |v| = r·|D| + e with D = 2(X − S') − 1 odd, r in [1, 2**L) and |e| < r (integers):
    # |v|/|D| in [1, 2**(L+1)), and exactly, no approximation error.
    assert rep.log2_ratio_min >= 0.0
    assert rep.log2_ratio_max < MASKED_DEFAULT.mask_log2_range + 1
    # Masked mode does leak something about the distance beyond the bit: the report must see it.
    assert rep.cond_mi_bits > 2 * rep.mi_bias_bits
    assert rep.distinct_per_decision[0] > 1000


def test_strict_values_are_exactly_the_decision_bits(batch: leakage.Batch) -> None:
    values = leakage.strict_values(batch, STRICT_BFV_N8192)
    np.testing.assert_array_equal(values, batch.oracle().astype(np.int64))
    rep = leakage.report("strict", values, batch)
    assert rep.correct == 1.0 and rep.exact_bits == 1.0
    # One value per decision: nothing beyond the bit to read.
    assert rep.distinct_per_decision == (1, 1)
    assert rep.cond_mi_bits == 0.0


def test_statistics_helpers() -> None:
    x = np.array([3.0, 1.0, 2.0, 2.0])
    np.testing.assert_array_equal(leakage.ranks(x), [3.0, 0.0, 1.5, 1.5])
    assert leakage.spearman(x, x**3) == pytest.approx(1.0)
    assert leakage.spearman(x, -x) == pytest.approx(-1.0)
    assert leakage.spearman(x, np.ones(4)) == 0.0
    rng = np.random.default_rng(0)
    a, b = rng.random(50_000), rng.random(50_000)
    assert leakage.binned_mutual_information(a, b) < 0.01
    assert leakage.binned_mutual_information(a, a) == pytest.approx(4.0, abs=1e-6)


def test_cli_prints_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert leakage.main(["--households", "64", "--strict-params", STRICT_BFV_N8192.name]) == 0
    out = capsys.readouterr().out
    assert "masked" in out and "strict" in out and "exact 0/1=1.000" in out
