"""Static checks of a parsed rule: names, types, references, cycles and value ranges.

The result, :class:`CheckedRule`, is what the evaluators and the HE compiler take: past this
step every reference resolves, every operation has operands of the right type, outputs are in
an order where each only uses earlier ones, and no whole-number calculation can leave the
range the vectorised evaluator computes in (``int64``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from shared.models import (
    MAX_COST_SHARERS,
    MAX_HOUSEHOLD_MEMBERS,
    MAX_KNOWN_INCOME_CENTS,
    MAX_PERIOD_MONTHS,
)
from shared.rules.errors import RuleReferenceError, RuleTypeError
from shared.rules.model import (
    COMPARISONS,
    LOGICAL,
    QUERY_FIELD_TYPES,
    ROUNDING,
    Apply,
    Expr,
    If,
    Input,
    Lit,
    Operation,
    PolisSource,
    QueryField,
    QuerySource,
    Ref,
    Rule,
    Scope,
    ValueType,
)

MAX_POLIS_SUM_CENTS: Final = 2**40
"""Bound on one household's polis sum for one source kind over the period (about EUR 11 bn):
the batch refuses larger values, so the range analysis below can rely on it."""

SAFE_INT: Final = 2**62
"""Whole-number results must stay below this in magnitude (int64 with headroom)."""


class Kind(enum.Enum):
    """The type of a value during evaluation."""

    BOOL = "true/false"
    INT = "whole number"
    FRAC = "fraction"  # the result of a DIVIDE
    TEXT = "text"  # a RegelRecht text literal: it may be an output, nothing computes with it

    @property
    def numeric(self) -> bool:
        return self in (Kind.INT, Kind.FRAC)


@dataclass(frozen=True)
class CheckedRule:
    """A rule that passed :func:`check`.

    ``order`` lists the outputs so that each only refers to outputs before it; ``kinds``
    maps ``id(node)`` of every expression node to its type; ``bounds`` maps ``id(node)`` of
    whole-number nodes to a bound on their magnitude.
    """

    rule: Rule
    order: tuple[str, ...]
    kinds: dict[int, Kind]
    bounds: dict[int, int]
    decision: str | None
    used_inputs: tuple[str, ...]
    used_definitions: tuple[str, ...]
    person_month_outputs: tuple[str, ...] = ()
    """Outputs computed per person and month (in dependency order)."""

    def kind(self, node: Expr) -> Kind:
        return self.kinds[id(node)]


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of an expression, parents before children."""
    stack: list[Expr] = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Apply):
            stack.extend(reversed(n.args))
        elif isinstance(n, If):
            stack.append(n.default)
            for c in reversed(n.cases):
                stack.extend((c.then, c.when))


def _declared_kind(t: ValueType) -> Kind:
    return Kind.BOOL if t is ValueType.BOOLEAN else Kind.INT


def _input_bound(inp: Input) -> int:
    if isinstance(inp.source, PolisSource):
        return MAX_POLIS_SUM_CENTS * 2 * len(inp.source.kinds)
    if isinstance(inp.source, QuerySource):
        if inp.source.field is QueryField.KNOWN_INCOME:
            return MAX_KNOWN_INCOME_CENTS
        if inp.source.field is QueryField.PERIOD_MONTHS:
            return MAX_PERIOD_MONTHS
        if inp.source.field is QueryField.COST_SHARERS:
            return MAX_COST_SHARERS
    return 1


def check(rule: Rule) -> CheckedRule:
    """Check a rule; raise :class:`RuleTypeError` or :class:`RuleReferenceError` at the first
    problem."""
    return _Checker(rule).run()


