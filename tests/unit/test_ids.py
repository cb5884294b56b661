"""Generated run and batch ids can never carry something that looks like a BSN."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from shared.ids import new_id


def test_ids_are_unique_letters() -> None:
    ids = {new_id("batch") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"batch-[a-p]{32}", i) for i in ids)


@given(st.binary(min_size=16, max_size=16))
def test_no_digit_ever(raw: bytes) -> None:
    assert not any(c.isdigit() for c in new_id("run", lambda n: raw[:n]).removeprefix("run-"))
