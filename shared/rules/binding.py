"""Binding files: map the inputs of a RegelRecht document to our sources.

A RegelRecht rule declares where an input comes from in its own terms
(``source: {regulation: wet_inkomstenbelasting, output: inkomen}``). The binding says what
that is in this exchange: a UWV polis attribute or a value SVB sends with the query. It can
also name the decision returned to SVB and add test cases, so that the RegelRecht text
itself loads unchanged::

    binding_for: participatiewet/aio
    inputs:
      inkomen: {polis: net_income, kinds: [wage, pension], sum_over: [members, months]}
      aow_uitkering: {query: known_income}
    decision: heeft_recht
    tests: [...]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.rules._syntax import name_of, no_extra
from shared.rules.errors import RuleError, RuleFormatError
from shared.rules.load import load_yaml, read_text
from shared.rules.model import Source, TestCase
from shared.rules.sources import parse_source
from shared.rules.testcases import parse_test


@dataclass(frozen=True)
class Binding:
    """A parsed binding: input name → source, the returned decision, extra test cases."""

    binding_for: str
    inputs: dict[str, Source] = field(default_factory=dict)
    decision: str | None = None
    tests: list[TestCase] = field(default_factory=list)


def load_binding(path: str | Path) -> Binding:
    """Read and parse a binding file."""
    file = str(path)
    try:
        return parse_binding(load_yaml(read_text(path), file=file))
    except RuleError as exc:
        raise exc.in_file(exc.file or file) from None


def parse_binding(doc: dict[str, object]) -> Binding:
    """Parse a binding document (plain data)."""
    no_extra(doc, {"binding_for", "inputs", "decision", "tests"}, "", "a binding")
    target = doc.get("binding_for")
    if not isinstance(target, str) or not target:
        raise RuleFormatError(
            "the binding does not say which rule it is for",
            path="binding_for",
            expected="binding_for: the rule's $id",
        )
    raw_inputs = doc.get("inputs", {})
    if not isinstance(raw_inputs, dict):
        raise RuleFormatError(
            "inputs is not a mapping",
            path="inputs",
            expected="input name: {polis: ...} or {query: ...}",
        )
    inputs: dict[str, Source] = {}
    for name, raw in raw_inputs.items():
        path = f"inputs.{name}"
        if not isinstance(raw, dict):
            raise RuleFormatError(
                f"the binding of {name!r} is not a mapping",
                path=path,
                expected="{polis: ATTRIBUTE, kinds: [...]} or {query: FIELD}",
            )
        inputs[name_of(name, path, "input name")] = parse_source(raw, path)
    decision = doc.get("decision")
    raw_tests = doc.get("tests", [])
    if not isinstance(raw_tests, list):
        raise RuleFormatError("tests is not a list", path="tests", expected="a list of test cases")
    return Binding(
        binding_for=target,
        inputs=inputs,
        decision=name_of(decision, "decision", "decision") if decision is not None else None,
        tests=[parse_test(t, f"binding.tests[{i}]") for i, t in enumerate(raw_tests)],
    )
