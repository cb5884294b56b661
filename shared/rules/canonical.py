"""The canonical JSON form of a rule and its SHA-256 digest: the rule's identity.

What UWV and the auditor approve is this digest. It covers everything that can change what
the rule decides or why: definitions with their versions and legal basis, inputs with their
(bound) sources, outputs, actions, and the bundled test cases. It does not depend on YAML
formatting, comments, key order, free-text ``description`` fields, or the order in which
definitions, inputs, outputs and actions are listed (none of that changes a decision).

Form: UTF-8 JSON with sorted keys and no whitespace, ``{"format": FORMAT, "rule": {...}}``.
"""

from __future__ import annotations

import hashlib
import json
import operator
from typing import Any, Final

from shared.rules.model import Rule

FORMAT: Final = "aio-screening/rules/v1"
"""Bumped whenever the canonical form changes, so that old approvals cannot match new forms."""


def canonical_data(rule: Rule) -> dict[str, Any]:
    """The rule as plain JSON data in canonical order."""
    data = rule.model_dump(mode="json", exclude_none=True)
    for key, by in (
        ("definitions", "name"),
        ("inputs", "name"),
        ("outputs", "name"),
        ("actions", "output"),
    ):
        data[key] = sorted(data[key], key=operator.itemgetter(by))
    return {"format": FORMAT, "rule": data}


def canonical_json(rule: Rule) -> bytes:
    """The canonical serialisation whose SHA-256 is the rule's identity."""
    return json.dumps(
        canonical_data(rule), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def digest(rule: Rule) -> str:
    """The rule's identity: lower-case hex SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(rule)).hexdigest()
