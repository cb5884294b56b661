"""The vectorised evaluator: a checked rule over a whole :class:`~shared.rules.batch.Batch` at once.

Every expression node becomes a few numpy operations over arrays with one entry per household;
values that are the same for the whole batch (definitions, the number of months) stay Python
scalars until they meet an array. The result is, household by household, identical to
:mod:`shared.rules.interpret` (a property test compares the two on random rules):

* whole numbers are exact (``int64``; :mod:`shared.rules.check` proves they cannot overflow);
* ``DIVIDE`` gives an IEEE double, and a whole number meeting a fraction is converted to a
  double first, in both evaluators;
* ``IF`` only evaluates a case for the households that reach it, so that a division by zero
  in a case that does not apply is not an error (``AND``/``OR`` evaluate all conditions);
* a division by zero for a household that reaches it is refused with the path and household.

With ``trace=True`` the result records, per household, which conditions held.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from shared.models import Period
from shared.rules._common import definition_value, reference_date, render, round_to
from shared.rules.batch import Batch
from shared.rules.check import CheckedRule, Kind, walk
from shared.rules.errors import RuleEvaluationError
from shared.rules.model import (
    COMPARISONS,
    ROUNDING,
    Apply,
    Expr,
    If,
    Lit,
    Operation,
    PolisAttribute,
    PolisSource,
    QueryField,
    QuerySource,
    Ref,
)
from shared.rules.validity import check_period

Array = npt.NDArray[Any]
IntArray = npt.NDArray[np.int64]
Value = Union[Array, bool, int, float, str]  # noqa: UP007
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TraceEntry:
    """One condition of the rule and whether it held for a household."""

    path: str
    text: str
    held: bool


@dataclass(frozen=True)
class Trace:
    """The value of every condition of the rule for every household of a batch."""

    conditions: tuple[tuple[str, str, Value], ...]

    def for_household(self, i: int) -> tuple[TraceEntry, ...]:
        """Which conditions held for household ``i`` (in the order of the document)."""
        return tuple(
            TraceEntry(path, text, bool(v[i] if isinstance(v, np.ndarray) else v))
            for path, text, v in self.conditions
        )


@dataclass(frozen=True)
class Result:
    """Per output an array with one value per household; ``decision`` is the returned output."""

    outputs: Mapping[str, Array]
    decision: BoolArray | None
    trace: Trace | None


_COMPARE: dict[Operation, Callable[[Any, Any], Any]] = {
    Operation.EQUALS: operator.eq,
    Operation.NOT_EQUALS: operator.ne,
    Operation.GREATER_THAN: operator.gt,
    Operation.GREATER_THAN_OR_EQUAL: operator.ge,
    Operation.LESS_THAN: operator.lt,
    Operation.LESS_THAN_OR_EQUAL: operator.le,
}


def evaluate(checked: CheckedRule, batch: Batch, *, trace: bool = False) -> Result:
    """Evaluate every output of ``checked`` for every household of ``batch``.

    A period for which a definition the rule uses has no published value in force is refused
    first (:func:`shared.rules.validity.check_period`), before any household is decided."""
    check_period(checked, batch.period)
    return _Vectorised(checked, batch, trace).run()


def evaluate_nodes(checked: CheckedRule, batch: Batch, nodes: tuple[Expr, ...]) -> list[Value]:
    """The values of some expression nodes of the rule (e.g. the two sides of its decision),
    after every output has been evaluated: what the HE plan uses to compute SVB's threshold."""
    check_period(checked, batch.period)
    evaluator = _Vectorised(checked, batch, False)
    evaluator.run()
    return [evaluator.expr(node, None) for node in nodes]


def person_month_values(checked: CheckedRule, batch: Batch) -> dict[str, IntArray]:
    """The outputs with ``per: person_month``, one value per row of ``batch`` (each row one
    person and month: its gross and tax columns are that person-month's amounts)."""
    evaluator = _Vectorised(checked, batch, False)
    out: dict[str, IntArray] = {}
    for name in checked.person_month_outputs:
        action = checked.rule.action(name)
        assert action is not None
        value = evaluator.expr(action.value, None)
        evaluator.env[name] = value
        out[name] = np.broadcast_to(np.asarray(value, dtype=np.int64), (len(batch),))
    return out


def zero_row_batch(period: Period) -> Batch:
    """One person-month without any record (every amount 0)."""
    zero = np.zeros(1, np.int64)
    return Batch.from_columns(
        period=period,
        gross_cents={},
        tax_cents={},
        is_couple=np.zeros(1, np.bool_),
        known_income_cents=zero,
    )


