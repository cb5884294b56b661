"""Hostile input: random damage to a valid document is always refused with a RuleError
(never another exception), and the verifier never raises for a problem in the rule."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_testkit import AIO

from shared.rules.errors import RuleError
from shared.rules.load import load_yaml
from shared.rules.parse import parse_document
from shared.rules.verify import verify_rule

BASE = load_yaml(AIO.read_text())

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["$norm", "$onbekend", "LESS_THAN", "FOREACH", "$"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.just({"operation": "ADD", "values": [True, "$norm"]}),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = [p for p in paths(BASE) if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    damage=st.lists(
        st.tuples(st.sampled_from(ALL_PATHS), junk, st.booleans()), min_size=1, max_size=3
    )
)
def test_damaged_documents_are_refused_cleanly(
    damage: list[tuple[tuple[Any, ...], Any, bool]],
) -> None:
    doc = copy.deepcopy(BASE)
    for path, value, delete in damage:
        target: Any = doc
        try:
            for key in path[:-1]:
                target = target[key]
            if delete and isinstance(target, dict):
                target.pop(path[-1], None)
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        rule = parse_document(doc, file="damaged.yaml")
    except RuleError as exc:
        assert exc.diagnostics()
        return
    report = verify_rule(rule, file="damaged.yaml")
    assert report.to_text()
    assert report.accepted or report.findings


yaml_bits = st.sampled_from(
    [
        "machine_readable:",
        "  definitions:",
        "  actions:",
        "  - output: x",
        "    value: &a [*a]",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "? [a, b]\n: c",
        "2024-01-01: x",
        "- - -",
        "{",
        "]",
        "  input: [{name: x, type: amount, source: {polis: net_income}}]",
        "tests: 5",
        "\t",
        "…",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(yaml_bits, st.text(max_size=20)), max_size=8))
def test_random_text_is_refused_cleanly(parts: list[str]) -> None:
    from shared.rules.parse import parse_text

    try:
        parse_text("\n".join(parts), file="random.yaml")
    except RuleError as exc:
        assert "random.yaml" in str(exc)


def test_an_output_whose_per_is_not_a_name_is_refused_cleanly() -> None:
    """Found by the fuzz test above: a list or mapping as ``per`` (unhashable) raised
    TypeError instead of a RuleError naming the field."""
    outputs = [p for p in ALL_PATHS if p[-1] == "per"]
    assert outputs, "the AIO rule has a per: person_month output"
    for bad in ([1], {"a": 1}, 3):
        doc = copy.deepcopy(BASE)
        target: Any = doc
        for key in outputs[0][:-1]:
            target = target[key]
        target["per"] = bad
        try:
            parse_document(doc, file="damaged.yaml")
        except RuleError as exc:
            assert "per" in exc.diagnostics()
        else:
            raise AssertionError(f"per {bad!r} was accepted")
