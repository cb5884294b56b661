"""Outputs per person and month (``per: person_month``): functions of UWV's own per-person,
per-month data, summed over the household's members and the period's months wherever a
household-level expression uses them; the HE plan carries them as person terms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rules_testkit import STANDARD_DEFINITIONS, STANDARD_INPUTS, checked, decision_doc, document

from shared.models import Period, SourceKind
from shared.rules import Batch, compile_he, evaluate, interpret, verify_rule
from shared.rules.batch import HouseholdFacts, PersonMonths
from shared.rules.errors import RuleEvaluationError, RuleReferenceError, RuleTypeError
from shared.rules.he_plan import he_status

PER_MONTH = {
    "name": "loon_pm",
    "type": "amount",
    "source": {"polis": "net_income", "kinds": ["wage"], "sum_over": []},
}
DEFS = {**STANDARD_DEFINITIONS, "deel": {"legal_basis": {"law": "P", "article": "31"}, "value": 4}}
P = Period.parse("2025-01..2025-02")


def doc(pm_value: Any, *, inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return document(
        [
            {"output": "vrij", "value": pm_value},
            {
                "output": "besluit",
                "value": {
                    "operation": "LESS_THAN",
                    "subject": {"operation": "SUBTRACT", "values": ["$netto", "$vrij"]},
                    "value": "$norm",
                },
            },
        ],
        [
            {"name": "vrij", "type": "amount", "per": "person_month"},
            {"name": "besluit", "type": "boolean", "returned": True},
        ],
        definitions=DEFS,
        inputs=inputs or [*STANDARD_INPUTS, PER_MONTH],
    )


QUARTER = {
    "operation": "MIN",
    "values": [
        "$grens",
        {
            "operation": "MAX",
            "values": [
                0,
                {
                    "operation": "FLOOR",
                    "precision": 0,
                    "value": {"operation": "DIVIDE", "values": ["$loon_pm", "$deel"]},
                },
            ],
        },
    ],
}


def facts(*months: int) -> HouseholdFacts:
    rows = tuple(({SourceKind.WAGE: m}, {SourceKind.WAGE: 0}) for m in months)
    return HouseholdFacts(
        gross_cents={SourceKind.WAGE: sum(months)},
        tax_cents={},
        is_couple=False,
        known_income_cents=0,
        person_months=rows,
    )


def test_summed_per_household_over_members_and_months() -> None:
    rule = checked(doc(QUARTER))
    rows = [facts(30_000, 10_001, -400), facts(), facts(4_000)]
    batch = Batch.from_households(P, rows)
    result = evaluate(rule, batch)
    # min(5000, floor(30000/4)) + floor(10001/4) + 0 = 5000 + 2500; none; 1000
    assert result.outputs["vrij"].tolist() == [7500, 0, 1000]
    for i, row in enumerate(rows):
        assert interpret(rule, P, row)["vrij"] == result.outputs["vrij"][i]


def test_he_plan_carries_the_person_term() -> None:
    plan = compile_he(checked(doc(QUARTER)))
    assert dict(plan.person_terms) == {"vrij": -1}
    assert "-1 × Σ vrij" in he_status(checked(doc(QUARTER)))
    gross = {SourceKind.WAGE: np.array([30_000, 8_000], np.int64)}
    tax = {SourceKind.WAGE: np.array([0, 0], np.int64)}
    assert plan.person_month_total(P, gross, tax).tolist() == [-5000, -2000]


def test_per_person_input_outside_a_per_person_output_is_refused() -> None:
    bad = document(
        [
            {
                "output": "besluit",
                "value": {"operation": "LESS_THAN", "subject": "$loon_pm", "value": "$norm"},
            }
        ],
        [{"name": "besluit", "type": "boolean", "returned": True}],
        definitions=DEFS,
        inputs=[*STANDARD_INPUTS, PER_MONTH],
    )
    with pytest.raises(RuleReferenceError, match="per: person_month"):
        checked(bad)


def test_svb_values_and_household_outputs_are_refused_per_person() -> None:
    with pytest.raises(RuleReferenceError, match="not UWV's per-person"):
        checked(doc({"operation": "ADD", "values": ["$loon_pm", "$bekend"]}))
    with pytest.raises(RuleReferenceError, match="not UWV's per-person"):
        checked(doc("$netto"))


def test_a_fraction_per_person_is_refused() -> None:
    with pytest.raises(RuleTypeError, match="whole cents"):
        checked(doc({"operation": "DIVIDE", "values": ["$loon_pm", "$deel"]}))


def test_a_function_not_zero_without_income_is_refused_when_run() -> None:
    rule = checked(doc({"operation": "ADD", "values": ["$loon_pm", "$grens"]}))
    with pytest.raises(RuleEvaluationError, match="must be 0"):
        evaluate(rule, Batch.from_households(P, [facts(1)]))


def test_a_batch_without_person_months_is_refused() -> None:
    rule = checked(doc(QUARTER))
    batch = Batch.from_columns(
        period=P, gross_cents={}, tax_cents={}, is_couple=[False], known_income_cents=[0]
    )
    with pytest.raises(RuleEvaluationError, match="no per-person monthly data"):
        evaluate(rule, batch)
    ok = Batch.from_columns(
        period=P,
        gross_cents={},
        tax_cents={},
        is_couple=[False],
        known_income_cents=[0],
        person_months=PersonMonths.empty(),
    )
    assert evaluate(rule, ok).outputs["vrij"].tolist() == [0]


def test_verifier_accepts_per_person_input_only_inside_and_still_refuses_partial_sums() -> None:
    report = verify_rule(checked(doc(QUARTER)).rule)
    assert not [f for f in report.findings if f.code == "input"]
    partial = {**PER_MONTH, "source": {**PER_MONTH["source"], "sum_over": ["months"]}}
    partial_doc = decision_doc(
        {"operation": "LESS_THAN", "subject": "$loon_pm", "value": "$norm"},
        definitions=DEFS,
        inputs=[*STANDARD_INPUTS, partial],
    )
    report = verify_rule(checked(partial_doc).rule)
    assert any("not summed over members" in f.message for f in report.findings)
