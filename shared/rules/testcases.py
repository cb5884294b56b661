"""Running the test cases bundled with a rule.

Each test case is run by both evaluators (the vectorised one on a batch of one, and the
per-household interpreter); a test passes when both give every expected output. A test
whose data cannot be evaluated (a division by zero, no norm in force) fails with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import Error
from shared.models import Period, SourceKind
from shared.rules._syntax import (
    as_list,
    constant,
    fail,
    join,
    mapping,
    name_of,
    no_extra,
    text,
    whole,
)
from shared.rules.batch import Batch, HouseholdFacts
from shared.rules.check import CheckedRule
from shared.rules.evaluate import evaluate
from shared.rules.interpret import interpret
from shared.rules.model import PersonMonthCase, PolisSums, TestCase


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
        cost_sharers=case.cost_sharers,
        person_months=tuple(
            ({k: p.gross_cents for k, p in m.polis}, {k: p.tax_cents for k, p in m.polis})
            for m in case.months
        )
        or None,
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
    no_extra(
        h,
        {"category", "known_income_cents", "cost_sharers", "polis", "months"},
        hpath,
        "household",
    )
    category = h.get("category")
    if category not in ("single", "couple"):
        raise fail(join(hpath, "category"), f"category is {category!r}", "single or couple")
    months = _months(h.get("months", []), join(hpath, "months"))
    polis = _polis(h.get("polis", {}), join(hpath, "polis"))
    if months:
        if "polis" in h:
            raise fail(
                join(hpath, "polis"),
                "a test household gives both polis sums and months",
                "either polis: (sums over the period) or months: (per person and month)",
            )
        totals: dict[SourceKind, tuple[int, int]] = {}
        for pm in months:
            for kind, sums in pm.polis:
                g, t = totals.get(kind, (0, 0))
                totals[kind] = (g + sums.gross_cents, t + sums.tax_cents)
        polis = [(k, PolisSums(gross_cents=g, tax_cents=t)) for k, (g, t) in totals.items()]
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
        cost_sharers=whole(h.get("cost_sharers", 0), join(hpath, "cost_sharers"), "cost_sharers"),
        polis=tuple(sorted(polis)),
        months=months,
        expect=tuple(
            sorted(
                (name_of(k, join(epath, k), "output"), constant(v, join(epath, k)))
                for k, v in expect.items()
            )
        ),
        path=path,
    )


def _polis(value: object, ppath: str) -> list[tuple[SourceKind, PolisSums]]:
    """``{kind: {gross_cents, tax_cents}}`` → sorted (kind, sums)."""
    polis: list[tuple[SourceKind, PolisSums]] = []
    for kind, sums in mapping(value, ppath, "polis").items():
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
    return sorted(polis)


def _months(value: object, mpath: str) -> tuple[PersonMonthCase, ...]:
    """``months: [{person: 1, month: YYYY-MM, wage: {...}, ...}]`` → person-month cases."""
    out: list[PersonMonthCase] = []
    for i, item in enumerate(as_list(value, mpath, "months")):
        ipath = join(mpath, i)
        m = mapping(item, ipath, "a person-month")
        person = whole(m.get("person", 1), join(ipath, "person"), "person")
        month = text(m.get("month"), join(ipath, "month"), "month")
        rest = {k: v for k, v in m.items() if k not in ("person", "month")}
        out.append(PersonMonthCase(person=person, month=month, polis=tuple(_polis(rest, ipath))))
    return tuple(out)
