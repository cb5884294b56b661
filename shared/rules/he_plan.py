"""The HE compiler: is a rule in the homomorphic subset, and if so, the plan the HE mode runs.

The homomorphic mode can only do one thing: UWV computes, in plaintext, a household total

    S_h = Σ_members Σ_months Σ_kinds (gross_weight[k] · gross_cents + tax_weight[k] · tax_cents)

and compares it, under encryption, with SVB's threshold

    T_h = n · (norm(category, end of period) − known_income_coefficient · K)

(``n`` the months in the period if ``months_multiplier``, else 1; ``K`` SVB's own monthly
payment). The household is eligible iff ``S_h < T_h`` (or ``<=``).

:func:`compile_he` decides whether a checked rule's decision has exactly that shape by
evaluating it symbolically, once per norm category: values SVB decides by category (the
partner flag) become constants, ``IF`` on them picks its case, and everything else must
reduce to polynomials in the polis sums, ``K``, ``n`` and the definitions. Anything else —
a second comparison, a MIN/MAX of amounts, income in a condition, a non-integral weight — is
refused with the reason and the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from types import MappingProxyType
from typing import Literal, NamedTuple, Union

from shared.models import NormCategory, Period, SourceKind
from shared.rules._common import reference_date
from shared.rules.canonical import digest
from shared.rules.check import CheckedRule
from shared.rules.errors import NoNormInForce, NotHeCompilable, RuleError
from shared.rules.model import (
    COMPARISONS,
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
    half_year_end,
)


class NormVersion(NamedTuple):
    """A norm amount in force from ``valid_from`` on, with the law it comes from."""

    valid_from: date
    amount_cents: int
    legal_reference: str


@dataclass(frozen=True)
class HePlan:
    """What the homomorphic mode executes for a rule (see the module docstring)."""

    rule_digest: str
    gross_weight: Mapping[SourceKind, int]
    tax_weight: Mapping[SourceKind, int]
    comparison: Literal["<", "<="]
    norms: Mapping[NormCategory, tuple[NormVersion, ...]]
    known_income_coefficient: int
    months_multiplier: bool

    def __post_init__(self) -> None:
        if self.comparison not in ("<", "<="):
            raise NotHeCompilable(f"comparison {self.comparison!r}", expected="'<' or '<='")
        for name in ("gross_weight", "tax_weight"):
            weights = dict(getattr(self, name))
            if set(weights) != set(SourceKind):
                raise NotHeCompilable(f"{name} does not give a weight for every source kind")
            object.__setattr__(self, name, MappingProxyType(weights))
        norms = {c: tuple(sorted(v)) for c, v in self.norms.items()}
        object.__setattr__(self, "norms", MappingProxyType(norms))

    def norm_cents(self, category: NormCategory, on_date: date) -> int:
        """The norm in force on ``on_date``: the latest version with ``valid_from <= on_date``."""
        best: NormVersion | None = None
        versions = self.norms.get(category, ())
        for version in versions:
            if version.valid_from <= on_date:
                best = version
        if versions and versions[-1].valid_from != date.min:
            newest = versions[-1]
            until = half_year_end(newest.valid_from)
            if on_date > until:
                raise NoNormInForce(
                    f"no published norm for category {category.value!r} is in force on "
                    f"{on_date.isoformat()}: the newest is {newest.amount_cents} from "
                    f"{newest.valid_from.isoformat()} ({newest.legal_reference}), in force until "
                    f"{until.isoformat()}",
                    expected=f"a date on or before {until.isoformat()}",
                )
        if best is None:
            known = ", ".join(v.valid_from.isoformat() for v in self.norms.get(category, ()))
            raise NoNormInForce(
                f"no norm for category {category.value!r} is in force on {on_date.isoformat()}",
                expected=f"a date on or after the first norm ({known or 'none known'})",
            )
        return best.amount_cents

    def threshold_cents(
        self, category: NormCategory, period: Period, known_income_cents: int
    ) -> int:
        """SVB's threshold ``T_h`` for one household (norm in force at the end of the period)."""
        n = period.months if self.months_multiplier else 1
        norm = self.norm_cents(category, reference_date(period))
        return n * (norm - self.known_income_coefficient * known_income_cents)

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

Monomial = tuple[str, ...]
Poly = dict[Monomial, Fraction]


@dataclass(frozen=True)
class _Cmp:
    """A comparison ``left op right`` that depends on the household's data."""

    op: Operation
    left: Poly
    right: Poly
    path: str


Sym = Union[bool, Poly, _Cmp]  # noqa: UP007


def _refuse(node: Expr, reason: str) -> NotHeCompilable:
    return NotHeCompilable(
        reason,
        path=node.path,
        expected="a linear sum of polis income compared once with a threshold "
        "built from definitions and SVB's values",
    )


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        out[m] = out.get(m, Fraction(0)) + sign * c
    return {m: c for m, c in out.items() if c != 0}


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = tuple(sorted(ma + mb))
            out[m] = out.get(m, Fraction(0)) + ca * cb
    return {m: c for m, c in out.items() if c != 0}


