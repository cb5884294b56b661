"""Operation trees (RegelRecht's ``operation`` / ``subject`` / ``value`` / ``values`` /
``conditions`` / ``cases`` form) → expression nodes, refusing unknown operations by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from shared.rules._syntax import as_list, fail, join, kind_of, mapping, name_of, no_extra
from shared.rules.model import (
    ARITHMETIC,
    COMPARISONS,
    LOGICAL,
    ROUNDING,
    Apply,
    Case,
    Expr,
    If,
    Lit,
    Operation,
    Ref,
)

MAX_EXPRESSION_DEPTH: Final = 32
"""Operation trees deeper than this are refused: no honest rule needs them, and the
evaluator and the verifier recurse over them."""

SUPPORTED = ", ".join(op.value for op in Operation)

_OPERAND_KEYS: Final = {
    "operation",
    "subject",
    "value",
    "values",
    "conditions",
    "cases",
    "default",
    "description",
    "legal_basis",
    "precision",
}


def parse_expr(
    value: object, path: str, depth: int = 0, rename: Mapping[str, str] | None = None
) -> Expr:
    """Parse a RegelRecht operation tree (or a scalar / ``$reference``) into an expression.

    ``rename`` maps names as written to the names they have in the rule (a RegelRecht
    article's input that is another article's output, or an input sharing its name with an
    output of the same article)."""
    names = rename or {}
    if depth > MAX_EXPRESSION_DEPTH:
        raise fail(
            path,
            "the operation tree is nested too deeply",
            f"at most {MAX_EXPRESSION_DEPTH} levels; split it into named outputs",
        )
    if isinstance(value, bool | int):
        return Lit(value=value, path=path)
    if isinstance(value, str):
        if value.startswith("$") and len(value) > 1:
            ref = name_of(value[1:], path, "reference")
            return Ref(name=names.get(ref, ref), path=path)
        return Lit(value=value, path=path)
    if isinstance(value, float):
        raise fail(
            path,
            f"{value!r} is not a whole number",
            "a whole number in cents, or a named definition",
        )
    if not isinstance(value, dict):
        raise fail(path, f"an operand is a {kind_of(value)}", "a value or an operation")
    if "operation" not in value:
        raise fail(path, "this mapping has no 'operation'", "operation: one of " + SUPPORTED)
    name = value["operation"]
    try:
        op = Operation(name)
    except ValueError:
        raise fail(
            join(path, "operation"), f"operation {name!r} is not supported", "one of " + SUPPORTED
        ) from None
    no_extra(value, _OPERAND_KEYS, path, f"operation {op.value}")

    def sub(key: str) -> Expr:
        if key not in value:
            raise fail(path, f"{op.value} has no {key!r}", _shape(op))
        return parse_expr(value[key], join(path, key), depth + 1, names)

    def many(key: str, at_least: int) -> tuple[Expr, ...]:
        if key not in value:
            raise fail(path, f"{op.value} has no {key!r}", _shape(op))
        items = as_list(value[key], join(path, key), key)
        if len(items) < at_least:
            raise fail(
                join(path, key), f"{op.value} has {len(items)} operands", f"at least {at_least}"
            )
        return tuple(
            parse_expr(v, join(join(path, key), i), depth + 1, names) for i, v in enumerate(items)
        )

    used: set[str]
    precision: int | None = None
    if op in LOGICAL:
        args, used = many("conditions", 1), {"conditions"}
    elif op is Operation.NOT:
        args, used = (sub("value"),), {"value"}
    elif op in COMPARISONS:
        args, used = (sub("subject"), sub("value")), {"subject", "value"}
    elif op in ROUNDING:
        args, used = (sub("value"),), {"value", "precision"}
        precision = value.get("precision")
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise fail(
                join(path, "precision"),
                f"{op.value} needs a whole-number precision, got {precision!r}",
                "precision: 0 (whole cents) or a negative number (-2: whole euros)",
            )
        if precision > 0:
            raise fail(
                join(path, "precision"),
                f"precision {precision} would give fractions of a cent",
                "precision 0 (whole cents) or negative; amounts are whole cents",
            )
    elif op in ARITHMETIC:
        least = 2 if op in (Operation.SUBTRACT, Operation.DIVIDE) else 1
        args, used = many("values", least), {"values"}
    else:
        cpath = join(path, "cases")
        cases = []
        for i, c in enumerate(as_list(value.get("cases"), cpath, "cases")):
            cp = join(cpath, i)
            cm = mapping(c, cp, "a case")
            no_extra(cm, {"when", "then"}, cp, "a case")
            if "when" not in cm or "then" not in cm:
                raise fail(cp, "a case needs 'when' and 'then'", "when: CONDITION, then: VALUE")
            cases.append(
                Case(
                    when=parse_expr(cm["when"], join(cp, "when"), depth + 1, names),
                    then=parse_expr(cm["then"], join(cp, "then"), depth + 1, names),
                )
            )
        if not cases:
            raise fail(cpath, "IF has no cases", "at least one case")
        return If(cases=tuple(cases), default=sub("default"), path=path)
    stray = sorted(
        set(value) & (_OPERAND_KEYS - used - {"operation", "description", "legal_basis"})
    )
    if stray:
        raise fail(join(path, stray[0]), f"{op.value} does not take {stray[0]!r}", _shape(op))
    return Apply(op=op, args=args, precision=precision, path=path)


def _shape(op: Operation) -> str:
    if op in LOGICAL:
        return f"{op.value} with conditions: [...]"
    if op is Operation.NOT:
        return "NOT with value: CONDITION"
    if op in COMPARISONS:
        return f"{op.value} with subject: A and value: B"
    if op is Operation.IF:
        return "IF with cases: [{when, then}] and default"
    if op in ROUNDING:
        return f"{op.value} with value: AMOUNT and precision: 0"
    return f"{op.value} with values: [...]"


# --- test cases ----------------------------------------------------------------------
