"""Pieces both evaluators share, so that they cannot drift apart: the reference date,
definition values in force, polis sums and the textual form of an expression."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import TypeVar

from shared.models import Period, SourceKind
from shared.rules.errors import NoNormInForce, RuleEvaluationError
from shared.rules.model import (
    Apply,
    Definition,
    Expr,
    If,
    Lit,
    Operation,
    PolisAttribute,
    PolisSource,
    Ref,
)

T = TypeVar("T")


def reference_date(period: Period) -> date:
    """Definitions (norms) are taken as in force on the last day of the period."""
    return period.end.last_day()


def definition_value(d: Definition, on: date) -> bool | int:
    """The value of ``d`` in force on ``on``; :class:`NoNormInForce` if there is none."""
    value = d.value_on(on)
    if value is None:
        first = min(v.valid_from for v in d.versions if v.valid_from is not None)
        raise NoNormInForce(
            f"definition {d.name!r} has no value in force on {on.isoformat()} (its first version "
            f"starts {first.isoformat()})",
            path=d.path,
            expected=f"a version with valid_from on or before {on.isoformat()}",
        )
    return value


def polis_value(
    source: PolisSource,
    gross: Mapping[SourceKind, T],
    tax: Mapping[SourceKind, T],
    add: Callable[[T, T], T],
    sub: Callable[[T, T], T],
) -> T:
    """The household sum of ``source.attribute`` over ``source.kinds`` (members and months are
    already summed in the batch)."""
    try:
        attribute = PolisAttribute(source.attribute)
    except ValueError:
        raise RuleEvaluationError(
            f"the evaluator cannot compute polis attribute {source.attribute!r}",
            expected="gross_income, tax_withheld or net_income",
        ) from None
    total: T | None = None
    for k in source.kinds:
        if attribute is PolisAttribute.GROSS_INCOME:
            term = gross[k]
        elif attribute is PolisAttribute.TAX_WITHHELD:
            term = tax[k]
        else:
            term = sub(gross[k], tax[k])
        total = term if total is None else add(total, term)
    assert total is not None  # kinds is never empty (parser)
    return total


_SYMBOL = {
    Operation.EQUALS: "=",
    Operation.NOT_EQUALS: "≠",
    Operation.GREATER_THAN: ">",
    Operation.GREATER_THAN_OR_EQUAL: "≥",
    Operation.LESS_THAN: "<",
    Operation.LESS_THAN_OR_EQUAL: "≤",
    Operation.ADD: "+",
    Operation.SUBTRACT: "−",
    Operation.MULTIPLY: "×",
    Operation.DIVIDE: "÷",
}


def render(node: Expr, depth: int = 0) -> str:
    """A readable one-line form of an expression, for reports and traces."""
    if depth > 6:
        return "…"
    if isinstance(node, Lit):
        return str(node.value).lower() if isinstance(node.value, bool) else str(node.value)
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, If):
        parts = [
            f"if {render(c.when, depth + 1)} then {render(c.then, depth + 1)}" for c in node.cases
        ]
        return "(" + ", ".join(parts) + f", otherwise {render(node.default, depth + 1)})"
    assert isinstance(node, Apply)
    args = [render(a, depth + 1) for a in node.args]
    if node.op in _SYMBOL:
        return "(" + f" {_SYMBOL[node.op]} ".join(args) + ")"
    if node.op is Operation.NOT:
        return f"not {args[0]}"
    if node.op in (Operation.AND, Operation.OR):
        return "(" + f" {node.op.value.lower()} ".join(args) + ")"
    return f"{node.op.value.lower()}(" + ", ".join(args) + ")"
