"""Running the test cases bundled with a rule.

Each test case is run by both evaluators (the vectorised one on a batch of one, and the
per-household interpreter); a test passes when both give every expected output. A test
whose data cannot be evaluated (a division by zero, no norm in force) fails with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import Error
from shared.models import Period, SourceKind
from shared.rules._syntax import constant, fail, join, mapping, name_of, no_extra, text, whole
from shared.rules.batch import Batch, HouseholdFacts
from shared.rules.check import CheckedRule
from shared.rules.evaluate import evaluate
from shared.rules.interpret import interpret
from shared.rules.model import PolisSums, TestCase


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


def parse_test(value: object, path: str) -> TestCase:
    """Parse a bundled test case (see docs/rules.md for its form)."""
    m = mapping(value, path, "a test case")
    no_extra(m, {"name", "period", "household", "expect"}, path, "a test case")
    name = text(m.get("name"), join(path, "name"), "name")
    period = text(m.get("period"), join(path, "period"), "period")
    hpath = join(path, "household")
    h = mapping(m.get("household"), hpath, "household")
    no_extra(h, {"category", "known_income_cents", "polis"}, hpath, "household")
    category = h.get("category")
    if category not in ("single", "couple"):
        raise fail(join(hpath, "category"), f"category is {category!r}", "single or couple")
    ppath = join(hpath, "polis")
    polis: list[tuple[SourceKind, PolisSums]] = []
    for kind, sums in mapping(h.get("polis", {}), ppath, "polis").items():
        kp = join(ppath, kind)
        try:
            sk = SourceKind(kind)
        except ValueError:
            raise fail(
                kp,
                f"{kind!r} is not a source kind",
                "one of " + ", ".join(s.value for s in SourceKind),
            ) from None
        sm = mapping(sums, kp, "polis sums")
        no_extra(sm, {"gross_cents", "tax_cents"}, kp, "polis sums")
        polis.append(
            (
                sk,
                PolisSums(
                    gross_cents=whole(
                        sm.get("gross_cents", 0), join(kp, "gross_cents"), "gross_cents"
                    ),
                    tax_cents=whole(sm.get("tax_cents", 0), join(kp, "tax_cents"), "tax_cents"),
                ),
            )
        )
    epath = join(path, "expect")
    expect = mapping(m.get("expect"), epath, "expect")
    if not expect:
        raise fail(epath, "the test case expects nothing", "at least one output: value")
    return TestCase(
        name=name,
        period=period,
        has_partner=category == "couple",
        known_income_cents=whole(
            h.get("known_income_cents", 0), join(hpath, "known_income_cents"), "known_income_cents"
        ),
        polis=tuple(sorted(polis)),
        expect=tuple(
            sorted(
                (name_of(k, join(epath, k), "output"), constant(v, join(epath, k)))
                for k, v in expect.items()
            )
        ),
        path=path,
    )
