"""OIN validation: exactly 20 ASCII digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.pki import OinError, check_oin


def test_twenty_digits_pass() -> None:
    assert check_oin("00000001234567890000") == "00000001234567890000"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0000000123456789000",  # 19
        "000000012345678900000",  # 21
        "0000000123456789000a",
        " 0000000123456789000",
        "٠" * 20,  # Arabic-Indic digits are digits to str.isdigit, not to an OIN
        "0000000123456789000\n",
    ],
)
def test_malformed_oins_are_refused_with_the_expected_form(value: str) -> None:
    with pytest.raises(OinError, match="exactly 20 digits"):
        check_oin(value)


def test_error_names_where() -> None:
    with pytest.raises(OinError, match="subject serialNumber"):
        check_oin("123", where="subject serialNumber")


@given(st.text(max_size=30))
def test_accepts_exactly_the_twenty_ascii_digit_strings(value: str) -> None:
    ok = len(value) == 20 and all("0" <= c <= "9" for c in value)
    if ok:
        assert check_oin(value) == value
    else:
        with pytest.raises(OinError):
            check_oin(value)
