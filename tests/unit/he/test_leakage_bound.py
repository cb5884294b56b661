"""The yearly bound of shared.he.leakage: bits about one person per year, per mode."""

from __future__ import annotations

import numpy as np

from shared.he.leakage import (
    BOUND_CAP_BITS,
    format_bounds,
    masked_attack_bits,
    one_bit_attack_bits,
    yearly_bounds,
)


def test_one_bit_modes_learn_exactly_one_bit_per_answer() -> None:
    bits = one_bit_attack_bits(7, trials=300, rng=np.random.default_rng(1))
    assert np.allclose(bits, 7.0)


def test_masked_answers_carry_more_than_one_bit_but_are_bounded() -> None:
    rng = np.random.default_rng(2)
    one = masked_attack_bits(1, "bisect", trials=1000, rng=rng)
    four = masked_attack_bits(4, "bisect", trials=1000, rng=rng)
    assert 1.0 < one.mean() < 2.0  # the magnitude says a little beyond the sign
    assert one.mean() < four.mean() < 4 * 2.0
    assert four.max() <= BOUND_CAP_BITS


def test_the_report_names_every_mode_and_the_total() -> None:
    bounds = yearly_bounds({"masked": 3, "strict": 5, "enclave": 5}, trials=200)
    assert [b.mode for b in bounds] == ["masked", "strict", "enclave"]
    assert bounds[1].mean_bits == 5.0 and bounds[0].mean_bits > 3.0
    text = format_bounds(bounds, 5)
    assert "masked" in text and "all modes together" in text and "2 one-bit answers" in text
