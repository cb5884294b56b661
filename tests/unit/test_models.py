"""Periods, months and households refuse what they cannot represent."""

from __future__ import annotations

import pytest

from shared.bsn import Bsn
from shared.errors import InputError, PeriodError
from shared.models import Household, Month, NormCategory, Period
from shared.norms import load_norm_table
from tests.conftest import bsn_from


def test_period_parses_and_counts_months() -> None:
    period = Period.parse("2024-11..2025-02")
    assert period.months == 4
    assert str(period) == "2024-11..2025-02"
    assert Period.parse("2025-03").months == 1
    assert Period.parse("2025-01..2025-12").end.last_day().isoformat() == "2025-12-31"
    assert Month.parse("2024-02").last_day().day == 29


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-13..2025-12", "month 13"),
        ("2025-1..2025-12", "YYYY-MM"),
        ("2025-06..2025-01", "ends"),
        ("2025-01...2025-02", "YYYY-MM"),
        ("2020-01..2025-01", "at most 24"),
        ("", "YYYY-MM"),
        ("2025-01..2025-02..2025-03", "YYYY-MM..YYYY-MM"),
    ],
)
def test_malformed_periods_are_refused(text: str, message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        Period.parse(text)


def test_household_invariants() -> None:
    a, b = Bsn(bsn_from(1)), Bsn(bsn_from(2))
    Household("h", (a, b), NormCategory.COUPLE, 0)
    with pytest.raises(InputError, match="no members"):
        Household("h", (), NormCategory.SINGLE, 0)
    with pytest.raises(InputError, match="same BSN is listed twice"):
        Household("h", (a, a), NormCategory.COUPLE, 0)
    with pytest.raises(InputError, match=r"couple.*at least two members"):
        Household("h", (a,), NormCategory.COUPLE, 0)
    with pytest.raises(InputError, match="outside"):
        Household("h", (a,), NormCategory.SINGLE, -1)
    many = tuple(Bsn(bsn_from(i)) for i in range(7))
    with pytest.raises(InputError, match="at most 6"):
        Household("h", many, NormCategory.COUPLE, 0)


def test_norm_in_force_at_end_of_period() -> None:
    table = load_norm_table()
    single = NormCategory.SINGLE
    assert (
        table.in_force(single, Period.parse("2025-01..2025-12").end.last_day()).amount_cents
        == 153021
    )
    assert table.in_force(single, Month.parse("2024-12").last_day()).amount_cents == 145685
    assert (
        table.in_force(NormCategory.COUPLE, Month.parse("2025-01").first_day()).amount_cents
        == 205348
    )
    from shared.errors import NormError

    with pytest.raises(NormError, match="no AIO norm"):
        table.in_force(single, Month.parse("2023-12").last_day())
    assert table.in_force(single, Month.parse("2026-12").last_day()).amount_cents == 158734
    with pytest.raises(
        NormError, match=r"newest is 158734 cents from 2026-07-01.*until 2026-12-31"
    ):
        table.in_force(single, Month.parse("2027-06").last_day())
