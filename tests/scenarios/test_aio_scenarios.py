"""Step definitions for the Gherkin scenarios next to this file (pytest-bdd): the shipped rule,
evaluated by both evaluators, on the household each table row describes."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_bdd import given, parsers, scenarios, then, when

from shared.errors import Error
from shared.models import Period, SourceKind
from shared.rules import Batch, CheckedRule, check, evaluate, interpret, parse_file
from shared.rules.batch import HouseholdFacts
from shared.rules.shipped import shipped_rule_path

scenarios("aio_2026.feature")

RULE = check(parse_file(shipped_rule_path()))


@dataclass
class Case:
    rule: CheckedRule
    category: str = "single"
    sharers: int = 0
    known: int = 0
    gross: dict[SourceKind, int] = field(default_factory=dict)
    monthly_wage: int = 0
    outputs: dict[str, object] = field(default_factory=dict)
    refusal: str = ""


@given("the shipped AIO rule", target_fixture="case")
def shipped_rule() -> Case:
    return Case(RULE)


@given(
    parsers.parse("a {category} household with {sharers:d} cost-sharers and known income {known:d}")
)
def household(case: Case, category: str, sharers: int, known: int) -> None:
    case.category, case.sharers, case.known = category, sharers, known


@given(parsers.parse("polis income over the period of {pension:d} pension"))
def pension(case: Case, pension: int) -> None:
    case.gross[SourceKind.PENSION] = pension


@given(parsers.parse("a net wage of {wage:d} in each month of the period"))
def monthly_wage(case: Case, wage: int) -> None:
    case.monthly_wage = wage


@when(parsers.parse("it is screened for the period {period}"))
def screened(case: Case, period: str) -> None:
    p = Period.parse(period)
    gross = dict(case.gross)
    months = None
    if case.monthly_wage:
        gross[SourceKind.WAGE] = case.monthly_wage * p.months
        months = tuple(({SourceKind.WAGE: case.monthly_wage}, {}) for _ in range(p.months))
    facts = HouseholdFacts(
        gross_cents=gross,
        tax_cents={},
        is_couple=case.category == "couple",
        known_income_cents=case.known,
        cost_sharers=case.sharers,
        person_months=months,
    )
    try:
        result = evaluate(case.rule, Batch.from_households(p, [facts]))
        one = interpret(case.rule, p, facts)
    except Error as exc:
        case.refusal = exc.diagnostics()
        return
    case.outputs = {name: values[0].item() for name, values in result.outputs.items()}
    assert case.outputs == dict(one), "the two evaluators disagree"


@then(parsers.parse("its monthly norm is {norm:d}"))
def monthly_norm(case: Case, norm: int) -> None:
    assert case.outputs["norm"] == norm


@then(parsers.parse("the exemption over the period is {exemption:d}"))
def exemption(case: Case, exemption: int) -> None:
    assert case.outputs["vrijlating_arbeid"] == exemption


@then(parsers.parse("the household is {outcome}"))
def outcome(case: Case, outcome: str) -> None:
    assert outcome in ("eligible", "not eligible")
    assert case.outputs["heeft_recht_op_aio"] is (outcome == "eligible")


@then(parsers.parse('the screening is refused naming "{text}"'))
def refused(case: Case, text: str) -> None:
    assert case.refusal, "the screening was not refused"
    assert text in case.refusal
