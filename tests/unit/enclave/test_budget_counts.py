"""The budget's compact per-BSN counts: exact like a Counter, at 12 bytes per BSN."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import uwv_server.budget as budget_module
from shared.models import Period
from tests.unit.enclave.test_budget import _charge
from uwv_server.budget import SqliteBudget
from uwv_server.budget_counts import (
    BsnCounts,
    SeenBsns,
    YearCounts,
    merge_counts,
    sorted_unique,
    tally,
)


def _arr(values: list[int]) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def test_absent_bsns_count_zero_and_an_empty_table_answers() -> None:
    counts = BsnCounts()
    assert counts.get(_arr([1, 2])).tolist() == [0, 0]
    assert counts.get(_arr([])).tolist() == []
    counts.add(_arr([5, 7]))
    assert counts.get(_arr([4, 5, 6, 7, 8, -1, 2**62])).tolist() == [0, 1, 0, 1, 0, 0, 0]


def test_duplicates_within_one_add_all_count() -> None:
    counts = BsnCounts()
    counts.add(_arr([9, 3, 9, 9, 3]))
    assert counts.get(_arr([9, 3, 1])).tolist() == [3, 2, 0]


def test_a_subtraction_undoes_an_addition_and_frees_its_memory() -> None:
    counts = BsnCounts()
    counts.add(_arr([1, 2, 3]))
    counts.add(_arr([2, 3]))
    counts.add(_arr([2, 3]), sign=-1)
    assert counts.get(_arr([1, 2, 3])).tolist() == [1, 1, 1]
    counts.add(_arr([1, 2, 3]), sign=-1)
    assert counts.get(_arr([1, 2, 3])).tolist() == [0, 0, 0]
    assert counts.nbytes == 0  # counts that sum to zero are dropped, not kept as zeros


def test_a_subtraction_before_its_addition_is_signed_like_a_counter() -> None:
    counts = BsnCounts()
    counts.add(_arr([4]), sign=-1)
    assert counts.get(_arr([4])).tolist() == [-1]
    counts.add(_arr([4, 4]))
    assert counts.get(_arr([4])).tolist() == [1]


def test_many_merges_stay_exact_and_logarithmic_in_levels() -> None:
    rng = np.random.default_rng(3)
    counts, model = BsnCounts(), Counter[int]()
    for _ in range(500):
        chunk = rng.integers(0, 5_000, int(rng.integers(1, 300)))
        sign = -1 if rng.random() < 0.2 else 1
        counts.add(chunk, sign)
        if sign > 0:
            model.update(chunk.tolist())
        else:
            model.subtract(chunk.tolist())
        assert len(counts._levels) <= 2 * 13  # ~log2(distinct BSNs), never one per add
    domain = np.arange(-1, 5_001, dtype=np.int64)
    assert counts.get(domain).tolist() == [model[b] for b in domain.tolist()]
    assert counts.get(domain[::-1]).tolist() == [model[b] for b in domain[::-1].tolist()]
    distinct = sum(1 for v in model.values() if v)
    assert counts.nbytes <= 12 * distinct * 2  # 12 bytes per BSN; at most one copy per level


def test_merging_two_levels_sums_shared_bsns_and_keeps_order() -> None:
    a = tally(_arr([1, 3, 5, 7]))
    b = tally(_arr([0, 3, 7, 8, 8]), sign=-1)
    keys, counts = merge_counts(a, b)
    assert keys.tolist() == [0, 1, 5, 8]  # 3 and 7 cancelled out
    assert counts.tolist() == [-1, 1, 1, -2]
    assert merge_counts(b, a)[0].tolist() == keys.tolist()  # either order


def test_sorted_unique_is_np_unique() -> None:
    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 1000):
        values = rng.integers(-50, 50, n)
        assert sorted_unique(values).tolist() == np.unique(values).tolist()
    seen, model = SeenBsns(), set[int]()
    for _ in range(50):
        chunk = rng.integers(0, 400, 20)
        seen.add(chunk)
        model.update(chunk.tolist())
        assert all(len(level) == len(np.unique(level)) for level in seen._levels)
    domain = np.arange(-1, 401, dtype=np.int64)
    assert seen.contains(domain).tolist() == [b in model for b in domain.tolist()]


def test_the_total_and_each_mode_count_apart() -> None:
    counts = YearCounts()
    counts.add("masked", [2024, 2025], _arr([1, 2]))
    counts.add("strict", [2025], _arr([1]))
    counts.add("masked", [2024, 2025], _arr([2]), sign=-1)
    assert counts.used(2025, _arr([1, 2, 3])).tolist() == [2, 0, 0]
    assert counts.used(2024, _arr([1, 2])).tolist() == [1, 0]
    assert counts.used(2025, _arr([1, 2]), "masked").tolist() == [1, 0]
    assert counts.used(2025, _arr([1, 2]), "strict").tolist() == [1, 0]
    assert counts.used(2025, _arr([1]), "enclave").tolist() == [0]
    assert counts.used(2023, _arr([1])).tolist() == [0]


operations = st.lists(
    st.tuples(
        st.lists(st.integers(-3, 40) | st.sampled_from([-(2**63), 2**63 - 1]), max_size=30),
        st.sampled_from([1, -1]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_counts_match_a_counter(ops: list[tuple[list[int], int]]) -> None:
    counts, model = BsnCounts(), Counter[int]()
    for bsns, sign in ops:
        counts.add(_arr(bsns), sign)
        if sign > 0:
            model.update(bsns)
        else:
            model.subtract(bsns)
        probe = sorted({*bsns, *model, 41})
        assert counts.get(_arr(probe)).tolist() == [model[b] for b in probe]


def test_the_replay_in_slices_rebuilds_the_same_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart rebuilds exactly the counts the charges and refunds left (across slices)."""
    path = tmp_path / "b.sqlite"
    budget = SqliteBudget(path, limit=12, mode_limits={"strict": 3})
    rng = np.random.default_rng(5)
    span = Period.parse("2024-11..2025-02")
    for chunk in range(40):
        bsns = rng.choice(np.arange(100_000_000, 100_000_400), 30, replace=False).tolist()
        mode = ("masked", "strict", "enclave")[chunk % 3]
        period = span if chunk % 4 == 0 else Period.parse("2025-01..2025-12")
        _charge(budget, f"b{chunk % 7}", chunk, [1] * 30, bsns, period=period, mode=mode)
        if chunk % 5 == 0:
            budget.refund(f"b{chunk % 7}", chunk)
    domain = range(100_000_000, 100_000_400)
    keys = [(y, m) for y in (2024, 2025) for m in (None, "masked", "strict", "enclave")]
    before = {k: [budget.used(b, k[0], k[1]) for b in domain] for k in keys}
    assert max(before[(2025, "strict")]) == 3 and max(before[(2025, None)]) > 3
    budget.close()
    monkeypatch.setattr(budget_module, "_REPLAY_SLICE", 64)
    again = SqliteBudget(path, limit=12, mode_limits={"strict": 3})
    assert {k: [again.used(b, k[0], k[1]) for b in domain] for k in keys} == before


