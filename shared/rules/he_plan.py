"""The HE compiler: is a rule in the homomorphic subset, and if so, the plan the HE mode runs.

The homomorphic subset is: **a fixed integer-weighted sum of UWV's own data per household,
compared once with a threshold that only SVB's values and the rule's definitions determine.**
UWV computes, in plaintext, the household total

    S_h = Σ_members Σ_months Σ_kinds (gross_weight[k] · gross_cents + tax_weight[k] · tax_cents)

and compares it, under encryption, with SVB's threshold ``T_h``; the household is eligible
iff ``S_h < T_h`` (or ``<=``). ``T_h`` may be any function of SVB's per-household values
(partner, known income, cost-sharers, months) and the definitions in force: SVB computes it
by evaluating the rule itself with all of UWV's data set to zero (:meth:`HePlan.thresholds`),
so cost-sharer norms with rounding, IF on the household's situation and the like are all in
the subset.

:func:`compile_he` decides whether a checked rule's decision has that shape by evaluating it
symbolically: every amount is a linear form in the polis sums plus a part that does not
depend on UWV's data (a known constant, or "opaque": something only SVB's values and dated
definitions determine). Income multiplied by anything but a fixed number, income inside a
condition or under MIN/MAX/ROUND, a second comparison on income, or a non-integral weight is
refused with the reason and the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Literal, Union

import numpy as np
import numpy.typing as npt

from shared.models import IncomeWeights, NormCategory, Period, SourceKind
from shared.rules.batch import Batch, PersonMonths
from shared.rules.canonical import digest
from shared.rules.check import CheckedRule
from shared.rules.errors import NotHeCompilable, RuleError
from shared.rules.evaluate import evaluate_nodes, person_month_values
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
    QuerySource,
    Ref,
)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class HePlan:
    """What the homomorphic mode executes for a rule (see the module docstring)."""

    rule_digest: str
    gross_weight: Mapping[SourceKind, int]
    tax_weight: Mapping[SourceKind, int]
    comparison: Literal["<", "<="]
    checked: CheckedRule = field(repr=False, compare=False)
    income_side: Expr = field(repr=False, compare=False)
    threshold_side: Expr = field(repr=False, compare=False)
    person_terms: Mapping[str, int] = field(default_factory=dict)
    """Outputs computed per person and month (e.g. an exemption) with their weight in ``S``."""

    def __post_init__(self) -> None:
        if self.comparison not in ("<", "<="):
            raise NotHeCompilable(f"comparison {self.comparison!r}", expected="'<' or '<='")
        for name in ("gross_weight", "tax_weight"):
            weights = dict(getattr(self, name))
            if set(weights) != set(SourceKind):
                raise NotHeCompilable(f"{name} does not give a weight for every source kind")
            object.__setattr__(self, name, MappingProxyType(weights))

    def person_month_total(
        self,
        period: Period,
        gross_cents: Mapping[SourceKind, IntArray],
        tax_cents: Mapping[SourceKind, IntArray],
    ) -> IntArray:
        """``Σ weight · f(row)`` over :attr:`person_terms`, one value per person-month row
        (each row one person's amounts in one month): what UWV adds to ``S`` for that
        person-month, computed by the rule's own evaluator. Zero without person terms."""
        n = len(next(iter(gross_cents.values()))) if gross_cents else 0
        total = np.zeros(n, np.int64)
        if not self.person_terms:
            return total
        rows = Batch.from_columns(
            period=period,
            gross_cents=gross_cents,
            tax_cents=tax_cents,
            is_couple=np.zeros(n, np.bool_),
            known_income_cents=np.zeros(n, np.int64),
        )
        values = person_month_values(self.checked, rows)
        for name, weight in self.person_terms.items():
            total += weight * values[name]
        return total

    @property
    def income_weights(self) -> IncomeWeights:
        """UWV's income definition for the store (:mod:`uwv_server.store`)."""
        return IncomeWeights.of(dict(self.gross_weight), dict(self.tax_weight))

    def thresholds(
        self,
        period: Period,
        is_couple: npt.ArrayLike,
        known_income_cents: npt.ArrayLike,
        cost_sharers: npt.ArrayLike | None = None,
    ) -> IntArray:
        """SVB's whole-number thresholds ``T_h``, one per household: eligible iff
        ``S_h < T_h`` (``<=`` for a ``<=`` plan). Computed by evaluating the rule with UWV's
        data at zero; a period without published values in force is refused
        (:class:`~shared.rules.errors.NoNormInForce`)."""
        couple = np.asarray(is_couple, dtype=np.bool_)
        n = len(couple)
        zeros = {k: np.zeros(n, np.int64) for k in SourceKind}
        batch = Batch.from_columns(
            period=period,
            gross_cents=zeros,
            tax_cents=zeros,
            is_couple=couple,
            known_income_cents=known_income_cents,
            cost_sharers=cost_sharers,
            person_months=PersonMonths.empty(),
        )
        income, threshold = evaluate_nodes(
            self.checked, batch, (self.income_side, self.threshold_side)
        )
        t = np.asarray(threshold) - np.asarray(income)
        t = np.broadcast_to(t, (n,))
        if np.issubdtype(t.dtype, np.floating):
            # S < t  iff  S < ceil(t);  S <= t  iff  S <= floor(t)   (S a whole number)
            t = np.ceil(t) if self.comparison == "<" else np.floor(t)
        return np.asarray(t, dtype=np.int64)

    def threshold_cents(
        self,
        category: NormCategory,
        period: Period,
        known_income_cents: int,
        cost_sharers: int = 0,
    ) -> int:
        """:meth:`thresholds` for one household."""
        return int(
            self.thresholds(
                period,
                [category is NormCategory.COUPLE],
                [known_income_cents],
                [cost_sharers],
            )[0]
        )

    def household_sum(
        self, gross_cents: Mapping[SourceKind, int], tax_cents: Mapping[SourceKind, int]
    ) -> int:
        """UWV's ``S_h`` from per-kind sums over members and months (absent kinds count 0)."""
        return sum(
            self.gross_weight[k] * gross_cents.get(k, 0) + self.tax_weight[k] * tax_cents.get(k, 0)
            for k in SourceKind
        )

    def eligible(self, household_sum: int, threshold: int) -> bool:
        """The decision: ``S_h < T_h`` (or ``<=``)."""
        return household_sum < threshold if self.comparison == "<" else household_sum <= threshold


# --- symbolic evaluation ---------------------------------------------------------------

OPAQUE = "opaque"  # a part that SVB's values or dated definitions determine (not UWV's data)


@dataclass(frozen=True)
class _Lin:
    """An amount: ``Σ income[atom] · atom + rest``, ``rest`` a known number or opaque."""

    income: dict[str, Fraction]
    rest: Fraction | str


@dataclass(frozen=True)
class _Cmp:
    """A comparison on income: ``left op right``."""

    op: Operation
    left: _Lin
    right: _Lin
    node: Apply


Sym = Union[bool, str, _Lin, _Cmp]  # noqa: UP007 - bool known, OPAQUE an SVB-side condition


def _refuse(node: Expr, reason: str) -> NotHeCompilable:
    return NotHeCompilable(
        reason,
        path=node.path,
        expected="a sum of UWV's income with fixed whole-number weights, compared once with a "
        "threshold built from definitions and SVB's values",
    )


def _plus(a: _Lin, b: _Lin, sign: int = 1) -> _Lin:
    income = dict(a.income)
    for atom, c in b.income.items():
        income[atom] = income.get(atom, Fraction(0)) + sign * c
    income = {k: v for k, v in income.items() if v != 0}
    if isinstance(a.rest, Fraction) and isinstance(b.rest, Fraction):
        return _Lin(income, a.rest + sign * b.rest)
    return _Lin(income, OPAQUE)


def _scale(a: _Lin, k: Fraction) -> _Lin:
    rest = a.rest * k if isinstance(a.rest, Fraction) else OPAQUE
    return _Lin({m: c * k for m, c in a.income.items() if c * k != 0}, rest)


def _const(a: _Lin) -> Fraction | None:
    return a.rest if not a.income and isinstance(a.rest, Fraction) else None


class _Symbolic:
    def __init__(self, checked: CheckedRule) -> None:
        self.c = checked
        self.env: dict[str, Sym] = {}

    def lin(self, node: Expr) -> _Lin:
        value = self.expr(node)
        if not isinstance(value, _Lin):
            raise _refuse(node, "an amount was expected here")
        return value

    def ref(self, node: Ref) -> Sym:
        name = node.name
        if name in self.env:
            return self.env[name]
        rule = self.c.rule
        d = rule.definition(name)
        if d is not None:
            values = {v.value for v in d.versions}
            if isinstance(d.versions[0].value, bool):
                return bool(d.versions[0].value) if len(values) == 1 else OPAQUE
            if len(values) == 1:
                return _Lin({}, Fraction(int(d.versions[0].value)))
            return _Lin({}, OPAQUE)
        action = rule.action(name)
        if action is not None:
            if name in self.c.person_month_outputs:
                # UWV computes it per person and month in plaintext and sums it: an income term
                value: Sym = _Lin({f"pm:{name}": Fraction(1)}, Fraction(0))
            else:
                value = self.expr(action.value)
            self.env[name] = value
            return value
        inp = rule.input(name)
        assert inp is not None
        src = inp.source
        if isinstance(src, QuerySource):
            return OPAQUE if inp.type.value == "boolean" else _Lin({}, OPAQUE)
        assert isinstance(src, PolisSource)
        if set(src.sum_over) != {"members", "months"}:
            raise _refuse(node, f"input {name!r} is not summed over members and months")
        try:
            attr = PolisAttribute(src.attribute)
        except ValueError:
            raise _refuse(
                node, f"polis attribute {src.attribute!r} is not an income amount"
            ) from None
        income: dict[str, Fraction] = {}
        for k in src.kinds:
            if attr is not PolisAttribute.TAX_WITHHELD:
                income[f"gross:{k.value}"] = income.get(f"gross:{k.value}", Fraction(0)) + 1
            if attr is not PolisAttribute.GROSS_INCOME:
                sign = -1 if attr is PolisAttribute.NET_INCOME else 1
                income[f"tax:{k.value}"] = income.get(f"tax:{k.value}", Fraction(0)) + sign
        return _Lin(income, Fraction(0))

    def expr(self, node: Expr) -> Sym:
        if isinstance(node, Lit):
            return node.value if isinstance(node.value, bool) else _Lin({}, Fraction(node.value))
        if isinstance(node, Ref):
            return self.ref(node)
        if isinstance(node, If):
            return self.if_(node)
        return self.apply(node)

    def if_(self, node: If) -> Sym:
        taken: list[tuple[Expr, Sym]] = []
        for case in node.cases:
            cond = self.expr(case.when)
            if isinstance(cond, _Cmp | _Lin):
                raise _refuse(
                    case.when,
                    "this IF condition depends on income; only SVB's values and definitions "
                    "may choose a case",
                )
            if cond is False:
                continue
            taken.append((case.then, self.expr(case.then)))
            if cond is True:
                break
        else:
            taken.append((node.default, self.expr(node.default)))
        if len(taken) == 1:
            return taken[0][1]
        values = [v for _, v in taken]
        if all(isinstance(v, bool | str) for v in values):
            return OPAQUE
        lins = [v for v in values if isinstance(v, _Lin)]
        if len(lins) != len(values) or any(v.income != lins[0].income for v in lins):
            raise _refuse(
                node,
                "the cases of this IF count income differently; the server sums income with "
                "the same weights for every household",
            )
        return _Lin(dict(lins[0].income), OPAQUE)

    def apply(self, node: Apply) -> Sym:
        op = node.op
        if op in (Operation.AND, Operation.OR, Operation.NOT):
            values = [self.expr(a) for a in node.args]
            if any(isinstance(v, _Lin) for v in values):
                raise _refuse(node, f"{op.value} of an amount")
            cmps = [v for v in values if isinstance(v, _Cmp)]
            if op is Operation.NOT:
                if cmps:
                    raise _refuse(
                        node, "NOT of a comparison on income is not in the homomorphic subset"
                    )
                return (not values[0]) if isinstance(values[0], bool) else OPAQUE
            unit = op is Operation.AND
            if any(v is (not unit) for v in values):
                return not unit  # AND with false, OR with true
            rest = [v for v in values if not isinstance(v, bool)]
            if not rest:
                return unit
            if len(rest) == 1:
                return rest[0]
            if cmps:
                raise _refuse(
                    node,
                    f"{op.value} combines a comparison on income with other conditions; the "
                    "homomorphic mode compares once",
                )
            return OPAQUE
        if op in COMPARISONS:
            left, right = (self.expr(a) for a in node.args)
            if isinstance(left, _Cmp) or isinstance(right, _Cmp):
                raise _refuse(node, "comparison of conditions is not in the homomorphic subset")
            if isinstance(left, bool | str) or isinstance(right, bool | str):
                if isinstance(left, bool) and isinstance(right, bool):
                    return (left == right) if op is Operation.EQUALS else (left != right)
                return OPAQUE
            if not left.income and not right.income:
                a, b = _const(left), _const(right)
                return OPAQUE if a is None or b is None else _fold(op, a, b)
            if op in (Operation.EQUALS, Operation.NOT_EQUALS):
                raise _refuse(node, f"{op.value} on income is not in the homomorphic subset")
            return _Cmp(op, left, right, node)
        lins = [self.lin(a) for a in node.args]
        if op in ROUNDING or op in (Operation.MIN, Operation.MAX):
            if any(v.income for v in lins):
                raise _refuse(node, f"{op.value} of income is not a fixed-weight sum")
            return _Lin({}, OPAQUE)
        if op in (Operation.ADD, Operation.SUBTRACT):
            out = lins[0]
            for v in lins[1:]:
                out = _plus(out, v, 1 if op is Operation.ADD else -1)
            return out
        if op is Operation.MULTIPLY:
            out = lins[0]
            for arg, v in zip(node.args[1:], lins[1:], strict=True):
                k_out, k_v = _const(out), _const(v)
                if k_v is not None:
                    out = _scale(out, k_v)
                elif k_out is not None:
                    out = _scale(v, k_out)
                elif out.income or v.income:
                    raise _refuse(
                        arg,
                        "income is multiplied by something that is not a fixed number; the "
                        "server sums income with fixed weights only",
                    )
                else:
                    out = _Lin({}, OPAQUE)
            return out
        # DIVIDE
        out = lins[0]
        for arg, v in zip(node.args[1:], lins[1:], strict=True):
            k = _const(v)
            if k is not None and k != 0:
                out = _scale(out, 1 / k)
            elif out.income or v.income:
                raise _refuse(arg, "income divided by something other than a fixed number")
            else:
                out = _Lin({}, OPAQUE)
        return out


def _fold(op: Operation, a: Fraction, b: Fraction) -> bool:
    return {
        Operation.EQUALS: a == b,
        Operation.NOT_EQUALS: a != b,
        Operation.LESS_THAN: a < b,
        Operation.LESS_THAN_OR_EQUAL: a <= b,
        Operation.GREATER_THAN: a > b,
        Operation.GREATER_THAN_OR_EQUAL: a >= b,
    }[op]


def compile_he(checked: CheckedRule) -> HePlan:
    """The :class:`HePlan` of a rule, or :class:`NotHeCompilable` with the reason."""
    decision = checked.decision
    if decision is None:
        raise NotHeCompilable(
            "the rule has no single decision returned to SVB",
            expected="exactly one boolean output with returned: true",
        )
    action = checked.rule.action(decision)
    assert action is not None
    result = _Symbolic(checked).expr(action.value)
    if not isinstance(result, _Cmp):
        raise _refuse(action.value, "the decision is not a comparison of income with a threshold")
    op = result.op
    left_node, right_node = result.node.args
    if op in (Operation.LESS_THAN, Operation.LESS_THAN_OR_EQUAL):
        diff = _plus(result.left, result.right, -1)
        income_side, threshold_side = left_node, right_node
    else:
        diff = _plus(result.right, result.left, -1)
        income_side, threshold_side = right_node, left_node
    comparison: Literal["<", "<="] = (
        "<" if op in (Operation.LESS_THAN, Operation.GREATER_THAN) else "<="
    )
    gross = dict.fromkeys(SourceKind, 0)
    tax = dict.fromkeys(SourceKind, 0)
    person: dict[str, int] = {}
    for atom, coef in diff.income.items():
        if coef.denominator != 1:
            raise _refuse(action.value, f"income weight {coef} is not a whole number")
        attr, name = atom.split(":")
        if attr == "pm":
            person[name] = int(coef)
        else:
            (gross if attr == "gross" else tax)[SourceKind(name)] = int(coef)
    if not any(gross.values()) and not any(tax.values()) and not person:
        raise _refuse(action.value, "the decision does not depend on polis income")
    return HePlan(
        rule_digest=digest(checked.rule),
        gross_weight=gross,
        tax_weight=tax,
        comparison=comparison,
        person_terms=person,
        checked=checked,
        income_side=income_side,
        threshold_side=threshold_side,
    )


def he_status(checked: CheckedRule) -> str:
    """One line for the verifier's report: whether and how the rule runs homomorphically."""
    try:
        plan = compile_he(checked)
    except RuleError as exc:
        return "not possible: " + exc.diagnostics()
    weights = ", ".join(
        f"{k.value}: gross ×{plan.gross_weight[k]}, tax ×{plan.tax_weight[k]}" for k in SourceKind
    )
    person = "".join(f" {w:+d} × Σ {name}" for name, w in plan.person_terms.items())
    return (
        f"possible; S = Σ ({weights}){person} (per person and month, summed); eligible iff "
        f"S {plan.comparison} T, with T computed by SVB from its own values and the "
        "definitions in force"
    )
