"""Dated values have an end: a period without a published norm in force is refused, with the
period, the newest norm and its date in the message; the shipped rule is package data."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

import pytest
from rules_testkit import AIO

from shared.models import Period
from shared.norms import load_norm_table
from shared.rules import Batch, NoNormInForce, check, evaluate, parse_file
from shared.rules.batch import HouseholdFacts
from shared.rules.interpret import interpret
from shared.rules.model import Definition, DefinitionVersion, half_year_end
from shared.rules.shipped import shipped_regelrecht, shipped_rule_path
from shared.rules.validity import check_period

RULE = check(parse_file(shipped_rule_path()))
HOUSEHOLD = HouseholdFacts(gross_cents={}, tax_cents={}, is_couple=False, known_income_cents=0)


def test_half_year_end() -> None:
    assert half_year_end(date(2026, 7, 1)) == date(2026, 12, 31)
    assert half_year_end(date(2026, 1, 1)) == date(2026, 6, 30)
    assert half_year_end(date(2026, 6, 30)) == date(2026, 6, 30)


def test_version_in_force_from_its_start_until_the_next_and_newest_until_its_half_year() -> None:
    d = Definition(
        name="n",
        versions=(
            DefinitionVersion(valid_from=date(2026, 1, 1), value=1),
            DefinitionVersion(valid_from=date(2026, 7, 1), value=2),
        ),
    )
    assert d.value_on(date(2025, 12, 31)) is None
    assert d.value_on(date(2026, 6, 30)) == 1
    assert d.value_on(date(2026, 7, 1)) == 2
    assert d.value_on(date(2026, 12, 31)) == 2
    assert d.value_on(date(2027, 1, 1)) is None
    undated = Definition(name="u", versions=(DefinitionVersion(valid_from=None, value=7),))
    assert undated.value_on(date(2099, 1, 1)) == 7


@pytest.mark.parametrize("period", ["2027-01..2027-06", "2026-07..2027-01", "2027-12"])
def test_a_period_after_the_newest_norm_is_refused_naming_it(period: str) -> None:
    p = Period.parse(period)
    with pytest.raises(NoNormInForce) as info:
        check_period(RULE, p)
    text = info.value.diagnostics()
    assert f"period {period}" in text
    assert "the newest is" in text and "from 2026-07-01" in text
    assert "until 2026-12-31" in text and "stale" in text
    assert "norm_alleenstaand" in text and "art. 22" in text
    batch = Batch.from_households(p, [HOUSEHOLD])
    with pytest.raises(NoNormInForce, match="from 2026-07-01"):
        evaluate(RULE, batch)
    with pytest.raises(NoNormInForce, match="from 2026-07-01"):
        interpret(RULE, p, HOUSEHOLD)


def test_a_period_before_the_rule_is_refused() -> None:
    with pytest.raises(NoNormInForce, match="before rule"):
        check_period(RULE, Period.parse("2023-10..2023-12"))


@pytest.mark.parametrize(
    "period", ["2024-01..2024-06", "2024-07..2024-12", "2025-01..2025-06", "2025-07..2025-12"]
)
def test_every_half_year_2024_2026_is_in_force(period: str) -> None:
    check_period(RULE, Period.parse(period))
    check_period(RULE, Period.parse(period.replace("2025", "2026").replace("2024", "2026")))


def test_the_shipped_rule_is_package_data_and_the_checkout_link_points_at_it() -> None:
    path = shipped_rule_path()
    assert path.parts[-4:] == ("shared", "rules", "data", "aio.yaml")
    assert path.read_bytes() == AIO.read_bytes()
    doc, binding = shipped_regelrecht()
    assert doc.is_file() and binding.is_file()


def test_norm_table_and_rule_carry_the_same_norms() -> None:
    table = load_norm_table()
    raw = json.loads(resources.files("shared.data").joinpath("aio_norms.json").read_text())
    assert len(raw["norms"]) == 12
    for name, category in (("norm_alleenstaand", "single"), ("norm_gehuwden", "couple")):
        d = RULE.rule.definition(name)
        assert d is not None
        from_rule = {v.valid_from: v.value for v in d.versions}
        from_table = {n.valid_from: n.amount_cents for n in table.norms if n.category == category}
        assert from_rule == from_table