def _constant(p: Poly) -> Fraction | None:
    if all(m == () for m in p):
        return p.get((), Fraction(0))
    return None


class _Symbolic:
    def __init__(self, checked: CheckedRule, couple: bool) -> None:
        self.c = checked
        self.couple = couple
        self.env: dict[str, Sym] = {}

    def poly(self, node: Expr) -> Poly:
        value = self.expr(node)
        if isinstance(value, bool | _Cmp):
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
                if len(values) != 1:
                    raise _refuse(node, f"the yes/no definition {name!r} changes over time")
                return bool(d.versions[0].value)
            return {(f"def:{name}",): Fraction(1)}
        action = rule.action(name)
        if action is not None:
            value = self.expr(action.value)
            self.env[name] = value
            return value
        inp = rule.input(name)
        assert inp is not None
        src = inp.source
        if isinstance(src, QuerySource):
            if src.field is QueryField.HAS_PARTNER:
                return self.couple
            return {("K" if src.field is QueryField.KNOWN_INCOME else "n",): Fraction(1)}
        assert isinstance(src, PolisSource)
        if set(src.sum_over) != {"members", "months"}:
            raise _refuse(node, f"input {name!r} is not summed over members and months")
        try:
            attr = PolisAttribute(src.attribute)
        except ValueError:
            raise _refuse(
                node, f"polis attribute {src.attribute!r} is not an income amount"
            ) from None
        poly: Poly = {}
        for k in src.kinds:
            if attr is not PolisAttribute.TAX_WITHHELD:
                poly = _add(poly, {(f"gross:{k.value}",): Fraction(1)})
            if attr is not PolisAttribute.GROSS_INCOME:
                sign = -1 if attr is PolisAttribute.NET_INCOME else 1
                poly = _add(poly, {(f"tax:{k.value}",): Fraction(sign)})
        return poly

    def expr(self, node: Expr) -> Sym:
        if isinstance(node, Lit):
            return node.value if isinstance(node.value, bool) else {(): Fraction(node.value)}
        if isinstance(node, Ref):
            return self.ref(node)
        if isinstance(node, If):
            for case in node.cases:
                cond = self.expr(case.when)
                if not isinstance(cond, bool):
                    raise _refuse(
                        case.when,
                        "this IF condition depends on income or on SVB's amount; "
                        "only the household's category may choose a case",
                    )
                if cond:
                    return self.expr(case.then)
            return self.expr(node.default)
        return self.apply(node)

    def apply(self, node: Apply) -> Sym:
        op = node.op
        if op in (Operation.AND, Operation.OR, Operation.NOT):
            values = [self.expr(a) for a in node.args]
            if op is Operation.NOT:
                if isinstance(values[0], bool):
                    return not values[0]
                raise _refuse(
                    node, "NOT of a comparison on income is not in the homomorphic subset"
                )
            unit = op is Operation.AND
            rest = [v for v in values if not isinstance(v, bool)]
            if any(v is (not unit) for v in values if isinstance(v, bool)):
                return not unit  # AND with false, OR with true
            if not rest:
                return unit
            if len(rest) == 1:
                return rest[0]
            raise _refuse(
                node,
                f"{op.value} combines several comparisons on income; the homomorphic "
                "mode compares once",
            )
        if op in COMPARISONS:
            left, right = (self.expr(a) for a in node.args)
            if isinstance(left, bool) and isinstance(right, bool):
                return (left == right) if op is Operation.EQUALS else (left != right)
            if isinstance(left, bool | _Cmp) or isinstance(right, bool | _Cmp):
                raise _refuse(node, "comparison of conditions is not in the homomorphic subset")
            if op in (Operation.EQUALS, Operation.NOT_EQUALS):
                raise _refuse(node, f"{op.value} on amounts is not in the homomorphic subset")
            return _Cmp(op, left, right, node.path)
        polys = [self.poly(a) for a in node.args]
        if op is Operation.ADD:
            out: Poly = {}
            for v in polys:
                out = _add(out, v)
            return out
        if op is Operation.SUBTRACT:
            out = polys[0]
            for v in polys[1:]:
                out = _add(out, v, -1)
            return out
        if op is Operation.MULTIPLY:
            out = {(): Fraction(1)}
            for v in polys:
                out = _mul(out, v)
            return out
        if op is Operation.DIVIDE:
            out = polys[0]
            for arg, v in zip(node.args[1:], polys[1:], strict=True):
                k = _constant(v)
                if k is None or k == 0:
                    raise _refuse(arg, "division by something other than a fixed non-zero number")
                out = {m: c / k for m, c in out.items()}
            return out
        raise _refuse(node, f"{op.value} of amounts is not a linear combination")