def person_month_sums(checked: CheckedRule, batch: Batch) -> dict[str, IntArray]:
    """Per household, the sum over its members and months of every ``per: person_month``
    output. A person-month without records must give 0 (it is not in the data)."""
    pm = batch.person_months
    if pm is None:
        raise RuleEvaluationError(
            "the rule computes per person and month, but the batch has no per-person monthly data",
            expected="a batch with person_months (UWV's store supplies them)",
        )
    for name, value in person_month_values(checked, zero_row_batch(batch.period)).items():
        if int(value[0]) != 0:
            raise RuleEvaluationError(
                f"output {name!r} is {int(value[0])} for a person-month without any income; "
                "a per-person function must be 0 there (such months are not in the data)",
                expected="a function that is 0 when every amount is 0",
            )
    rows = Batch.from_columns(
        period=batch.period,
        gross_cents=pm.gross_cents,
        tax_cents=pm.tax_cents,
        is_couple=np.zeros(len(pm), np.bool_),
        known_income_cents=np.zeros(len(pm), np.int64),
    )
    sums: dict[str, IntArray] = {}
    ordered = len(pm) < 2 or bool((np.diff(pm.household) >= 0).all())
    if ordered and len(pm):
        # rows grouped by household (the store and the runner give them so): sum the runs
        starts = np.flatnonzero(np.concatenate([[True], pm.household[1:] != pm.household[:-1]]))
        owners = pm.household[starts]
    for name, value in person_month_values(checked, rows).items():
        total = np.zeros(len(batch), np.int64)
        if ordered and len(pm):
            total[owners] = np.add.reduceat(value, starts)
        else:
            np.add.at(total, pm.household, value)
        sums[name] = total
    return sums


