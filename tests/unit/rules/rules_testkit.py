"""Helpers for the rule-language tests: small rule documents built from Python data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from shared.rules.batch import Batch, PersonMonths
from shared.rules.check import CheckedRule, check
from shared.rules.model import Rule
from shared.rules.parse import parse_text

REPO = Path(__file__).resolve().parents[3]
AIO = REPO / "rules" / "aio.yaml"
RR_DOC = REPO / "rules" / "regelrecht" / "participatiewet_aio.yaml"
RR_BINDING = REPO / "rules" / "regelrecht" / "participatiewet_aio.binding.yaml"

BASIS = {"law": "Participatiewet", "article": "22"}

STANDARD_INPUTS: list[dict[str, Any]] = [
    {"name": "netto", "type": "amount", "source": {"polis": "net_income"}},
    {
        "name": "bruto_loon",
        "type": "amount",
        "source": {"polis": "gross_income", "kinds": ["wage"]},
    },
    {"name": "bekend", "type": "amount", "source": {"query": "known_income"}},
    {"name": "partner", "type": "boolean", "source": {"query": "has_partner"}},
    {"name": "maanden", "type": "number", "source": {"query": "period_months"}},
]

STANDARD_DEFINITIONS: dict[str, Any] = {
    "norm": {
        "legal_basis": BASIS,
        "versions": [
            {"valid_from": "2024-07-01", "value": 145685},
            {"valid_from": "2025-01-01", "value": 150107},
        ],
    },
    "grens": {"legal_basis": BASIS, "value": 5000},
    "vlag": {"legal_basis": BASIS, "value": True},
}


def document(
    actions: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    *,
    definitions: dict[str, Any] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    tests: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A native rule document as plain data."""
    doc: dict[str, Any] = {
        "$id": "test/rule",
        "name": "test rule",
        "machine_readable": {
            "definitions": STANDARD_DEFINITIONS if definitions is None else definitions,
            "input": STANDARD_INPUTS if inputs is None else inputs,
            "output": outputs,
            "actions": actions,
        },
    }
    if tests is not None:
        doc["tests"] = tests
    return doc


def decision_doc(value: Any, **kw: Any) -> dict[str, Any]:
    """A document with one returned boolean output ``besluit`` computed as ``value``."""
    return document(
        [{"output": "besluit", "value": value}],
        [{"name": "besluit", "type": "boolean", "returned": True}],
        **kw,
    )


def to_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def parse(doc: dict[str, Any]) -> Rule:
    return parse_text(to_yaml(doc), file="test.yaml")


def checked(doc: dict[str, Any]) -> CheckedRule:
    return check(parse(doc))


def one_person_month_each(batch: Batch) -> Batch:
    """``batch`` with one person-month per household holding its sums (for random tests of
    rules with per-person, per-month outputs)."""
    n = len(batch)
    return Batch.from_columns(
        period=batch.period,
        gross_cents=batch.gross_cents,
        tax_cents=batch.tax_cents,
        is_couple=batch.is_couple,
        known_income_cents=batch.known_income_cents,
        cost_sharers=batch.cost_sharers,
        person_months=PersonMonths(
            np.arange(n, dtype=np.int64), dict(batch.gross_cents), dict(batch.tax_cents)
        ),
    )
