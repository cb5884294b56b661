"""Checker refusals: types, references, cycles, value ranges."""

from __future__ import annotations

import pytest
from rules_testkit import checked, decision_doc, document

from shared.rules.errors import RuleReferenceError, RuleTypeError

LT = {"operation": "LESS_THAN", "subject": "$netto", "value": "$grens"}


def test_adding_a_boolean_to_an_amount_is_a_type_error() -> None:
    add = {"operation": "ADD", "values": ["$netto", "$partner"]}
    with pytest.raises(RuleTypeError) as info:
        checked(decision_doc({"operation": "LESS_THAN", "subject": add, "value": "$grens"}))
    assert info.value.path == "machine_readable.actions[0].value.subject.values[1]"
    assert "condition (true/false)" in info.value.message
    assert "amount" in info.value.expected


def test_and_of_an_amount_is_a_type_error() -> None:
    with pytest.raises(RuleTypeError) as info:
        checked(decision_doc({"operation": "AND", "conditions": [LT, "$netto"]}))
    assert info.value.path == "machine_readable.actions[0].value.conditions[1]"


def test_equals_of_boolean_and_amount() -> None:
    with pytest.raises(RuleTypeError, match="compares a true/false with a whole number"):
        checked(decision_doc({"operation": "EQUALS", "subject": "$partner", "value": "$netto"}))


def test_if_branches_must_agree() -> None:
    value = {"operation": "IF", "cases": [{"when": "$partner", "then": "$netto"}], "default": True}
    doc = document([{"output": "x", "value": value}], [{"name": "x", "type": "amount"}])
    with pytest.raises(RuleTypeError) as info:
        checked(doc)
    assert info.value.path.endswith("value.default")


def test_output_type_must_match_declaration() -> None:
    doc = document([{"output": "x", "value": "$netto"}], [{"name": "x", "type": "boolean"}])
    with pytest.raises(RuleTypeError, match="declared boolean"):
        checked(doc)


def test_undefined_reference_names_path() -> None:
    with pytest.raises(RuleReferenceError) as info:
        checked(decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": "$drempel"}))
    assert "$drempel is not defined" in info.value.message
    assert info.value.path == "machine_readable.actions[0].value.value"


def test_cycle_between_outputs_is_refused() -> None:
    doc = document(
        [
            {"output": "a", "value": {"operation": "ADD", "values": ["$b", 1]}},
            {"output": "b", "value": {"operation": "ADD", "values": ["$c", 1]}},
            {"output": "c", "value": {"operation": "ADD", "values": ["$a", 1]}},
        ],
        [{"name": n, "type": "amount"} for n in "abc"],
    )
    with pytest.raises(RuleReferenceError) as info:
        checked(doc)
    assert "cycle: a → b → c → a" in info.value.message


def test_self_reference_is_a_cycle() -> None:
    doc = document([{"output": "a", "value": "$a"}], [{"name": "a", "type": "amount"}])
    with pytest.raises(RuleReferenceError, match="cycle"):
        checked(doc)


def test_duplicate_names_and_missing_actions() -> None:
    doc = document([], [{"name": "netto", "type": "amount"}])
    with pytest.raises(RuleReferenceError, match="used twice: for the input and for the output"):
        checked(doc)
    doc = document([], [{"name": "x", "type": "amount"}])
    with pytest.raises(RuleReferenceError, match="never computed"):
        checked(doc)
    doc = document([{"output": "y", "value": 1}], [])
    with pytest.raises(RuleReferenceError, match="not a declared output"):
        checked(doc)


def test_unbound_foreign_input_is_refused_when_used() -> None:
    inputs = [{"name": "netto", "type": "amount", "source": {"regulation": "wet_x", "output": "y"}}]
    with pytest.raises(RuleReferenceError) as info:
        checked(
            decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": 0}, inputs=inputs)
        )
    assert "regulation=wet_x output=y" in info.value.message
    assert "binding" in info.value.expected


def test_text_input_cannot_be_computed_with() -> None:
    inputs = [{"name": "netto", "type": "string", "source": {"query": "known_income"}}]
    with pytest.raises(RuleTypeError):
        checked(
            decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": 0}, inputs=inputs)
        )


def test_query_type_must_match() -> None:
    inputs = [{"name": "netto", "type": "boolean", "source": {"query": "known_income"}}]
    with pytest.raises(RuleTypeError, match="SVB's known_income is amount"):
        checked(decision_doc("$netto", inputs=inputs))


def test_overflowing_multiplication_is_refused() -> None:
    product = {"operation": "MULTIPLY", "values": ["$netto", "$netto", "$netto"]}
    with pytest.raises(RuleTypeError, match="too large"):
        checked(decision_doc({"operation": "LESS_THAN", "subject": product, "value": 0}))


def test_checked_rule_lists_what_is_used() -> None:
    c = checked(decision_doc(LT))
    assert c.used_inputs == ("netto",)
    assert c.used_definitions == ("grens",)
    assert c.decision == "besluit"