def to_float(value: Value) -> Value:
    """Whole number → double, the same conversion as Python's ``float(int)``."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64)
    return float(value)


class _Vectorised:
    def __init__(self, checked: CheckedRule, batch: Batch, trace: bool) -> None:
        self.c = checked
        self.batch = batch
        self.n = len(batch)
        self.on = reference_date(batch.period)
        self.env: dict[str, Value] = {}
        self.trace: list[tuple[str, str, Value]] | None = [] if trace else None
        # Liveness masks only matter when a division could fail in a case that does not apply.
        self.track_live = any(
            isinstance(n, Apply) and n.op is Operation.DIVIDE
            for a in checked.rule.actions
            for n in walk(a.value)
        )

    def run(self) -> Result:
        if self.c.person_month_outputs:
            self.env.update(person_month_sums(self.c, self.batch))
        for name in self.c.order:
            if name in self.env:
                continue
            action = self.c.rule.action(name)
            assert action is not None
            self.env[name] = self.expr(action.value, None)
        outputs = {name: self._full(self.env[name]) for name in self.c.order}
        decision = outputs[self.c.decision] if self.c.decision is not None else None
        traced = None
        if self.trace is not None:
            traced = Trace(tuple(sorted(self.trace, key=lambda t: _path_key(t[0]))))
        return Result(outputs=MappingProxyType(outputs), decision=decision, trace=traced)

    def _full(self, v: Value) -> Array:
        if isinstance(v, np.ndarray):
            return v
        return np.full(self.n, v)

    # --- references ---------------------------------------------------------------

    def ref(self, name: str) -> Value:
        if name in self.env:
            return self.env[name]
        rule = self.c.rule
        d = rule.definition(name)
        if d is not None:
            value: Value = definition_value(d, self.on)
        else:
            inp = rule.input(name)
            assert inp is not None  # check() resolved every reference
            value = self.source_value(inp.source)
        self.env[name] = value
        return value

    def source_value(self, source: PolisSource | QuerySource | None) -> Value:
        b = self.batch
        if isinstance(source, QuerySource):
            if source.field is QueryField.KNOWN_INCOME:
                return b.known_income_cents
            if source.field is QueryField.HAS_PARTNER:
                return b.is_couple
            if source.field is QueryField.COST_SHARERS:
                return b.cost_sharers
            return b.period.months
        assert source is not None
        try:
            attribute = PolisAttribute(source.attribute)
        except ValueError:
            raise RuleEvaluationError(
                f"the evaluator cannot compute polis attribute {source.attribute!r}",
                expected="gross_income, tax_withheld or net_income",
            ) from None
        total: Array | None = None
        for k in source.kinds:
            if attribute is PolisAttribute.NET_INCOME:
                terms = [(b.gross_cents[k], 1), (b.tax_cents[k], -1)]
            elif attribute is PolisAttribute.GROSS_INCOME:
                terms = [(b.gross_cents[k], 1)]
            else:
                terms = [(b.tax_cents[k], 1)]
            for col, sign in terms:
                if total is None:
                    total = col.copy() if sign > 0 else np.negative(col)
                elif sign > 0:
                    np.add(total, col, out=total)
                else:
                    np.subtract(total, col, out=total)
        assert total is not None
        return total

    # --- expressions --------------------------------------------------------------

    def expr(self, node: Expr, live: BoolArray | None) -> Value:
        value = self._expr(node, live)
        if self.trace is not None and isinstance(node, Apply) and self.c.kind(node) is Kind.BOOL:
            self.trace.append((node.path, render(node), value))
        return value

    def _operands(self, node: Apply, live: BoolArray | None, as_float: bool) -> list[Value]:
        values = [self.expr(a, live) for a in node.args]
        if as_float:
            return [
                to_float(v) if self.c.kind(a) is Kind.INT else v
                for a, v in zip(node.args, values, strict=True)
            ]
        return values

    def _expr(self, node: Expr, live: BoolArray | None) -> Value:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Ref):
            return self.ref(node.name)
        if isinstance(node, If):
            return self.if_(node, live)
        op = node.op
        if op is Operation.AND:
            return functools.reduce(operator.and_, self._operands(node, live, False))
        if op is Operation.OR:
            return functools.reduce(operator.or_, self._operands(node, live, False))
        if op is Operation.NOT:
            (v,) = self._operands(node, live, False)
            return np.logical_not(v) if isinstance(v, np.ndarray) else not v
        if op in COMPARISONS:
            mixed = any(self.c.kind(a) is Kind.FRAC for a in node.args)
            left, right = self._operands(node, live, mixed)
            return _COMPARE[op](left, right)  # type: ignore[no-any-return]
        as_float = self.c.kind(node) is Kind.FRAC
        values = self._operands(node, live, as_float)
        if op is Operation.ADD:
            return functools.reduce(operator.add, values)
        if op is Operation.SUBTRACT:
            return functools.reduce(operator.sub, values)
        if op is Operation.MULTIPLY:
            return functools.reduce(operator.mul, values)
        if op in (Operation.MIN, Operation.MAX):
            return _min_max(op, values)
        if op in ROUNDING:
            return round_to(op, values[0], node.precision or 0)  # type: ignore[no-any-return]
        return self.divide(node, values, live)

    def divide(self, node: Apply, values: list[Value], live: BoolArray | None) -> Value:
        result = values[0]
        for arg, den in zip(node.args[1:], values[1:], strict=True):
            if isinstance(den, np.ndarray):
                zero = den == 0
                if live is not None:
                    zero &= live
                if zero.any():
                    self._zero(arg, int(np.argmax(zero)), int(zero.sum()))
                den = np.where(den == 0, 1.0, den)
            elif den == 0:
                hit = np.flatnonzero(live) if live is not None else np.arange(min(self.n, 1))
                if len(hit):
                    self._zero(arg, int(hit[0]), len(hit) if live is not None else self.n)
                den = 1.0
            result = result / den  # type: ignore[operator]  # never text (check)
        return result

    def _zero(self, arg: Expr, first: int, count: int) -> None:
        raise RuleEvaluationError(
            f"division by zero: {render(arg)} is 0 for {count} household(s), the first at "
            f"position {first} of the batch",
            path=arg.path,
            expected="a divisor that is never 0 (guard it with IF)",
        )

    def if_(self, node: If, live: BoolArray | None) -> Value:
        remaining = live
        if remaining is None and self.track_live:
            remaining = np.ones(self.n, np.bool_)
        conds: list[Value] = []
        values: list[Value] = []
        thens: list[Expr] = []
        fallback: Expr = node.default
        default: Value | None = None
        for case in node.cases:
            c = self.expr(case.when, remaining)
            if self.trace is not None and not isinstance(case.when, Apply):
                self.trace.append((case.when.path, render(case.when), c))
            if not isinstance(c, np.ndarray):
                if c:  # every household still here takes this case
                    fallback = case.then
                    break
                continue
            taken = c & remaining if remaining is not None else None
            conds.append(c)
            thens.append(case.then)
            values.append(self.expr(case.then, taken))
            if remaining is not None:
                remaining = remaining & ~c
        default = self.expr(fallback, remaining)
        if self.c.kind(node) is Kind.FRAC:
            values = [
                to_float(v) if self.c.kind(t) is Kind.INT else v
                for t, v in zip(thens, values, strict=True)
            ]
            if self.c.kind(fallback) is Kind.INT:
                default = to_float(default)
        if not conds:
            return default
        if len(conds) == 1:
            return np.where(conds[0], values[0], default)
        return np.select(conds, values, default)  # type: ignore[type-var,arg-type]


def _min_max(op: Operation, values: list[Value]) -> Value:
    arrays = any(isinstance(v, np.ndarray) for v in values)
    if not arrays:
        return scalar_min_max(op, values)  # type: ignore[arg-type]
    fn = np.minimum if op is Operation.MIN else np.maximum
    return functools.reduce(fn, values)


def scalar_min_max(op: Operation, values: list[int | float]) -> int | float:
    """MIN/MAX of scalars with numpy's rule that a NaN wins, so both evaluators agree."""
    for v in values:
        if v != v:  # NaN
            return v
    return min(values) if op is Operation.MIN else max(values)


def _path_key(path: str) -> list[Any]:
    """Sort paths in document order (``actions[10]`` after ``actions[2]``)."""
    key: list[Any] = []
    for part in path.replace("[", ".[").split("."):
        key.append((0, int(part[1:-1]), "") if part.startswith("[") else (1, 0, part))
    return key
