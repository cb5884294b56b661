"""Pieces both evaluators share, so that they cannot drift apart: the reference date,
definition values in force, polis sums and the textual form of an expression."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

import numpy as np

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
        raise not_in_force(d, on)
    return value


def not_in_force(d: Definition, on: date, period: str = "") -> NoNormInForce:
    """The refusal for a date where ``d`` has no published value: names the newest value and
    its date (or the first one, for a date before it), and the period if given."""
    what = f"period {period} ends on {on.isoformat()}" if period else f"on {on.isoformat()}"
    basis = f" ({d.legal_basis.cite()})" if d.legal_basis is not None else ""
    newest = d.newest()
    until = d.valid_until()
    if until is not None and on > until:
        assert newest.valid_from is not None
        return NoNormInForce(
            f"{what}, where no published value of {d.name!r}{basis} is in force: the newest is "
            f"{_show(newest.value)} from {newest.valid_from.isoformat()}, in force until "
            f"{until.isoformat()}; nothing is decided on a stale value",
            path=d.path,
            expected=f"a period ending by {until.isoformat()}, or a rule carrying the value "
            f"published for {on.isoformat()}",
        )
    first = min(v.valid_from for v in d.versions if v.valid_from is not None)
    return NoNormInForce(
        f"{what}, before the first value of {d.name!r}{basis}, which starts {first.isoformat()}",
        path=d.path,
        expected=f"a period ending on or after {first.isoformat()}",
    )


def _show(value: bool | int) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


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


def round_to(op: Operation, value: Any, precision: int) -> Any:
    """ROUND (half away from zero), FLOOR or CEIL of a whole number or fraction, scalar or
    array, to ``10^-precision`` of its unit (``precision <= 0``; 0 = whole cents). The result
    is a whole number (``int`` or ``int64``) in the same unit. Exact for whole numbers; for a
    fraction the rounding decision is exact given the double (no ``x + 0.5`` rounding trap)."""
    scalar = not isinstance(value, np.ndarray)
    arr = np.asarray(value)
    step = 10 ** (-precision)
    if np.issubdtype(arr.dtype, np.integer):
        a = arr.astype(np.int64)
        if op is Operation.FLOOR:
            out = np.floor_divide(a, step) * step
        elif op is Operation.CEIL:
            out = -np.floor_divide(-a, step) * step
        else:
            out = np.sign(a) * ((np.abs(a) + step // 2) // step) * step
    else:
        q = arr.astype(np.float64) / step
        if op is Operation.FLOOR:
            r = np.floor(q)
        elif op is Operation.CEIL:
            r = np.ceil(q)
        else:
            m = np.abs(q)
            fl = np.floor(m)
            r = np.sign(q) * (fl + ((m - fl) >= 0.5))
        out = (r * step).astype(np.int64)
    return int(out) if scalar else out
