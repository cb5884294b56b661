"""The HE compiler: the AIO plan, the threshold arithmetic, and rules outside the subset."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rules_testkit import AIO, checked, decision_doc

from shared.models import NormCategory, Period, SourceKind
from shared.rules.batch import Batch, PersonMonths
from shared.rules.canonical import digest
from shared.rules.check import check
from shared.rules.errors import NoNormInForce, NotHeCompilable
from shared.rules.evaluate import evaluate
from shared.rules.he_plan import HePlan, compile_he
from shared.rules.parse import parse_file

AIO_CHECKED = check(parse_file(AIO))
PLAN = compile_he(AIO_CHECKED)


def test_aio_plan_matches_the_contract() -> None:
    assert PLAN.rule_digest == digest(AIO_CHECKED.rule)
    assert dict(PLAN.gross_weight) == dict.fromkeys(SourceKind, 1)
    assert dict(PLAN.tax_weight) == dict.fromkeys(SourceKind, -1)
    assert PLAN.comparison == "<"


def test_norm_and_threshold() -> None:
    p = Period.parse("2025-01..2025-03")
    assert PLAN.threshold_cents(NormCategory.SINGLE, p, 140000) == 3 * (150107 - 140000)
    assert PLAN.threshold_cents(NormCategory.COUPLE, p, 0) == 3 * 205348
    dec = Period.parse("2024-12")
    assert PLAN.threshold_cents(NormCategory.SINGLE, dec, 0) == 145685
    last = Period.parse("2026-12")
    assert PLAN.threshold_cents(NormCategory.COUPLE, last, 0) == 217610
    with pytest.raises(NoNormInForce, match=r"newest is 158734 from 2026-07-01.*until 2026-12-31"):
        PLAN.threshold_cents(NormCategory.COUPLE, Period.parse("2027-01..2027-06"), 0)
    with pytest.raises(NoNormInForce, match="2023-12-31"):
        PLAN.threshold_cents(NormCategory.SINGLE, Period.parse("2023-12"), 0)


@pytest.mark.parametrize(
    ("category", "sharers", "per_month"),
    [
        (NormCategory.SINGLE, 1, 107208),  # A=2: EUR 1.072,08 (January 2026 tables)
        (NormCategory.SINGLE, 2, 92914),  # A=3: EUR 929,14
        (NormCategory.SINGLE, 3, 85766),  # A=4: EUR 857,66
        (NormCategory.COUPLE, 1, 2 * 92914),  # A=3, both partners (art. 22a lid 2)
        (NormCategory.COUPLE, 2, 2 * 85766),  # A=4
        (NormCategory.COUPLE, 0, 214416),
        (NormCategory.SINGLE, 0, 156469),
    ],
)
def test_cost_sharer_thresholds_january_2026(
    category: NormCategory, sharers: int, per_month: int
) -> None:
    p = Period.parse("2026-01..2026-06")
    assert PLAN.threshold_cents(category, p, 50000, sharers) == 6 * (per_month - 50000)


def test_plan_is_immutable() -> None:
    with pytest.raises(TypeError):
        PLAN.gross_weight[SourceKind.WAGE] = 5  # type: ignore[index]


def test_plan_decides_like_the_evaluator() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    p = Period.parse("2024-11..2025-02")
    gross = {k: rng.integers(-1000, 400_000, n) for k in SourceKind}
    tax = {k: rng.integers(0, 80_000, n) for k in SourceKind}
    couple = rng.random(n) < 0.4
    known = rng.integers(0, 220_000, n)
    gross[SourceKind.WAGE] = np.zeros(n, np.int64)  # (the exemption: test_rules_one_law)
    batch = Batch.from_columns(
        period=p,
        gross_cents=gross,
        tax_cents=tax,
        is_couple=couple,
        known_income_cents=known,
        person_months=PersonMonths.empty(),
    )
    want = evaluate(AIO_CHECKED, batch).decision
    assert want is not None
    t = PLAN.thresholds(p, couple, known)
    for i in range(0, n, 7):
        s = PLAN.household_sum(
            {k: int(gross[k][i]) for k in SourceKind}, {k: int(tax[k][i]) for k in SourceKind}
        )
        assert PLAN.eligible(s, int(t[i])) == bool(want[i])


THRESHOLD = {
    "operation": "MULTIPLY",
    "values": ["$maanden", {"operation": "SUBTRACT", "values": ["$norm", "$bekend"]}],
}


def he(value: Any) -> HePlan:
    return compile_he(checked(decision_doc(value)))


def test_simple_variants_compile() -> None:
    plan = he({"operation": "GREATER_THAN_OR_EQUAL", "subject": "$norm", "value": "$bruto_loon"})
    assert plan.comparison == "<="
    assert plan.gross_weight[SourceKind.WAGE] == 1 and plan.gross_weight[SourceKind.PENSION] == 0
    plan = he(
        {
            "operation": "AND",
            "conditions": [
                "$vlag",
                {"operation": "LESS_THAN", "subject": "$netto", "value": THRESHOLD},
            ],
        }
    )
    assert plan.comparison == "<"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            {
                "operation": "AND",
                "conditions": [
                    {"operation": "LESS_THAN", "subject": "$netto", "value": "$norm"},
                    {"operation": "LESS_THAN", "subject": "$bruto_loon", "value": "$grens"},
                ],
            },
            "compares once",
        ),
        (
            {
                "operation": "LESS_THAN",
                "subject": {"operation": "MAX", "values": ["$netto", 0]},
                "value": "$norm",
            },
            "MAX of income",
        ),
        (
            {
                "operation": "IF",
                "cases": [
                    {
                        "when": {"operation": "LESS_THAN", "subject": "$netto", "value": "$grens"},
                        "then": True,
                    }
                ],
                "default": False,
            },
            "IF condition depends on income",
        ),
        (
            {
                "operation": "LESS_THAN",
                "subject": {"operation": "MULTIPLY", "values": ["$netto", "$maanden"]},
                "value": "$norm",
            },
            "income is multiplied",
        ),
        (
            {
                "operation": "LESS_THAN",
                "subject": {"operation": "DIVIDE", "values": ["$netto", 2]},
                "value": "$norm",
            },
            "not a whole number",
        ),
        (
            {"operation": "LESS_THAN", "subject": "$bekend", "value": "$norm"},
            "not a comparison of income",
        ),
        ({"operation": "EQUALS", "subject": "$netto", "value": "$norm"}, "EQUALS on income"),
    ],
)
def test_rules_outside_the_subset_are_refused_with_reason(value: Any, reason: str) -> None:
    with pytest.raises(NotHeCompilable) as info:
        he(value)
    assert reason in info.value.message
    assert info.value.path.startswith("machine_readable.actions[0]")