def test_refusal_reasons_name_each_households_members_and_years(tmp_path: Path) -> None:
    """The one-pass grouping by slot: every refused household gets its own members' positions
    and the first year each was spent in; other households are charged."""
    budget = SqliteBudget(tmp_path / "b.sqlite", limit=1)
    a, b, c, d = 123456782, 111222333, 100000009, 100000022
    assert _charge(budget, "y24", 0, [1], [a], period=Period.parse("2024-01..2024-12")) == {}
    assert _charge(budget, "y25", 0, [1], [b]) == {}
    span = Period.parse("2024-12..2025-01")
    refused = _charge(budget, "both", 0, [2, 1, 2, 1], [c, a, d, c, b, d], period=span)
    assert set(refused) == {0, 2, 3}  # slot 1 (d alone) is new; c again in slot 2: duplicate
    assert "position 1 " in refused[0] and "in 2024;" in refused[0]
    assert "position 0 " in refused[2] and "earlier household" in refused[2]
    assert "position 0 " in refused[3] and "earlier household" in refused[3]
    couple = _charge(budget, "both2", 0, [2], [a, b], period=span)
    assert "position 0, 1 " in couple[0] and "in 2024, 2025;" in couple[0]
    assert budget.used(d, 2024) == 1 and budget.used(d, 2025) == 1 and budget.used(c, 2024) == 0
