"""The vectorised evaluator: run-time refusals, traces, the batch interface."""

from __future__ import annotations

import numpy as np
import pytest
from rules_testkit import checked, decision_doc

from shared.models import NormCategory, Period, SourceKind
from shared.rules.batch import Batch, BatchError, HouseholdFacts, category_is_couple
from shared.rules.errors import NoNormInForce, RuleEvaluationError
from shared.rules.evaluate import evaluate
from shared.rules.interpret import interpret

P = Period.parse("2025-01..2025-03")


def row(net: int = 0, known: int = 0, couple: bool = False) -> HouseholdFacts:
    return HouseholdFacts({SourceKind.PENSION: net}, {}, couple, known)


def ratio_rule() -> dict[str, object]:
    ratio = {"operation": "DIVIDE", "values": ["$grens", "$netto"]}
    return decision_doc({"operation": "GREATER_THAN", "subject": ratio, "value": 1})


def test_division_by_zero_names_path_and_household() -> None:
    rule = checked(ratio_rule())
    batch = Batch.from_households(P, [row(10), row(0), row(0)])
    with pytest.raises(RuleEvaluationError) as info:
        evaluate(rule, batch)
    assert info.value.path == "machine_readable.actions[0].value.subject.values[1]"
    assert "2 household(s)" in info.value.message
    assert "position 1" in info.value.message
    with pytest.raises(RuleEvaluationError, match="division by zero"):
        interpret(rule, P, row(0))


def test_division_in_a_case_that_does_not_apply_is_fine() -> None:
    guarded = {
        "operation": "IF",
        "cases": [
            {
                "when": {"operation": "EQUALS", "subject": "$netto", "value": 0},
                "then": False,
            }
        ],
        "default": {
            "operation": "GREATER_THAN",
            "subject": {"operation": "DIVIDE", "values": ["$grens", "$netto"]},
            "value": 1,
        },
    }
    rule = checked(decision_doc(guarded))
    result = evaluate(rule, Batch.from_households(P, [row(10), row(0), row(10_000)]))
    assert result.decision is not None
    assert result.decision.tolist() == [True, False, False]


def test_no_norm_in_force_is_refused() -> None:
    rule = checked(decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": "$norm"}))
    early = Period.parse("2024-01..2024-03")
    with pytest.raises(NoNormInForce) as info:
        evaluate(rule, Batch.from_households(early, [row()]))
    assert "2024-03-31" in info.value.message
    assert info.value.path == "machine_readable.definitions.norm"


def test_norm_in_force_at_end_of_period() -> None:
    rule = checked(decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": "$norm"}))
    across = Period.parse("2024-12..2025-01")
    result = evaluate(rule, Batch.from_households(across, [row(150_000), row(150_107)]))
    assert result.decision is not None
    assert result.decision.tolist() == [True, False]


def test_trace_lists_which_conditions_held() -> None:
    cond = {
        "operation": "AND",
        "conditions": [
            {"operation": "LESS_THAN", "subject": "$netto", "value": "$grens"},
            {"operation": "NOT", "value": "$partner"},
        ],
    }
    rule = checked(decision_doc(cond))
    result = evaluate(rule, Batch.from_households(P, [row(100), row(100, couple=True)]), trace=True)
    assert result.trace is not None
    first = {e.text: e.held for e in result.trace.for_household(0)}
    second = {e.text: e.held for e in result.trace.for_household(1)}
    assert first == {
        "((netto < grens) and not partner)": True,
        "(netto < grens)": True,
        "not partner": True,
    }
    assert second["not partner"] is False
    assert second["((netto < grens) and not partner)"] is False


def test_batch_refuses_inconsistent_columns() -> None:
    with pytest.raises(BatchError, match="one value per household"):
        Batch.from_columns(
            period=P,
            gross_cents={SourceKind.WAGE: [1, 2]},
            tax_cents={},
            is_couple=np.array([True]),
            known_income_cents=[0],
        )
    with pytest.raises(BatchError, match="outside"):
        Batch.from_columns(
            period=P,
            gross_cents={},
            tax_cents={},
            is_couple=np.array([True]),
            known_income_cents=[-1],
        )
    with pytest.raises(BatchError, match="whole numbers"):
        Batch.from_columns(
            period=P,
            gross_cents={SourceKind.WAGE: [1.5]},
            tax_cents={},
            is_couple=np.array([True]),
            known_income_cents=[0],
        )


def test_batch_columns_are_read_only_and_categories_convert() -> None:
    couple = category_is_couple([NormCategory.SINGLE, NormCategory.COUPLE])
    batch = Batch.from_columns(
        period=P,
        gross_cents={SourceKind.WAGE: [1, 2]},
        tax_cents={},
        is_couple=couple,
        known_income_cents=[0, 0],
    )
    assert batch.is_couple.tolist() == [False, True]
    assert batch.tax_cents[SourceKind.OTHER].tolist() == [0, 0]
    with pytest.raises(ValueError):
        batch.gross_cents[SourceKind.WAGE][0] = 5
    assert len(batch) == 2
    assert batch.household(1).gross_cents[SourceKind.WAGE] == 2


def test_empty_batch() -> None:
    rule = checked(ratio_rule())
    result = evaluate(rule, Batch.from_households(P, []))
    assert result.decision is not None
    assert len(result.decision) == 0