class _Checker:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.kinds: dict[int, Kind] = {}
        self.bounds: dict[int, int] = {}
        self.frac_bounds: dict[int, int] = {}  # magnitude bounds of fractions (for ROUND)
        self.output_kinds: dict[str, Kind] = {}
        self.output_bounds: dict[str, int] = {}
        self.used_inputs: set[str] = set()
        self.used_definitions: set[str] = set()
        self.scope = Scope.HOUSEHOLD

    def run(self) -> CheckedRule:
        rule = self.rule
        seen: dict[str, str] = {}
        for what, name, path in (
            [("definition", d.name, d.path) for d in rule.definitions]
            + [("input", i.name, i.path) for i in rule.inputs]
            + [("output", o.name, o.path) for o in rule.outputs]
        ):
            if name in seen:
                raise RuleReferenceError(
                    f"the name {name!r} is used twice: for the {seen[name]} and for the {what} "
                    f"declared here",
                    path=path,
                    expected="each definition, input and output has its own name",
                )
            seen[name] = what
        for inp in rule.inputs:
            if isinstance(inp.source, QuerySource):
                want = QUERY_FIELD_TYPES[inp.source.field]
                if (want is ValueType.BOOLEAN) != (inp.type is ValueType.BOOLEAN):
                    raise RuleTypeError(
                        f"input {inp.name!r} is declared as {inp.type.value} but SVB's "
                        f"{inp.source.field.value} is {want.value}",
                        path=inp.path,
                        expected=f"type: {want.value}",
                    )
            if isinstance(inp.source, PolisSource) and inp.type is ValueType.BOOLEAN:
                raise RuleTypeError(
                    f"input {inp.name!r} is declared boolean but polis income is an amount",
                    path=inp.path,
                    expected="type: amount",
                )
        acted: dict[str, str] = {}
        for act in rule.actions:
            if rule.output(act.output) is None:
                raise RuleReferenceError(
                    f"the action computes {act.output!r}, which is not a declared output",
                    path=act.path,
                    expected="an output listed under output",
                )
            if act.output in acted:
                raise RuleReferenceError(
                    f"output {act.output!r} is computed twice",
                    path=act.path,
                    expected="one action per output",
                )
            acted[act.output] = act.path
        for out in rule.outputs:
            if out.name not in acted:
                raise RuleReferenceError(
                    f"output {out.name!r} is declared but never computed",
                    path=out.path,
                    expected="an action with output: " + out.name,
                )
        order = self.order()
        for name in order:
            action = rule.action(name)
            declared = rule.output(name)
            assert action is not None and declared is not None
            self.scope = declared.per
            kind = self.expr(action.value)
            if declared.inferred:
                self.output_kinds[name] = kind
                self.output_bounds[name] = self._bound(action.value) if kind.numeric else 1
                continue
            if (kind is Kind.TEXT) != (declared.type is ValueType.STRING):
                raise RuleTypeError(
                    f"output {name!r} is declared {declared.type.value} "
                    f"but its value is a {kind.value}",
                    path=action.path + ".value",
                    expected=f"a value of type {declared.type.value}",
                )
            if declared.per is Scope.PERSON_MONTH and kind is not Kind.INT:
                raise RuleTypeError(
                    f"output {name!r} is computed per person and month, but its value is a "
                    f"{kind.value}; it is summed over the household, so it must be whole cents",
                    path=action.path + ".value",
                    expected="an amount (use ROUND/FLOOR/CEIL with precision 0 on a fraction)",
                )
            if (kind is Kind.BOOL) != (declared.type is ValueType.BOOLEAN):
                raise RuleTypeError(
                    f"output {name!r} is declared {declared.type.value} "
                    f"but its value is a {kind.value}",
                    path=action.path + ".value",
                    expected=f"a value of type {declared.type.value}",
                )
            self.output_kinds[name] = kind
            self.output_bounds[name] = self._bound(action.value) if kind.numeric else 1
        returned = [o.name for o in rule.outputs if o.returned]
        return CheckedRule(
            rule=rule,
            order=tuple(order),
            kinds=self.kinds,
            bounds=self.bounds,
            decision=returned[0] if len(returned) == 1 else None,
            used_inputs=tuple(i.name for i in rule.inputs if i.name in self.used_inputs),
            used_definitions=tuple(
                d.name for d in rule.definitions if d.name in self.used_definitions
            ),
            person_month_outputs=tuple(
                n
                for n in order
                if (o := rule.output(n)) is not None and o.per is Scope.PERSON_MONTH
            ),
        )

    def order(self) -> list[str]:
        """Outputs in dependency order; a cycle or an unknown name is refused."""
        names = {o.name for o in self.rule.outputs}
        deps: dict[str, list[tuple[str, str]]] = {}
        for act in self.rule.actions:
            refs = [(n.name, n.path) for n in walk(act.value) if isinstance(n, Ref)]
            for ref, path in refs:
                if (
                    ref not in names
                    and self.rule.definition(ref) is None
                    and self.rule.input(ref) is None
                ):
                    raise RuleReferenceError(
                        f"${ref} is not defined",
                        path=path,
                        expected="the name of a definition, input or output of this rule",
                    )
            deps[act.output] = [(r, p) for r, p in refs if r in names]
        done: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str], path: str) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*trail[trail.index(name) :], name]
                raise RuleReferenceError(
                    "outputs depend on each other in a cycle: " + " → ".join(cycle),
                    path=path,
                    expected="outputs that only use definitions, inputs and other outputs, "
                    "never (through others) themselves",
                )
            state[name] = 1
            for dep, dpath in deps.get(name, []):
                visit(dep, [*trail, name], dpath)
            state[name] = 2
            done.append(name)

        for act in self.rule.actions:
            visit(act.output, [], act.path)
        return done

    def expr(self, node: Expr) -> Kind:
        kind, bound = self._expr(node)
        self.kinds[id(node)] = kind
        if kind is Kind.INT:
            if bound >= SAFE_INT:
                raise RuleTypeError(
                    "this calculation can produce numbers too large to compute exactly",
                    path=node.path,
                    expected="results below 2^62 for all valid inputs",
                )
            self.bounds[id(node)] = bound
        elif kind is Kind.FRAC and id(node) not in self.frac_bounds:
            self.frac_bounds[id(node)] = min(bound, SAFE_INT)
        return kind

    def _bound(self, node: Expr) -> int:
        """A bound on the magnitude of a checked numeric node (whole number or fraction)."""
        if id(node) in self.bounds:
            return self.bounds[id(node)]
        return self.frac_bounds.get(id(node), SAFE_INT if self.kinds.get(id(node)) else 1)

    def _operand(self, node: Expr, want: str, op: str) -> Kind:
        kind = self.expr(node)
        if kind is Kind.TEXT:
            raise RuleTypeError(
                f"{op} is given a text value; this rule language loads text literals but "
                "computes only with amounts, numbers and true/false",
                path=node.path,
                expected="an amount, a number or a condition",
            )
        if want == "bool" and kind is not Kind.BOOL:
            raise RuleTypeError(
                f"{op} needs a condition (true/false) here, but this is a {kind.value}",
                path=node.path,
                expected="a condition such as a comparison or AND/OR",
            )
        if want == "num" and kind is Kind.BOOL:
            raise RuleTypeError(
                f"{op} needs an amount or number here, but this is a condition (true/false)",
                path=node.path,
                expected="an amount, a number or a calculation",
            )
        return kind

    def _expr(self, node: Expr) -> tuple[Kind, int]:
        if isinstance(node, Lit):
            if isinstance(node.value, str):
                return Kind.TEXT, 1
            return (Kind.BOOL if isinstance(node.value, bool) else Kind.INT), abs(int(node.value))
        if isinstance(node, Ref):
            return self.ref(node)
        if isinstance(node, If):
            for c in node.cases:
                self._operand(c.when, "bool", "IF ... when")
            branches = [c.then for c in node.cases] + [node.default]
            kinds = [self.expr(b) for b in branches]
            if len({k is Kind.BOOL for k in kinds}) != 1:
                bad = next(
                    b
                    for b, k in zip(branches, kinds, strict=True)
                    if (k is Kind.BOOL) != (kinds[0] is Kind.BOOL)
                )
                raise RuleTypeError(
                    "the cases of IF give values of different types",
                    path=bad.path,
                    expected=f"every case and the default a {kinds[0].value}",
                )
            kind = Kind.FRAC if Kind.FRAC in kinds else kinds[0]
            return kind, max(self._bound(b) for b in branches)
        op = node.op
        if op in LOGICAL or op is Operation.NOT:
            for a in node.args:
                self._operand(a, "bool", op.value)
            return Kind.BOOL, 1
        if op in COMPARISONS:
            left, right = node.args
            if op in (Operation.EQUALS, Operation.NOT_EQUALS):
                lk, rk = self.expr(left), self.expr(right)
                if Kind.TEXT in (lk, rk):
                    raise RuleTypeError(
                        f"{op.value} compares text; text values load but are not computed with",
                        path=(left if lk is Kind.TEXT else right).path,
                        expected="amounts, numbers or true/false on both sides",
                    )
                if (lk is Kind.BOOL) != (rk is Kind.BOOL):
                    raise RuleTypeError(
                        f"{op.value} compares a {lk.value} with a {rk.value}",
                        path=right.path,
                        expected=f"a {lk.value}, like the subject",
                    )
            else:
                self._operand(left, "num", op.value)
                self._operand(right, "num", op.value)
            return Kind.BOOL, 1
        kinds = [self._operand(a, "num", op.value) for a in node.args]
        bounds = [self._bound(a) for a in node.args]
        if op in ROUNDING:
            # a whole number again; rounding to 10^-precision cents moves it by less than that
            return Kind.INT, min(bounds[0] + 10 ** -(node.precision or 0), SAFE_INT)
        if op is Operation.DIVIDE:
            # |a / b| <= |a| when every divisor is a whole number (0 is refused at run time)
            whole = all(k is Kind.INT for k in kinds[1:])
            self.frac_bounds[id(node)] = bounds[0] if whole else SAFE_INT
            return Kind.FRAC, 0
        kind = Kind.FRAC if Kind.FRAC in kinds else Kind.INT
        if op in (Operation.ADD, Operation.SUBTRACT):
            return kind, sum(bounds)
        if op is Operation.MULTIPLY:
            product = 1
            for b in bounds:
                product = min(product * max(b, 1), SAFE_INT)
            return kind, product
        return kind, max(bounds)

    def ref(self, node: Ref) -> tuple[Kind, int]:
        d = self.rule.definition(node.name)
        if d is not None:
            self.used_definitions.add(d.name)
            v = d.versions[0].value
            return (Kind.BOOL if isinstance(v, bool) else Kind.INT), max(
                abs(int(x.value)) for x in d.versions
            )
        inp = self.rule.input(node.name)
        if inp is not None:
            if inp.source is None:
                declared = inp.name.removesuffix("__input")  # as the document names it
                raise RuleReferenceError(
                    f"input {declared!r} comes from "
                    f"{inp.declared_source or 'an undeclared source'}, which is neither a UWV "
                    "polis attribute nor a value SVB sends",
                    path=node.path,
                    expected=f"a binding for {declared!r}: "
                    "{polis: ATTRIBUTE} or {query: FIELD}",
                )
            if inp.type in (ValueType.STRING, ValueType.DATE):
                raise RuleTypeError(
                    f"input {inp.name!r} is a {inp.type.value}; this rule language only computes "
                    "with amounts, numbers and true/false",
                    path=node.path,
                    expected="an amount, number or boolean input",
                )
            per_person = isinstance(inp.source, PolisSource) and not inp.source.sum_over
            if self.scope is Scope.PERSON_MONTH and not per_person:
                raise RuleReferenceError(
                    f"output computed per person and month uses {inp.name!r}, which is not "
                    "UWV's per-person, per-month data",
                    path=node.path,
                    expected="inputs with source {polis: ..., sum_over: []} and definitions only",
                )
            if self.scope is Scope.HOUSEHOLD and per_person:
                raise RuleReferenceError(
                    f"input {inp.name!r} is per person and month (sum_over: []); it may only be "
                    "used in an output with per: person_month, which is summed per household",
                    path=node.path,
                    expected="an output with per: person_month that uses it",
                )
            self.used_inputs.add(inp.name)
            return _declared_kind(inp.type), _input_bound(inp)
        if node.name in self.output_kinds:
            target = self.rule.output(node.name)
            assert target is not None
            if target.per is Scope.HOUSEHOLD and self.scope is Scope.PERSON_MONTH:
                raise RuleReferenceError(
                    f"output computed per person and month uses the household output {node.name!r}",
                    path=node.path,
                    expected="only definitions, per-person inputs and per-person outputs",
                )
            bound = self.output_bounds[node.name]
            if target.per is Scope.PERSON_MONTH and self.scope is Scope.HOUSEHOLD:
                # the household sees the sum over its members and the period's months
                bound = min(bound * MAX_HOUSEHOLD_MEMBERS * MAX_PERIOD_MONTHS, SAFE_INT)
            return self.output_kinds[node.name], bound
        raise RuleReferenceError(
            f"${node.name} is not defined",
            path=node.path,
            expected="the name of a definition, input or output of this rule",
        )
