"""The dishonest-SVB report: closed channels read nothing, refused encodings are refused, and
the same attacks read everything from the unprotected evaluation."""

from __future__ import annotations

import pytest

from shared.he import leakage_dishonest


@pytest.fixture(scope="module")
def rows() -> dict[str, leakage_dishonest.AttackRow]:
    return {row.name: row for row in leakage_dishonest.run(count=128)}


def _share(text: str) -> float:
    return float(text.split("%")[0]) / 100


def test_answered_attacks_read_no_more_than_an_honest_answer(
    rows: dict[str, leakage_dishonest.AttackRow],
) -> None:
    honest = _share(rows["honest"].protected)
    assert honest < 0.15  # the blind guess r = 1 is right for ~1/27 of the households
    for name in (
        "constant c1",
        "inflated noise 2**63",
        "inflated noise 2**100",
        "inflated noise 2**120",
    ):
        assert _share(rows[name].protected) <= honest + 0.05, rows[name]
    for name in ("constant c1", "inflated noise 2**100", "inflated noise 2**120"):
        assert _share(rows[name].unprotected) == 1.0, rows[name]


def test_structural_attacks_are_refused(rows: dict[str, leakage_dishonest.AttackRow]) -> None:
    for name in (
        "complex threshold",
        "pk with a = 0",
        "pk with a constant",
        "pk = (0, 0)",
        "chosen scale",
        "lower level",
        "3 polynomials",
        "coefficient >= q",
    ):
        assert rows[name].protected.startswith("refused"), rows[name]
    assert "dishonest SVB" in leakage_dishonest.report_text(16)


def test_strict_key_rows_show_the_key_check() -> None:
    rows = {row.name.strip(): row for row in leakage_dishonest.strict_key_rows(count=16)}
    assert rows["malformed relin key"].protected == "caught for 2 of 3 challenges"
    assert rows["... if not opened"].protected.startswith("0.0% slots 0/1")
    for change in ("zero", "constant", "not-common"):
        assert rows[f"relin key {change}"].protected.startswith("refused")
