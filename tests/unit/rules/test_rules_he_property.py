"""Properties of the HE compiler: it never crashes, and whenever it gives a plan, the plan
decides exactly like the evaluator."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rules_testkit import checked, decision_doc
from test_rules_equivalence import households, rules

from shared.models import NormCategory, Period
from shared.rules.batch import Batch, HouseholdFacts
from shared.rules.errors import NotHeCompilable, RuleTypeError
from shared.rules.evaluate import evaluate
from shared.rules.he_plan import compile_he

SIDES = [
    ("LESS_THAN", False),
    ("LESS_THAN_OR_EQUAL", False),
    ("GREATER_THAN", True),
    ("GREATER_THAN_OR_EQUAL", True),
]


@st.composite
def linear_rules(draw: st.DrawFn) -> dict[str, Any]:
    terms = [
        {"operation": "MULTIPLY", "values": [draw(st.integers(-3, 3)), name]}
        for name in draw(
            st.lists(st.sampled_from(["$netto", "$bruto_loon"]), min_size=1, max_size=3)
        )
    ]
    income = {"operation": "ADD", "values": terms}
    norm = {
        "operation": "IF",
        "cases": [{"when": "$partner", "then": "$norm"}],
        "default": draw(st.sampled_from(["$grens", "$norm"])),
    }
    known = {"operation": "MULTIPLY", "values": [draw(st.integers(0, 2)), "$bekend"]}
    inner = {"operation": "SUBTRACT", "values": [norm, known]}
    threshold = draw(
        st.sampled_from([inner, {"operation": "MULTIPLY", "values": ["$maanden", inner]}])
    )
    op, swap = draw(st.sampled_from(SIDES))
    left, right = (threshold, income) if swap else (income, threshold)
    return decision_doc({"operation": op, "subject": left, "value": right})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=linear_rules(),
    rows=st.lists(households(), min_size=1, max_size=8),
    period=st.sampled_from(["2024-07..2024-09", "2025-01", "2024-12..2025-02"]),
)
def test_plan_decides_like_the_evaluator(
    doc: dict[str, Any], rows: list[HouseholdFacts], period: str
) -> None:
    rule = checked(doc)
    try:
        plan = compile_he(rule)
    except NotHeCompilable:
        assume(False)  # e.g. all income weights cancel out
        raise
    p = Period.parse(period)
    decision = evaluate(rule, Batch.from_households(p, rows)).decision
    assert decision is not None
    for row, want in zip(rows, decision.tolist(), strict=True):
        category = NormCategory.COUPLE if row.is_couple else NormCategory.SINGLE
        s = plan.household_sum(row.gross_cents, row.tax_cents)
        t = plan.threshold_cents(category, p, row.known_income_cents, row.cost_sharers)
        assert plan.eligible(s, t) == want


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=rules())
def test_compiler_refuses_cleanly(doc: dict[str, Any]) -> None:
    try:
        rule = checked(doc)
    except RuleTypeError:
        assume(False)
        raise
    try:
        compile_he(rule)
    except NotHeCompilable as exc:
        assert exc.message