@dataclass(frozen=True)
class _Shape:
    gross: dict[SourceKind, int]
    tax: dict[SourceKind, int]
    comparison: Literal["<", "<="]
    known: int
    months: bool
    norm: Poly  # in definitions and a constant


def _shape(checked: CheckedRule, couple: bool) -> _Shape:
    decision = checked.decision
    if decision is None:
        raise NotHeCompilable(
            "the rule has no single decision returned to SVB",
            expected="exactly one boolean output with returned: true",
        )
    action = checked.rule.action(decision)
    assert action is not None
    result = _Symbolic(checked, couple).expr(action.value)
    if not isinstance(result, _Cmp):
        raise _refuse(action.value, "the decision is not a comparison of income with a threshold")
    op = result.op
    if op in (Operation.LESS_THAN, Operation.LESS_THAN_OR_EQUAL):
        diff = _add(result.left, result.right, -1)
    else:
        diff = _add(result.right, result.left, -1)
    comparison: Literal["<", "<="] = (
        "<" if op in (Operation.LESS_THAN, Operation.GREATER_THAN) else "<="
    )
    where = action.value
    gross = dict.fromkeys(SourceKind, 0)
    tax = dict.fromkeys(SourceKind, 0)
    threshold: Poly = {}
    for mono, coef in diff.items():
        income = [a for a in mono if a.startswith(("gross:", "tax:"))]
        if not income:
            threshold[mono] = -coef
            continue
        if len(mono) != 1:
            raise _refuse(
                where,
                "income is multiplied by something ("
                + " × ".join(mono)
                + "); the server sums income with fixed weights only",
            )
        if coef.denominator != 1:
            raise _refuse(where, f"income weight {coef} is not a whole number")
        attr, kind = mono[0].split(":")
        (gross if attr == "gross" else tax)[SourceKind(kind)] = int(coef)
    if not any(gross.values()) and not any(tax.values()):
        raise _refuse(where, "the decision does not depend on polis income")
    months = any("n" in m for m in threshold)
    inner: Poly = {}
    for mono, coef in threshold.items():
        rest = list(mono)
        if months:
            if rest.count("n") != 1:
                raise _refuse(
                    where,
                    "the threshold is not n × (norm − known income): "
                    "some terms are not multiplied by the number of months exactly once",
                )
            rest.remove("n")
        if "n" in rest or len(rest) > 1:
            raise _refuse(
                where, "the threshold multiplies SVB's values or definitions with each other"
            )
        if coef.denominator != 1:
            raise _refuse(where, f"threshold coefficient {coef} is not a whole number")
        inner[tuple(rest)] = coef
    known = inner.pop(("K",), Fraction(0))
    return _Shape(gross, tax, comparison, int(-known), months, inner)


def _norm_versions(checked: CheckedRule, norm: Poly) -> tuple[NormVersion, ...]:
    names = [m[0].removeprefix("def:") for m in norm if m]
    defs = [checked.rule.definition(n) for n in names]
    dates = sorted(
        {v.valid_from or date.min for d in defs if d is not None for v in d.versions} or {date.min}
    )
    cites = sorted({d.legal_basis.cite() for d in defs if d is not None and d.legal_basis})
    reference = "; ".join(cites) or "no legal basis given"
    versions: list[NormVersion] = []
    for day in dates:
        total = norm.get((), Fraction(0))
        complete = True
        for name, d in zip(names, defs, strict=True):
            assert d is not None
            value = d.value_on(day)
            if value is None:
                complete = False
                break
            total += norm[(f"def:{name}",)] * int(value)
        if complete:
            versions.append(NormVersion(day, int(total), reference))
    return tuple(versions)


def compile_he(checked: CheckedRule) -> HePlan:
    """The :class:`HePlan` of a rule, or :class:`NotHeCompilable` with the reason."""
    single = _shape(checked, couple=False)
    couple = _shape(checked, couple=True)
    if (single.gross, single.tax, single.comparison, single.known, single.months) != (
        couple.gross,
        couple.tax,
        couple.comparison,
        couple.known,
        couple.months,
    ):
        raise NotHeCompilable(
            "the income side or the form of the threshold differs between single "
            "and couple households; only the norm may differ"
        )
    return HePlan(
        rule_digest=digest(checked.rule),
        gross_weight=single.gross,
        tax_weight=single.tax,
        comparison=single.comparison,
        norms={
            NormCategory.SINGLE: _norm_versions(checked, single.norm),
            NormCategory.COUPLE: _norm_versions(checked, couple.norm),
        },
        known_income_coefficient=single.known,
        months_multiplier=single.months,
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
    n = "n × " if plan.months_multiplier else ""
    return (
        f"possible; S = Σ ({weights}); eligible iff S {plan.comparison} "
        f"{n}(norm − {plan.known_income_coefficient} × known income)"
    )
