"""The HE compiler: the AIO plan, the threshold arithmetic, and rules outside the subset."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from rules_testkit import AIO, checked, decision_doc

from shared.models import NormCategory, Period, SourceKind
from shared.rules.batch import Batch
from shared.rules.canonical import digest
from shared.rules.check import check
from shared.rules.errors import NoNormInForce, NotHeCompilable
from shared.rules.evaluate import evaluate
from shared.rules.he_plan import HePlan, NormVersion, compile_he
from shared.rules.parse import parse_file

AIO_CHECKED = check(parse_file(AIO))
PLAN = compile_he(AIO_CHECKED)


def test_aio_plan_matches_the_contract() -> None:
    assert PLAN.rule_digest == digest(AIO_CHECKED.rule)
    assert dict(PLAN.gross_weight) == dict.fromkeys(SourceKind, 1)
    assert dict(PLAN.tax_weight) == dict.fromkeys(SourceKind, -1)
    assert PLAN.comparison == "<"
    assert PLAN.known_income_coefficient == 1
    assert PLAN.months_multiplier is True
    assert PLAN.norms[NormCategory.SINGLE][:2] == (
        NormVersion(date(2024, 1, 1), 142576, "art. 22 onderdeel a Participatiewet"),
        NormVersion(date(2024, 7, 1), 145685, "art. 22 onderdeel a Participatiewet"),
    )
    assert [v.amount_cents for v in PLAN.norms[NormCategory.COUPLE]] == [
        193232,
        197664,
        205348,
        209498,
        214416,
        217610,
    ]


def test_norm_and_threshold() -> None:
    assert PLAN.norm_cents(NormCategory.SINGLE, date(2024, 12, 31)) == 145685
    assert PLAN.norm_cents(NormCategory.SINGLE, date(2025, 1, 1)) == 150107
    assert PLAN.norm_cents(NormCategory.COUPLE, date(2026, 12, 31)) == 217610
    with pytest.raises(NoNormInForce, match=r"newest.*2026-07-01.*until 2026-12-31"):
        PLAN.norm_cents(NormCategory.COUPLE, date(2027, 6, 30))
    p = Period.parse("2025-01..2025-03")
    assert PLAN.threshold_cents(NormCategory.SINGLE, p, 140000) == 3 * (150107 - 140000)
    assert PLAN.threshold_cents(NormCategory.COUPLE, p, 0) == 3 * 205348
    with pytest.raises(NoNormInForce, match="2023-12-31"):
        PLAN.norm_cents(NormCategory.SINGLE, date(2023, 12, 31))


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
    batch = Batch.from_columns(
        period=p, gross_cents=gross, tax_cents=tax, is_couple=couple, known_income_cents=known
    )
    want = evaluate(AIO_CHECKED, batch).decision
    assert want is not None
    for i in range(0, n, 7):
        s = PLAN.household_sum(
            {k: int(gross[k][i]) for k in SourceKind}, {k: int(tax[k][i]) for k in SourceKind}
        )
        cat = NormCategory.COUPLE if couple[i] else NormCategory.SINGLE
        t = PLAN.threshold_cents(cat, p, int(known[i]))
        assert PLAN.eligible(s, t) == bool(want[i])


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
    assert plan.months_multiplier is False and plan.known_income_coefficient == 0
    plan = he(
        {
            "operation": "AND",
            "conditions": [
                "$vlag",
                {"operation": "LESS_THAN", "subject": "$netto", "value": THRESHOLD},
            ],
        }
    )
    assert plan.months_multiplier is True


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
            "MAX of amounts",
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
            "does not depend on polis income",
        ),
        ({"operation": "EQUALS", "subject": "$netto", "value": "$norm"}, "EQUALS on amounts"),
        (
            {
                "operation": "LESS_THAN",
                "subject": "$netto",
                "value": {"operation": "MULTIPLY", "values": ["$bekend", "$norm"]},
            },
            "multiplies SVB's values",
        ),
    ],
)
def test_rules_outside_the_subset_are_refused_with_reason(value: Any, reason: str) -> None:
    with pytest.raises(NotHeCompilable) as info:
        he(value)
    assert reason in info.value.message
    assert info.value.path.startswith("machine_readable.actions[0]")
