"""One law, two documents: the shipped rule and the RegelRecht document (with its binding)
decide every household identically in every half year 2024-2026, both honour their
valid_from, and the HE plan's thresholds agree with the evaluator (cost-sharers included)."""

from __future__ import annotations

import numpy as np
import pytest
from rules_testkit import one_person_month_each

from shared.models import Period, SourceKind
from shared.rules import Batch, NoNormInForce, check, compile_he, evaluate, parse_file
from shared.rules.shipped import shipped_regelrecht, shipped_rule_path

NATIVE = check(parse_file(shipped_rule_path()))
DOC, BINDING = shipped_regelrecht()
REGELRECHT = check(parse_file(DOC, binding=BINDING))
HALF_YEARS = [f"{y}-01..{y}-06" for y in (2024, 2025, 2026)] + [
    f"{y}-07..{y}-12" for y in (2024, 2025, 2026)
]


def batch(period: Period, seed: int, n: int = 4000) -> Batch:
    rng = np.random.default_rng(seed)
    months = period.months
    return one_person_month_each(
        Batch.from_columns(
            period=period,
            gross_cents={
                SourceKind.PENSION: rng.integers(0, 60_000, n) * months,
                SourceKind.WAGE: rng.integers(-5_000, 30_000, n) * months,
            },
            tax_cents={SourceKind.WAGE: rng.integers(0, 3_000, n) * months},
            is_couple=rng.random(n) < 0.4,
            known_income_cents=rng.integers(80_000, 200_000, n),
            cost_sharers=rng.integers(0, 4, n),
        )
    )


@pytest.mark.parametrize("period", HALF_YEARS)
def test_both_documents_decide_identically(period: str) -> None:
    p = Period.parse(period)
    b = batch(p, seed=hash(period) % 2**31)
    native = evaluate(NATIVE, b)
    regelrecht = evaluate(REGELRECHT, b)
    assert native.decision is not None and regelrecht.decision is not None
    np.testing.assert_array_equal(native.decision, regelrecht.decision)
    np.testing.assert_array_equal(native.outputs["norm"], regelrecht.outputs["sociaal_minimum"])
    assert native.decision.any() and not native.decision.all()


@pytest.mark.parametrize("period", HALF_YEARS)
def test_he_thresholds_agree_with_the_evaluator(period: str) -> None:
    p = Period.parse(period)
    b = batch(p, seed=7)
    plan = compile_he(NATIVE)
    t = plan.thresholds(p, b.is_couple, b.known_income_cents, b.cost_sharers)
    s = sum(
        plan.gross_weight[k] * b.gross_cents[k] + plan.tax_weight[k] * b.tax_cents[k]
        for k in SourceKind
    )
    assert b.person_months is not None
    s = s + plan.person_month_total(p, b.person_months.gross_cents, b.person_months.tax_cents)
    assert dict(plan.person_terms) == {"vrijlating_arbeid": -1}
    decision = evaluate(NATIVE, b).decision
    assert decision is not None
    np.testing.assert_array_equal(s < t, decision)


@pytest.mark.parametrize("rule", [NATIVE, REGELRECHT], ids=["native", "regelrecht"])
def test_both_honour_valid_from_and_the_last_half_year(rule: object) -> None:
    assert rule is not None
    for outside in ("2023-07..2023-12", "2027-01..2027-06"):
        with pytest.raises(NoNormInForce):
            evaluate(NATIVE if rule is NATIVE else REGELRECHT, batch(Period.parse(outside), 1))
