"""Property: the vectorised evaluator gives, household by household, exactly what the
straightforward per-household interpreter gives, on random rules and random data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rules_testkit import checked, document

from shared.models import Period, SourceKind
from shared.rules.batch import Batch, HouseholdFacts
from shared.rules.errors import RuleEvaluationError, RuleTypeError
from shared.rules.evaluate import evaluate
from shared.rules.interpret import interpret

INT_LEAVES = ["$netto", "$bruto_loon", "$bekend", "$maanden", "$norm", "$grens"]
BOOL_LEAVES = ["$partner", "$vlag", True, False]
SMALL = st.integers(-3, 3)
COMPARE = [
    "EQUALS",
    "NOT_EQUALS",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
]


def numbers(depth: int, outputs: list[str]) -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.sampled_from(INT_LEAVES + [f"${o}" for o in outputs]), SMALL)
    if depth <= 0:
        return leaf
    sub = numbers(depth - 1, outputs)
    cond = conditions(depth - 1, outputs)
    return st.one_of(
        leaf,
        st.builds(
            lambda op, vs: {"operation": op, "values": vs},
            st.sampled_from(["ADD", "MIN", "MAX"]),
            st.lists(sub, min_size=1, max_size=3),
        ),
        st.builds(
            lambda op, vs: {"operation": op, "values": vs},
            st.sampled_from(["SUBTRACT", "DIVIDE"]),
            st.lists(sub, min_size=2, max_size=3),
        ),
        st.builds(
            lambda a, b: {"operation": "MULTIPLY", "values": [a, b]},
            sub,
            st.one_of(SMALL, st.just("$maanden")),
        ),
        st.builds(
            lambda cs, d: {
                "operation": "IF",
                "cases": [{"when": c, "then": t} for c, t in cs],
                "default": d,
            },
            st.lists(st.tuples(cond, sub), min_size=1, max_size=2),
            sub,
        ),
    )


def conditions(depth: int, outputs: list[str]) -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(BOOL_LEAVES)
    if depth <= 0:
        return leaf
    sub = conditions(depth - 1, outputs)
    num = numbers(depth - 1, outputs)
    return st.one_of(
        leaf,
        st.builds(
            lambda op, a, b: {"operation": op, "subject": a, "value": b},
            st.sampled_from(COMPARE),
            num,
            num,
        ),
        st.builds(
            lambda op, cs: {"operation": op, "conditions": cs},
            st.sampled_from(["AND", "OR"]),
            st.lists(sub, min_size=1, max_size=3),
        ),
        st.builds(lambda c: {"operation": "NOT", "value": c}, sub),
        st.builds(
            lambda c, a, b: {"operation": "IF", "cases": [{"when": c, "then": a}], "default": b},
            sub,
            sub,
            sub,
        ),
    )


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    actions: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 2))):
        name = f"tussen{i}"
        actions.append({"output": name, "value": draw(numbers(2, [o["name"] for o in outputs]))})
        outputs.append({"name": name, "type": "amount"})
    names = [o["name"] for o in outputs]
    actions.append({"output": "besluit", "value": draw(conditions(3, names))})
    outputs.append({"name": "besluit", "type": "boolean", "returned": True})
    return document(actions, outputs)


amounts = st.one_of(st.integers(-5, 5), st.integers(-(10**9), 10**9))


@st.composite
def households(draw: st.DrawFn) -> HouseholdFacts:
    return HouseholdFacts(
        gross_cents={k: draw(amounts) for k in SourceKind},
        tax_cents={k: draw(amounts) for k in SourceKind},
        is_couple=draw(st.booleans()),
        known_income_cents=draw(st.one_of(st.integers(0, 5), st.integers(0, 1_000_000))),
    )


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=rules(),
    rows=st.lists(households(), min_size=1, max_size=6),
    period=st.sampled_from(["2024-07..2024-09", "2025-01", "2024-12..2025-02"]),
)
def test_vectorised_equals_per_household(
    doc: dict[str, Any], rows: list[HouseholdFacts], period: str
) -> None:
    try:
        rule = checked(doc)
    except RuleTypeError:
        assume(False)  # a value range the checker refuses; not what this property is about
        raise
    p = Period.parse(period)
    expected: list[dict[str, Any]] = []
    failed = False
    for row in rows:
        try:
            expected.append(dict(interpret(rule, p, row)))
        except RuleEvaluationError:
            failed = True
    batch = Batch.from_households(p, rows)
    if failed:
        with pytest.raises(RuleEvaluationError):
            evaluate(rule, batch)
        return
    result = evaluate(rule, batch, trace=True)
    for i, want in enumerate(expected):
        for name, value in want.items():
            got = result.outputs[name][i].item()
            assert same(value, got), (name, i, value, got)
    assert result.decision is not None
    assert result.decision.dtype == np.bool_
