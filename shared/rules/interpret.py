"""The reference interpreter: a checked rule for one household, in plain Python.

It is deliberately straightforward — one household, one node at a time — so that it can
serve as the specification the vectorised evaluator (:mod:`shared.rules.evaluate`) is tested
against. The semantics are documented there and in ``docs/rules.md``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from datetime import date

from shared.models import Period, SourceKind
from shared.rules._common import definition_value, polis_value, reference_date, render, round_to
from shared.rules.batch import HouseholdFacts
from shared.rules.check import CheckedRule, Kind
from shared.rules.errors import RuleEvaluationError
from shared.rules.evaluate import _COMPARE, scalar_min_max
from shared.rules.model import (
    COMPARISONS,
    ROUNDING,
    Apply,
    Expr,
    If,
    Lit,
    Operation,
    QueryField,
    QuerySource,
    Ref,
)
from shared.rules.validity import check_period

Scalar = bool | int | float | str


def interpret(
    checked: CheckedRule, period: Period, household: HouseholdFacts
) -> Mapping[str, Scalar]:
    """Every output of the rule for one household (a period without published values in force
    is refused first, as in :func:`shared.rules.evaluate.evaluate`)."""
    check_period(checked, period)
    return _Interpreter(checked, period, household).run()


class _Interpreter:
    def __init__(self, checked: CheckedRule, period: Period, household: HouseholdFacts) -> None:
        self.c = checked
        self.period = period
        self.h = household
        self.on: date = reference_date(period)
        self.env: dict[str, Scalar] = {}

    def run(self) -> Mapping[str, Scalar]:
        if self.c.person_month_outputs:
            self.env.update(self.person_month_sums())
        for name in self.c.order:
            if name in self.env:
                continue
            action = self.c.rule.action(name)
            assert action is not None
            self.env[name] = self.expr(action.value)
        return dict(self.env)

    def person_month_values(self) -> dict[str, int]:
        """The ``per: person_month`` outputs for this "household" taken as one person-month."""
        for name in self.c.person_month_outputs:
            action = self.c.rule.action(name)
            assert action is not None
            self.env[name] = self.expr(action.value)
        return {n: int(self.env[n]) for n in self.c.person_month_outputs}

    def person_month_sums(self) -> dict[str, int]:
        zero = HouseholdFacts(gross_cents={}, tax_cents={}, is_couple=False, known_income_cents=0)
        for name, value in _Interpreter(self.c, self.period, zero).person_month_values().items():
            if value != 0:
                raise RuleEvaluationError(
                    f"output {name!r} is {value} for a person-month without any income; "
                    "a per-person function must be 0 there (such months are not in the data)",
                    expected="a function that is 0 when every amount is 0",
                )
        months = self.h.person_months
        if months is None:
            months = ((self.h.gross_cents, self.h.tax_cents),)
        sums = dict.fromkeys(self.c.person_month_outputs, 0)
        for gross, tax in months:
            row = HouseholdFacts(
                gross_cents=gross, tax_cents=tax, is_couple=False, known_income_cents=0
            )
            for name, value in _Interpreter(self.c, self.period, row).person_month_values().items():
                sums[name] += value
        return sums

    def ref(self, name: str) -> Scalar:
        if name in self.env:
            return self.env[name]
        d = self.c.rule.definition(name)
        if d is not None:
            return definition_value(d, self.on)
        inp = self.c.rule.input(name)
        assert inp is not None and inp.source is not None
        if isinstance(inp.source, QuerySource):
            if inp.source.field is QueryField.KNOWN_INCOME:
                return self.h.known_income_cents
            if inp.source.field is QueryField.HAS_PARTNER:
                return self.h.is_couple
            if inp.source.field is QueryField.COST_SHARERS:
                return self.h.cost_sharers
            return self.period.months
        gross = {k: self.h.gross_cents.get(k, 0) for k in SourceKind}
        tax = {k: self.h.tax_cents.get(k, 0) for k in SourceKind}
        return polis_value(inp.source, gross, tax, operator.add, operator.sub)

    def num(self, node: Expr, as_float: bool) -> Scalar:
        value = self.expr(node)
        if as_float and self.c.kind(node) is Kind.INT:
            return float(value)
        return value

    def expr(self, node: Expr) -> Scalar:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Ref):
            return self.ref(node.name)
        if isinstance(node, If):
            as_float = self.c.kind(node) is Kind.FRAC
            for case in node.cases:
                if self.expr(case.when):
                    return self.num(case.then, as_float)
            return self.num(node.default, as_float)
        op = node.op
        if op in (Operation.AND, Operation.OR):
            # all conditions are evaluated (no short cut), exactly like the vectorised evaluator
            values = [bool(self.expr(a)) for a in node.args]
            return all(values) if op is Operation.AND else any(values)
        if op is Operation.NOT:
            return not self.expr(node.args[0])
        if op in COMPARISONS:
            mixed = any(self.c.kind(a) is Kind.FRAC for a in node.args)
            left, right = (self.num(a, mixed) for a in node.args)
            return bool(_COMPARE[op](left, right))
        as_float = self.c.kind(node) is Kind.FRAC
        nums: list[Scalar] = [self.num(a, as_float) for a in node.args]
        if op is Operation.ADD:
            return functools.reduce(operator.add, nums)
        if op is Operation.SUBTRACT:
            return functools.reduce(operator.sub, nums)
        if op is Operation.MULTIPLY:
            return functools.reduce(operator.mul, nums)
        if op in (Operation.MIN, Operation.MAX):
            return scalar_min_max(op, nums)  # type: ignore[arg-type]
        if op in ROUNDING:
            return int(round_to(op, nums[0], node.precision or 0))
        return self.divide(node, nums)

    def divide(self, node: Apply, values: list[Scalar]) -> Scalar:
        result = values[0]
        for arg, den in zip(node.args[1:], values[1:], strict=True):
            if den == 0:
                raise RuleEvaluationError(
                    f"division by zero: {render(arg)} is 0 for this household",
                    path=arg.path,
                    expected="a divisor that is never 0 (guard it with IF)",
                )
            result = result / den  # type: ignore[operator]  # never text (check)
        return result
