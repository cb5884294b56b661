"""The household chunk: valid by construction, and every refusal names its slot and member."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.chunk import HouseholdChunk, HouseholdError, household_problems
from shared.models import MAX_HOUSEHOLD_MEMBERS
from tests.conftest import bsn_from

POOL = [int(bsn_from(i)) for i in range(400)]


@st.composite
def chunks(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    counts = draw(st.lists(st.integers(1, MAX_HOUSEHOLD_MEMBERS), min_size=1, max_size=40))
    bsns = draw(st.permutations(POOL))[: sum(counts)]
    return counts, bsns


@given(chunks())
@settings(max_examples=60, deadline=None)
def test_valid_chunks_construct_and_slice(chunk: tuple[list[int], list[int]]) -> None:
    counts, bsns = chunk
    c = HouseholdChunk(np.array(counts), np.array(bsns))
    assert len(c) == len(counts) and c.offsets[-1] == len(bsns)
    assert not c.member_counts.flags.writeable and not c.member_bsns.flags.writeable
    half = len(counts) // 2
    assert np.array_equal(c.slice(half, len(c)).member_counts, counts[half:])


@given(chunks(), st.data())
@settings(max_examples=60, deadline=None)
def test_one_bad_bsn_is_named_by_slot_and_member(
    chunk: tuple[list[int], list[int]], data: st.DataObject
) -> None:
    counts, bsns = chunk
    position = data.draw(st.integers(0, len(bsns) - 1))
    bsns = list(bsns)
    last = bsns[position] % 10
    bsns[position] += (last + 1) % 10 - last  # another last digit breaks the elfproef
    slot = int(np.searchsorted(np.cumsum(counts), position, side="right"))
    member = position - sum(counts[:slot])
    with pytest.raises(HouseholdError) as err:
        HouseholdChunk(np.array(counts), np.array(bsns))
    assert (err.value.check, err.value.slot, err.value.member) == ("bsn", slot, member)
    assert f"household slot {slot}, member {member}: " in str(err.value)


@given(chunks(), st.data())
@settings(max_examples=60, deadline=None)
def test_a_repeated_bsn_is_refused_where_it_repeats(
    chunk: tuple[list[int], list[int]], data: st.DataObject
) -> None:
    counts, bsns = chunk
    if len(bsns) < 2:
        return
    first = data.draw(st.integers(0, len(bsns) - 2))
    again = data.draw(st.integers(first + 1, len(bsns) - 1))
    bsns = list(bsns)
    bsns[again] = bsns[first]
    with pytest.raises(HouseholdError) as err:
        HouseholdChunk(np.array(counts), np.array(bsns))
    slot = int(np.searchsorted(np.cumsum(counts), again, side="right"))
    assert (err.value.check, err.value.slot) == ("duplicate", slot)


@pytest.mark.parametrize(
    ("counts", "bsns", "couple", "known", "check", "slot", "text"),
    [
        ([], [], None, None, "chunk", -1, "no households"),
        ([1, 2], [0, 1], None, None, "chunk", -1, "add up to 3 but 2 BSNs"),
        ([1, 7], [0, 1, 2, 3, 4, 5, 6, 7], None, None, "members", 1, "7 members, at most 6"),
        ([1, 0], [0], None, None, "members", 1, "no members"),
        ([1, 1], [0, 1], [False, True], None, "couple", 1, "needs at least two"),
        ([1, 1], [0, 1], None, [0, -5], "known_income", 1, "-5 cents is outside"),
        ([1, 1], [0, 1], [False], None, "chunk", -1, "2 households but 1 values of is_couple"),
    ],
)
def test_each_invariant_names_its_check(
    counts: list[int],
    bsns: list[int],
    couple: list[bool] | None,
    known: list[int] | None,
    check: str,
    slot: int,
    text: str,
) -> None:
    with pytest.raises(HouseholdError, match=text) as err:
        HouseholdChunk(
            np.array(counts, dtype=np.int64),
            np.array([POOL[i] for i in bsns], dtype=np.int64),
            None if couple is None else np.array(couple),
            None if known is None else np.array(known),
        )
    assert (err.value.check, err.value.slot) == (check, slot)


def test_cost_sharers_are_checked_per_household() -> None:
    counts = np.array([1, 1, 1], dtype=np.int64)
    bsns = np.array(POOL[:3], dtype=np.int64)
    chunk = HouseholdChunk(counts, bsns, cost_sharers=np.array([0, 3, 20]))
    assert chunk.slice(1, 3).cost_sharers.tolist() == [3, 20]  # type: ignore[union-attr]
    assert chunk.members().cost_sharers is None
    for bad, text in (([0, 21, 0], "cost_sharers 21 is outside 0..20"), ([0, -1, 0], "-1")):
        with pytest.raises(HouseholdError, match=text) as err:
            HouseholdChunk(counts, bsns, cost_sharers=np.array(bad))
        assert (err.value.check, err.value.slot) == ("cost_sharers", 1)
    with pytest.raises(HouseholdError, match="3 households but 2 values of cost_sharers"):
        HouseholdChunk(counts, bsns, cost_sharers=np.array([0, 1]))


def test_problems_are_reported_per_household() -> None:
    counts = [1, 2, 1, 7]
    bsns = [POOL[0], POOL[1], POOL[1], 123456789, *POOL[10:17]]
    problems = household_problems(counts, bsns)
    assert sorted(problems) == [1, 2, 3]
    assert problems[1].check == "duplicate" and problems[1].member == 1
    assert problems[2].check == "bsn" and "123456789" in problems[2].reason
    assert problems[3].check == "members"
