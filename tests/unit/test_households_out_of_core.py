"""The household file validated out of core: the same answer whatever the part sizes, households
split across parts, every household accounted for once, and nothing left on disk."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import svb_client.households.rows as rows_module
import svb_client.households.validate as validate_module
from shared.errors import InputError
from svb_client.households import HouseholdBatch, check_readable, validate_households
from tests.conftest import HOUSEHOLD_COLUMNS, bsn_from, write_csv


def _validate(path: Path, part: int) -> tuple[HouseholdBatch, list[tuple[str, str]]]:
    with validate_households(path) as checked:
        parts = list(checked.parts(part))
        assert all(len(p) == part for p in parts[:-1]), "only the last part may be smaller"
        return HouseholdBatch.concat(parts), list(checked.rejected())


def _shape(batch: HouseholdBatch) -> list[tuple[str, str, int, int, tuple[int, ...]]]:
    offsets = [0, *batch.member_counts.cumsum().tolist()]
    return [
        (
            hid,
            batch.categories[i],
            int(batch.known_income_cents[i]),
            int(batch.sharers[i]),
            tuple(batch.member_bsns[offsets[i] : offsets[i + 1]].tolist()),
        )
        for i, hid in enumerate(batch.household_ids)
    ]


def _scattered_file(path: Path, households: int, seed: int) -> Path:
    """Households of one to three members whose rows are shuffled through the file, with a few
    bad rows, a shared BSN and a couple of one."""
    rng = random.Random(seed)
    rows: list[list[object]] = []
    n = 0
    for h in range(households):
        size = rng.choice((1, 2, 2, 3))
        category = "single" if size == 1 else "couple"
        for _ in range(size):
            rows.append([f"h{h}", bsn_from(n), category, rng.randrange(0, 5000)])
            n += 1
    rows[3][1] = "123"  # a bad BSN
    rows[10][1] = rows[20][1]  # a BSN in two households
    rows.append(["lonely", bsn_from(n + 1), "couple", 0])  # a couple of one
    rows.append(["", bsn_from(n + 2), "single", 0])  # no id
    rng.shuffle(rows)
    return write_csv(path, HOUSEHOLD_COLUMNS, rows)


def test_households_split_across_parts_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _scattered_file(tmp_path / "hh.csv", 600, seed=1)
    whole, whole_rejected = _validate(path, 10_000)
    # Tiny CSV blocks and record batches: every household's rows span several parts.
    monkeypatch.setattr(rows_module, "CSV_BLOCK_BYTES", 256)
    monkeypatch.setattr(validate_module, "PART_HOUSEHOLDS", 7)
    for part in (1, 3, 64):
        batch, rejected = _validate(path, part)
        assert _shape(batch) == _shape(whole)
        assert rejected == whole_rejected
    assert len(whole) + len(whole_rejected) == 600 + 2
    reasons = dict(whole_rejected)
    assert "is not nine digits" in next(r for r in reasons.values() if "'123'" in r)
    assert sum("is also in household" in r for r in reasons.values()) == 2
    assert "needs at least two members" in reasons["lonely"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", " b", "c", "", "d"]),
            st.integers(0, 6),
            st.sampled_from(["single", "couple", " couple", "widow", ""]),
            st.sampled_from(["0", "100", "x", ""]),
        ),
        max_size=30,
    ),
    st.integers(1, 4),
)
def test_every_household_is_accepted_or_rejected_once(
    tmp_path: Path, rows: list[tuple[str, int, str, str]], part: int
) -> None:
    path = write_csv(
        tmp_path / "hh.csv",
        HOUSEHOLD_COLUMNS,
        [[hid, bsn_from(b), category, known] for hid, b, category, known in rows],
    )
    batch, rejected = _validate(path, part)
    accepted = batch.household_ids
    refused = [hid for hid, _ in rejected]
    assert len(set(accepted)) == len(accepted), "a household accepted twice"
    assert not set(accepted) & set(refused), "a household both accepted and rejected"
    named = {hid.strip() for hid, *_ in rows if hid.strip()}
    no_id = sum(1 for hid, *_ in rows if not hid.strip())
    assert set(accepted) | {r for r in refused if not r.startswith("<no id")} == named
    assert sum(r.startswith("<no id") for r in refused) == no_id
    assert int(batch.member_counts.sum()) == len(batch.member_bsns)
    assert refused == sorted(refused)


def test_ids_are_trimmed_and_rows_without_an_id_are_reported_one_by_one(tmp_path: Path) -> None:
    a, b, c, d = (bsn_from(i) for i in range(4))
    path = write_csv(
        tmp_path / "hh.csv",
        HOUSEHOLD_COLUMNS,
        [["h1", a, "couple", 1], [" h1 ", b, " couple", 2], ["", c, "single", 0], [" ", d, "", 0]],
    )
    batch, rejected = _validate(path, 10)
    assert batch.household_ids == ["h1"] and batch.member_counts.tolist() == [2]
    assert batch.categories == ["couple"] and batch.known_income_cents.tolist() == [3]
    assert rejected == [
        ("<no id, line 4>", "line 4: household_id is empty"),
        ("<no id, line 5>", "line 5: household_id is empty"),
    ]


def test_one_bsn_on_every_row_rejects_every_household(tmp_path: Path) -> None:
    same = bsn_from(1)
    path = write_csv(
        tmp_path / "hh.csv", HOUSEHOLD_COLUMNS, [[f"h{i}", same, "single", 0] for i in range(500)]
    )
    batch, rejected = _validate(path, 64)
    assert len(batch) == 0 and len(rejected) == 500
    reasons = dict(rejected)
    assert reasons["h0"] == f"bsn {same} is also in household 'h1'"
    assert reasons["h7"] == f"line 9: bsn {same} is also in household 'h0'"


def test_the_working_folder_is_made_in_workdir_and_removed(tmp_path: Path) -> None:
    path = _scattered_file(tmp_path / "hh.csv", 50, seed=2)
    work = tmp_path / "o'brien's work"  # a quote in the path reaches DuckDB's SQL too
    work.mkdir()
    with validate_households(path, workdir=work) as checked:
        (folder,) = work.iterdir()
        assert folder.name.startswith(".households-")
        list(checked.parts(8))
        list(checked.rejected())
    assert list(work.iterdir()) == []


def test_rejections_come_after_the_parts(tmp_path: Path) -> None:
    path = _scattered_file(tmp_path / "hh.csv", 20, seed=3)
    with validate_households(path) as checked, pytest.raises(RuntimeError, match="every part"):
        list(checked.rejected())


def test_a_file_broken_part_way_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows_module, "CSV_BLOCK_BYTES", 256)
    good = [[f"h{i}", bsn_from(i), "single", 0] for i in range(200)]
    path = write_csv(tmp_path / "hh.csv", HOUSEHOLD_COLUMNS, good)
    with path.open("a") as f:
        f.write("h-bad,1,2,3,4,5,6\n")  # too many fields, far past the first part
    with pytest.raises(InputError, match=r"hh\.csv: cannot read household file"):
        check_readable(path)
    with pytest.raises(InputError, match=r"hh\.csv: cannot read household file"):
        _validate(path, 10)
    assert check_readable(write_csv(tmp_path / "ok.csv", HOUSEHOLD_COLUMNS, good)) == 200
