"""The public API of shared.rules is pinned: changing it is a deliberate act."""

from __future__ import annotations

import shared.rules


def test_public_api_is_pinned() -> None:
    assert shared.rules.__all__ == [
        "Batch",
        "BatchError",
        "CheckedRule",
        "HePlan",
        "HouseholdFacts",
        "NoNormInForce",
        "NotHeCompilable",
        "ReleasePolicy",
        "Report",
        "Result",
        "Rule",
        "RuleError",
        "RuleEvaluationError",
        "RuleFormatError",
        "RuleReferenceError",
        "RuleTypeError",
        "Trace",
        "TraceEntry",
        "canonical_json",
        "category_is_couple",
        "check",
        "compile_he",
        "digest",
        "evaluate",
        "interpret",
        "parse_file",
        "parse_text",
        "run_tests",
        "verify_file",
        "verify_rule",
    ]
    for name in shared.rules.__all__:
        assert getattr(shared.rules, name).__module__.startswith("shared.rules")


def test_errors_derive_from_the_project_root() -> None:
    from shared.errors import Error, InputError, NormError

    assert issubclass(shared.rules.RuleError, InputError)
    assert issubclass(shared.rules.NoNormInForce, NormError)
    assert issubclass(shared.rules.NotHeCompilable, Error)
