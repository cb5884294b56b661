"""Parsing refusals: every one names the file, the path inside the document and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from rules_testkit import checked, decision_doc, document, parse, to_yaml

from shared.rules.errors import RuleFormatError, RuleTypeError
from shared.rules.expressions import MAX_EXPRESSION_DEPTH
from shared.rules.load import MAX_DOCUMENT_BYTES
from shared.rules.parse import parse_file, parse_text

LT = {"operation": "LESS_THAN", "subject": "$netto", "value": "$grens"}


def refusal(doc: dict[str, object]) -> RuleFormatError:
    with pytest.raises(RuleFormatError) as info:
        parse(doc)
    return info.value


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("machine_readable:\n  definitions: {a: 1\n  input: [\n")
    with pytest.raises(RuleFormatError) as info:
        parse_file(bad)
    assert str(bad) in str(info.value)
    assert "not valid YAML" in str(info.value)
    assert "line" in info.value.path


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(RuleFormatError, match="not a mapping"):
        parse_text("- a\n- b\n", file="x.yaml")


def test_python_tags_are_refused_not_executed() -> None:
    text = "machine_readable: !!python/object/apply:os.system ['echo hacked']\n"
    with pytest.raises(RuleFormatError, match="not valid YAML"):
        parse_text(text)


def test_unknown_operation_is_refused_by_name_with_path() -> None:
    doc = decision_doc(
        {"operation": "AND", "conditions": [LT, {"operation": "FOREACH", "values": []}]}
    )
    err = refusal(doc)
    assert "'FOREACH' is not supported" in err.message
    assert err.path == "machine_readable.actions[0].value.conditions[1].operation"
    assert "LESS_THAN" in err.expected
    assert "test.yaml" in str(err)


def test_missing_operand_names_the_expected_shape() -> None:
    err = refusal(decision_doc({"operation": "LESS_THAN", "subject": "$netto"}))
    assert err.path == "machine_readable.actions[0].value"
    assert "subject: A and value: B" in err.expected


def test_wrong_operand_key_is_refused() -> None:
    err = refusal(decision_doc({"operation": "AND", "conditions": [LT], "values": [1]}))
    assert err.path == "machine_readable.actions[0].value.values"


def test_subtract_needs_two_values() -> None:
    err = refusal(
        decision_doc(
            {
                "operation": "LESS_THAN",
                "subject": {"operation": "SUBTRACT", "values": [1]},
                "value": 0,
            }
        )
    )
    assert err.path.endswith("value.subject.values")
    assert "at least 2" in err.expected


def test_deep_nesting_is_refused() -> None:
    expr: object = "$netto"
    for _ in range(MAX_EXPRESSION_DEPTH + 2):
        expr = {"operation": "ADD", "values": [expr]}
    err = refusal(decision_doc({"operation": "LESS_THAN", "subject": expr, "value": 0}))
    assert "nested too deeply" in err.message


def test_deep_yaml_nesting_is_refused() -> None:
    text = "a: " + "[" * 200 + "]" * 200 + "\n"
    with pytest.raises(RuleFormatError, match="nested too deeply"):
        parse_text(text)


def test_huge_document_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_DOCUMENT_BYTES + "\n")
    with pytest.raises(RuleFormatError, match="bytes long"):
        parse_file(big)
    with pytest.raises(RuleFormatError, match="too large"):
        parse_text("# " + "x" * MAX_DOCUMENT_BYTES)


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(RuleFormatError, match="too many elements"):
        parse_text("\n".join(lines) + "\n")


def test_fractions_and_text_values_are_refused() -> None:
    err = refusal(decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": 12.5}))
    assert "whole number" in err.expected
    # a text literal loads (RegelRecht has them); computing with it is refused by the checker
    with pytest.raises(RuleTypeError, match="text value"):
        checked(decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": "veel"}))


def test_definition_errors_have_paths() -> None:
    doc = decision_doc(
        LT, definitions={"grens": {"versions": [{"valid_from": "morgen", "value": 1}]}}
    )
    err = refusal(doc)
    assert err.path == "machine_readable.definitions.grens.versions[0].valid_from"
    doc = decision_doc(LT, definitions={"grens": 0.5})
    assert refusal(doc).path == "machine_readable.definitions.grens"


def test_unknown_source_kind_and_query_field() -> None:
    inputs = [
        {"name": "netto", "type": "amount", "source": {"polis": "net_income", "kinds": ["gift"]}}
    ]
    err = refusal(decision_doc(LT, inputs=inputs))
    assert err.path == "machine_readable.input[0].source.kinds[0]"
    inputs = [{"name": "netto", "type": "amount", "source": {"query": "salary"}}]
    err = refusal(decision_doc(LT, inputs=inputs))
    assert "SVB does not send" in err.message


def test_bad_test_case_is_refused_with_path() -> None:
    tests = [
        {"name": "t", "period": "2025-01", "household": {"category": "trio"}, "expect": {"x": 1}}
    ]
    err = refusal(decision_doc(LT, tests=tests))
    assert err.path == "tests[0].household.category"


def test_regelrecht_layout_needs_a_machine_readable_article() -> None:
    doc = {"$id": "x", "articles": [{"number": "1"}, {"number": "2"}]}
    with pytest.raises(RuleFormatError, match="no article has a machine_readable section"):
        parse_text(to_yaml(doc))


def test_parse_keeps_paths_and_types() -> None:
    rule = parse(document([{"output": "x", "value": LT}], [{"name": "x", "type": "boolean"}]))
    assert rule.actions[0].value.path == "machine_readable.actions[0].value"
    assert rule.definition("norm") is not None
