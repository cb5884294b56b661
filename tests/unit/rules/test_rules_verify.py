"""The static verifier: what it refuses and how the report reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rules_testkit import AIO, STANDARD_INPUTS, decision_doc, document, parse

from shared.rules.verify import ReleasePolicy, Report, verify_file, verify_rule

LT = {"operation": "LESS_THAN", "subject": "$netto", "value": "$grens"}
PASSING_TEST = [
    {
        "name": "laag inkomen",
        "period": "2025-01",
        "household": {"category": "single", "polis": {"wage": {"gross_cents": 10}}},
        "expect": {"besluit": True},
    }
]


def verify(doc: dict[str, Any], policy: ReleasePolicy | None = None) -> Report:
    return verify_rule(parse(doc), policy=policy, file="test.yaml")


def codes(report: Report) -> list[str]:
    return [f.code for f in report.findings]


def test_a_good_rule_is_accepted() -> None:
    report = verify(decision_doc(LT, tests=PASSING_TEST))
    assert report.accepted, report.to_text()
    assert [r.name for r in report.reads] == ["netto"]
    assert report.reads[0].holder == "UWV"


def test_attribute_not_releasable_is_refused() -> None:
    inputs = [
        *STANDARD_INPUTS,
        {"name": "uren", "type": "number", "source": {"polis": "hours_worked"}},
    ]
    doc = decision_doc(
        {"operation": "LESS_THAN", "subject": "$uren", "value": "$grens"},
        inputs=inputs,
        tests=PASSING_TEST,
    )
    report = verify(doc)
    assert not report.accepted
    assert "hours_worked" in report.findings[0].message
    assert "not on UWV's list" in report.findings[0].message
    assert report.findings[0].path == "machine_readable.input[5]"


def test_per_person_income_is_refused() -> None:
    inputs = [
        {
            "name": "netto",
            "type": "amount",
            "source": {"polis": "net_income", "sum_over": ["months"]},
        }
    ]
    report = verify(decision_doc(LT, inputs=inputs, tests=PASSING_TEST))
    assert "not summed over members" in report.findings[0].message


def test_policy_is_configuration(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("polis_attributes: [gross_income]\nmax_cost: 3\n")
    policy = ReleasePolicy.from_file(policy_file)
    report = verify(decision_doc(LT, tests=PASSING_TEST), policy)
    assert set(codes(report)) == {"input", "cost"}


def test_exactly_one_boolean_decision() -> None:
    none = document(
        [{"output": "x", "value": LT}], [{"name": "x", "type": "boolean"}], tests=PASSING_TEST
    )
    assert "no output is marked" in verify(none).findings[0].message
    two = document(
        [{"output": "x", "value": LT}, {"output": "y", "value": LT}],
        [
            {"name": "x", "type": "boolean", "returned": True},
            {"name": "y", "type": "boolean", "returned": True},
        ],
    )
    assert "more than one output" in verify(two).findings[0].message
    amount = document(
        [{"output": "x", "value": "$netto"}], [{"name": "x", "type": "amount", "returned": True}]
    )
    finding = verify(amount).findings[0]
    assert "reveal more than yes/no" in finding.message
    assert finding.expected == "type: boolean"


def test_thresholds_must_be_named_definitions_with_legal_basis() -> None:
    doc = decision_doc(
        {"operation": "LESS_THAN", "subject": "$netto", "value": 150000}, tests=PASSING_TEST
    )
    finding = verify(doc).findings[0]
    assert finding.code == "threshold"
    assert finding.path == "machine_readable.actions[0].value.value"
    assert "150000 is written directly" in finding.message
    doc = decision_doc(LT, definitions={"grens": 5000}, tests=PASSING_TEST)
    finding = verify(doc).findings[0]
    assert "has no legal basis" in finding.message
    assert finding.path == "machine_readable.definitions.grens"


def test_cost_limit() -> None:
    big: Any = "$netto"
    for _ in range(20):
        big = {"operation": "ADD", "values": [big, "$bekend"]}
    doc = decision_doc(
        {"operation": "LESS_THAN", "subject": big, "value": "$grens"}, tests=PASSING_TEST
    )
    report = verify(doc, ReleasePolicy(max_cost=10))
    assert codes(report) == ["cost"]
    assert "at most 10" in report.findings[0].expected


def test_failing_and_missing_test_cases() -> None:
    failing = [{**PASSING_TEST[0], "expect": {"besluit": False}}]
    report = verify(decision_doc(LT, tests=failing))
    assert codes(report) == ["tests"]
    assert "besluit is true, expected false" in report.findings[0].message
    assert report.findings[0].path == "tests[0]"
    assert "no test cases" in verify(decision_doc(LT)).findings[0].message


def test_test_case_with_division_by_zero_fails_with_reason() -> None:
    ratio = {"operation": "DIVIDE", "values": ["$grens", "$netto"]}
    tests = [
        {
            "name": "nul",
            "period": "2025-01",
            "household": {"category": "single"},
            "expect": {"besluit": True},
        }
    ]
    report = verify(
        decision_doc({"operation": "GREATER_THAN", "subject": ratio, "value": 1}, tests=tests)
    )
    assert "division by zero" in report.findings[0].message


def test_check_errors_become_findings() -> None:
    report = verify(decision_doc({"operation": "LESS_THAN", "subject": "$netto", "value": "$x"}))
    assert not report.accepted
    assert report.findings[0].code == "reference"
    assert report.findings[0].path == "test.yaml:machine_readable.actions[0].value.value"
    assert report.digest  # the rule parsed, so it has an identity


def test_report_is_readable_text_and_json() -> None:
    report = verify_file(AIO)
    text = report.to_text()
    for phrase in (
        "VERDICT: ACCEPTED",
        "What the rule reads:",
        "held by UWV",
        "held by SVB",
        "the only answer returned to SVB",
        "art. 22 onderdeel a Participatiewet",
        "19 of 19 passed",
        "Homomorphic mode: possible",
    ):
        assert phrase in text
    data = json.loads(report.to_json())
    assert data["accepted"] is True
    assert data["digest"] == report.digest
    assert Report.model_validate(data) == report


def test_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("machine_readable: [")
    report = verify_file(bad)
    assert not report.accepted and not report.digest
    assert str(bad) in report.findings[0].path
