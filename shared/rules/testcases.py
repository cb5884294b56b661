"""Running the test cases bundled with a rule.

Each test case is run by both evaluators (the vectorised one on a batch of one, and the
per-household interpreter); a test passes when both give every expected output. A test
whose data cannot be evaluated (a division by zero, no norm in force) fails with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import Error
from shared.models import Period
from shared.rules.batch import Batch, HouseholdFacts
from shared.rules.check import CheckedRule
from shared.rules.evaluate import evaluate
from shared.rules.interpret import interpret
from shared.rules.model import TestCase


@dataclass(frozen=True)
class TestOutcome:
    """The outcome of one bundled test case; ``problems`` is empty when it passed."""

    __test__ = False  # not a pytest class

    name: str
    path: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def facts(case: TestCase) -> HouseholdFacts:
    """The household of a test case as evaluator input."""
    return HouseholdFacts(
        gross_cents={k: s.gross_cents for k, s in case.polis},
        tax_cents={k: s.tax_cents for k, s in case.polis},
        is_couple=case.has_partner,
        known_income_cents=case.known_income_cents,
    )


def run_case(checked: CheckedRule, case: TestCase) -> TestOutcome:
    """Run one test case with both evaluators."""
    problems: list[str] = []
    try:
        period = Period.parse(case.period)
        household = facts(case)
        one = interpret(checked, period, household)
        many = evaluate(checked, Batch.from_households(period, [household]))
    except Error as exc:
        return TestOutcome(case.name, case.path, (exc.diagnostics(),))
    for output, expected in case.expect:
        if output not in one:
            problems.append(f"expects output {output!r}, which the rule does not have")
            continue
        got, vec = one[output], many.outputs[output][0].item()
        if got != vec:
            problems.append(f"{output}: the two evaluators disagree ({got!r} vs {vec!r})")
        if type(expected) is bool and type(got) is not bool:
            problems.append(f"{output} is {got!r}, expected {_show(expected)}")
        elif got != expected or (type(expected) is bool) != (type(got) is bool):
            problems.append(f"{output} is {_show(got)}, expected {_show(expected)}")
    return TestOutcome(case.name, case.path, tuple(problems))


def run_tests(checked: CheckedRule) -> tuple[TestOutcome, ...]:
    """Run every test case bundled with the rule."""
    return tuple(run_case(checked, case) for case in checked.rule.tests)


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
