"""BSN parsing: the elfproef and the error messages at the boundary."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.bsn import Bsn, check_bsn, complete_bsn
from shared.errors import BsnError

# Valid: 9·d1 + … + 2·d8 − d9 ≡ 0 (mod 11). Worked by hand, e.g. 111222333:
# 9+8+7+12+10+8+9+6−3 = 66 = 6·11.
VALID = ["111222333", "123456782", "010000008", "999999990", "100000009"]
INVALID_ELFPROEF = ["123456789", "111222334", "999999999", "100000000"]


@pytest.mark.parametrize("text", VALID)
def test_valid_bsns_are_accepted(text: str) -> None:
    assert Bsn(text) == text
    assert Bsn.from_int(int(text)) == text


@pytest.mark.parametrize("text", INVALID_ELFPROEF)
def test_elfproef_failures_are_refused(text: str) -> None:
    with pytest.raises(BsnError, match="elfproef"):
        check_bsn(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12345678", "8 characters"),
        ("1234567890", "10 characters"),
        ("", "0 characters"),
        ("12345a782", "'a' at position 6"),
        (" 23456782", "' ' at position 1"),
        ("000000000", "not a valid number"),
    ],
)
def test_malformed_bsns_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(BsnError, match=message):
        check_bsn(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(BsnError, match="text"):
        check_bsn(123456782)  # type: ignore[arg-type]


@given(st.integers(min_value=1_000_000, max_value=99_999_999))
def test_complete_bsn_always_gives_a_valid_bsn(prefix: int) -> None:
    value = complete_bsn(prefix)
    if value is not None:
        assert check_bsn(f"{value:09d}")


@given(st.text(max_size=12))
def test_check_bsn_never_raises_anything_but_bsn_error(text: str) -> None:
    with contextlib.suppress(BsnError):
        check_bsn(text)


def test_vectorised_server_check_agrees_with_bsn() -> None:
    import numpy as np

    from uwv_server.service import invalid_bsn_positions

    values = np.array([int(v) for v in VALID + INVALID_ELFPROEF] + [0, -5, 10**9], dtype=np.int64)
    bad = set(invalid_bsn_positions(values).tolist())
    assert bad == set(range(len(VALID), len(values)))


@given(st.lists(st.integers(min_value=-10, max_value=1_200_000_000), max_size=50))
def test_vectorised_check_agrees_with_check_bsn(values: list[int]) -> None:
    import numpy as np

    from shared.bsn import valid_bsn_mask

    def scalar(v: int) -> bool:
        try:
            check_bsn(f"{v:09d}")
        except BsnError:
            return False
        return 1 <= v <= 999_999_999

    mask = valid_bsn_mask(np.array(values, dtype=np.int64))
    assert mask.tolist() == [scalar(v) for v in values]
