"""The digest is the rule's identity: formatting, comments and key order do not change it;
any semantic change does."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_testkit import AIO, RR_BINDING, RR_DOC

from shared.rules.canonical import canonical_json, digest
from shared.rules.load import load_yaml
from shared.rules.parse import parse_document, parse_file, parse_text

AIO_TEXT = AIO.read_text()
AIO_DATA = load_yaml(AIO_TEXT)
AIO_DIGEST = digest(parse_text(AIO_TEXT))


def shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rnd) for v in value]
    return value


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), flow=st.booleans(), width=st.integers(20, 200))
def test_key_order_and_formatting_do_not_change_the_digest(
    seed: int, flow: bool, width: int
) -> None:
    data = shuffled(AIO_DATA, random.Random(seed))
    text = "# a comment\n" + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=flow, width=width, allow_unicode=True
    )
    assert digest(parse_text(text)) == AIO_DIGEST


def test_comments_and_descriptions_do_not_change_the_digest() -> None:
    text = AIO_TEXT.replace("# EUR 1,456.85", "# changed comment").replace(
        "Wat SVB het huishouden zelf per maand betaalt (AOW).", "Andere omschrijving."
    )
    assert text != AIO_TEXT
    assert digest(parse_text(text)) == AIO_DIGEST


def mutate(path: list[Any], value: Any) -> str:
    data = copy.deepcopy(AIO_DATA)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return digest(parse_document(data))


def test_semantic_changes_change_the_digest() -> None:
    mr: list[Any] = ["machine_readable"]
    changes: list[tuple[list[Any], Any]] = [
        ([*mr, "definitions", "norm_alleenstaand", "versions", 0, "value"], 145686),
        ([*mr, "definitions", "norm_alleenstaand", "versions", 1, "valid_from"], "2025-01-02"),
        ([*mr, "definitions", "norm_gehuwden", "legal_basis", "article"], "21"),
        ([*mr, "execution", "actions", 6, "value", "operation"], "LESS_THAN_OR_EQUAL"),
        ([*mr, "execution", "input", 0, "source", "kinds"], ["wage", "pension"]),
        ([*mr, "execution", "output", 6, "returned"], False),
        (["tests", 0, "expect", "heeft_recht_op_aio"], False),
    ]
    digests = {mutate(path, value) for path, value in changes}
    assert AIO_DIGEST not in digests
    assert len(digests) == len(changes)


def test_canonical_form_is_json_with_a_format_tag() -> None:
    data = json.loads(canonical_json(parse_text(AIO_TEXT)))
    assert data["format"] == "aio-screening/rules/v1"
    assert "path" not in json.dumps(data)


def test_binding_is_part_of_the_identity() -> None:
    bound = digest(parse_file(RR_DOC, binding=RR_BINDING))
    unbound = digest(parse_file(RR_DOC))
    assert bound != unbound
