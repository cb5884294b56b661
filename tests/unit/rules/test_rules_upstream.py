"""Real RegelRecht documents (copied in tests/data/regelrecht, see SOURCE.md there): the
upstream schema loads as it is, and every refusal has one precise reason."""

from __future__ import annotations

import pytest
from upstream_table import DATA, outcome, table

# file: (loads, runs here, screening rule, a phrase of the reason)
EXPECTED = {
    "wet__participatiewet__2022-03-15.yaml": (True, False, False, "open term"),
    "wet__wet_op_de_zorgtoeslag__2025-01-01.yaml": (
        False, False, False, "is not a whole number or boolean"),
    "wet__test_value_typing__2023-01-01.yaml": (True, False, False, "'waarde'"),
    "ministeriele_regeling__regeling_standaardpremie__2025-01-01.yaml": (
        True, True, False, "no output is marked as the decision"),
    "wet__test_untranslatables__2025-01-01.yaml": (
        True, True, False, "no output is marked as the decision"),
    "gemeentelijke_verordening__diemen__afstemmingsverordening_participatiewet__2015-01-01.yaml": (
        False, False, False, "IF has no 'default'"),
    "wet__vreemdelingenwet_2000__2000-11-23.yaml": (
        True, True, False, "no output is marked as the decision"),
    "wet__algemene_wet_bestuursrecht__1994-01-01.yaml": (
        False, False, False, "operation 'DATE_ADD' is not supported"),
    "poc__participatiewet__aio__SVB-2026-01-01.yaml": (
        False, False, False, "poc-machine-law document"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_upstream_document(name: str) -> None:
    loads, runs, screening, phrase = EXPECTED[name]
    o = outcome(name)
    assert (o.loads, o.runs, o.screening_rule) == (loads, runs, screening), o.reason
    assert phrase in o.reason


def test_every_copied_document_is_in_the_table() -> None:
    copied = {p.name for p in DATA.glob("*.yaml") if not p.name.endswith(".binding.yaml")}
    assert copied == set(EXPECTED)
    assert table().count("\n") == len(EXPECTED) + 1


def test_the_untranslatable_construct_is_a_refusal_of_its_own() -> None:
    from shared.rules import parse_file, verify_rule

    rule = parse_file(DATA / "wet__test_untranslatables__2025-01-01.yaml",
                      binding=DATA / "test_untranslatables.binding.yaml")  # fmt: skip
    findings = verify_rule(rule).findings
    assert any(f.code == "untranslatable" and "afronden" in f.message for f in findings)


def test_multi_article_constructs_are_part_of_the_identity() -> None:
    from shared.rules import parse_file

    rule = parse_file(DATA / "wet__participatiewet__2022-03-15.yaml")
    assert any(c.endswith("open_terms") for c in rule.constructs)
    assert {"heeft_recht_op_bijstand", "uitkering_bedrag"} <= {o.name for o in rule.outputs}
