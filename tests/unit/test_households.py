"""SVB's household file: every bad row or household is rejected with line and reason."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.errors import InputError
from svb_client.households import read_households
from tests.conftest import HOUSEHOLD_COLUMNS, bsn_from, write_csv

A, B, C, D, E = (bsn_from(i) for i in range(5))


def _read(tmp_path: Path, rows: list[list[object]]) -> tuple[list[str], dict[str, str]]:
    batch = read_households(write_csv(tmp_path / "hh.csv", HOUSEHOLD_COLUMNS, rows))
    return batch.household_ids, dict(batch.rejected)


def test_good_file_groups_members_in_file_order(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["h2", A, "couple", 100],
        ["h1", C, "single", 50],
        ["h2", B, "couple", 200],
    ]
    batch = read_households(write_csv(tmp_path / "hh.csv", HOUSEHOLD_COLUMNS, rows))
    assert batch.household_ids == ["h2", "h1"]
    assert batch.member_counts.tolist() == [2, 1]
    assert [f"{b:09d}" for b in batch.member_bsns] == [A, B, C]
    assert batch.known_income_cents.tolist() == [300, 50]
    assert batch.rejected == []


def test_parquet_input_works(tmp_path: Path) -> None:
    table = pa.table(
        {
            "household_id": ["x"],
            "bsn": [A],
            "category": ["single"],
            "known_income_cents": [7],
        }
    )
    pq.write_table(table, tmp_path / "hh.parquet")
    batch = read_households(tmp_path / "hh.parquet")
    assert batch.household_ids == ["x"]
    assert batch.known_income_cents.tolist() == [7]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["bad", "12345678", "single", 0], "line 3: bsn '12345678' is not nine digits"),
        (["bad", "1234567890", "single", 0], "is not nine digits"),
        (["bad", "12345x782", "single", 0], "is not nine digits"),
        (["bad", "123456789", "single", 0], "line 3: bsn '123456789' fails the elfproef"),
        (["bad", "", "single", 0], "bsn '' is not nine digits"),
        (["bad", D, "widow", 0], "category 'widow' is not one of single, couple"),
        (["bad", D, "single", "12.50"], "known_income_cents '12.50' is not a whole number"),
        (["bad", D, "single", "-5"], "known_income_cents '-5'"),
        (["bad", D, "single", "99999999"], "known_income_cents '99999999'"),
    ],
)
def test_bad_rows_reject_their_household_with_line_and_field(
    tmp_path: Path, row: list[object], reason: str
) -> None:
    accepted, rejected = _read(tmp_path, [["ok", A, "single", 0], row])
    assert accepted == ["ok"]
    assert reason in rejected["bad"]


def test_duplicate_bsn_across_households_rejects_both(tmp_path: Path) -> None:
    accepted, rejected = _read(
        tmp_path, [["h1", A, "single", 0], ["h2", A, "single", 0], ["h3", B, "single", 0]]
    )
    assert accepted == ["h3"]
    assert "also in household 'h1'" in rejected["h2"]
    assert "also in household 'h2'" in rejected["h1"]


def test_duplicate_bsn_within_household(tmp_path: Path) -> None:
    _, rejected = _read(tmp_path, [["h1", A, "couple", 0], ["h1", A, "couple", 0]])
    assert "same BSN is listed twice" in rejected["h1"]


def test_household_level_problems(tmp_path: Path) -> None:
    big = [["big", bsn_from(10 + i), "couple", 0] for i in range(7)]
    rows: list[list[object]] = [
        ["mixed", A, "single", 0],
        ["mixed", B, "couple", 0],
        ["lonely", C, "couple", 0],
        *big,
        ["", D, "single", 0],
    ]
    accepted, rejected = _read(tmp_path, rows)
    assert accepted == []
    assert "disagree on category" in rejected["mixed"]
    assert "needs at least two members" in rejected["lonely"]
    assert "7 members, at most 6" in rejected["big"]
    assert any("household_id is empty" in r for k, r in rejected.items() if "no id" in k)


def test_every_household_is_either_accepted_or_rejected(tmp_path: Path) -> None:
    rows: list[list[object]] = [[f"h{i}", bsn_from(i), "single", i] for i in range(50)]
    rows[7][1] = "000000000"
    rows[20][2] = ""
    accepted, rejected = _read(tmp_path, rows)
    assert sorted(accepted + list(rejected)) == sorted(f"h{i}" for i in range(50))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "household_id,bsn,category\nh,111222333,single\n",
            r"missing column\(s\) known_income_cents",
        ),
        ("", "cannot read"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "hh.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_households(path)


def test_wrong_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hh.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match=r"\.csv or \.parquet"):
        read_households(path)


def test_cost_sharers_column_is_optional_and_validated(tmp_path: Path) -> None:
    from tests.conftest import bsn_from

    path = tmp_path / "hh.csv"
    path.write_text(
        "household_id,bsn,category,known_income_cents,cost_sharers\n"
        f"a,{bsn_from(1)},single,100,2\n"
        f"b,{bsn_from(2)},couple,100,1\n"
        f"b,{bsn_from(3)},couple,100,1\n"
        f"c,{bsn_from(4)},single,100,\n"
        f"d,{bsn_from(5)},single,100,-1\n"
        f"e,{bsn_from(6)},single,100,two\n"
        f"f,{bsn_from(7)},couple,100,1\n"
        f"f,{bsn_from(8)},couple,100,2\n"
        f"g,{bsn_from(9)},single,100,21\n"
    )
    batch = read_households(path)
    assert batch.household_ids == ["a", "b", "c"]
    assert batch.sharers.tolist() == [2, 1, 0]
    assert [h.cost_sharers for h in batch.households] == [2, 1, 0]
    rejected = dict(batch.rejected)
    assert rejected["d"] == (
        "line 6: cost_sharers '-1' is not a whole number 0..20 (the other adults of 27 or "
        "older sharing the home, besides the partner)"
    )
    assert rejected["e"].startswith("line 7: cost_sharers 'two'")
    assert "rows disagree on cost_sharers" in rejected["f"]
    assert rejected["g"].startswith("line 10: cost_sharers '21'")


def test_without_cost_sharers_column_everyone_has_none(tmp_path: Path) -> None:
    from tests.conftest import bsn_from

    path = tmp_path / "hh.csv"
    path.write_text(f"household_id,bsn,category,known_income_cents\na,{bsn_from(1)},single,100\n")
    assert read_households(path).sharers.tolist() == [0]


def test_the_enclave_chunk_carries_the_cost_sharers(tmp_path: Path) -> None:
    path = tmp_path / "hh.csv"
    path.write_text(
        "household_id,bsn,category,known_income_cents,cost_sharers\n"
        f"a,{bsn_from(1)},single,100,0\n"
        f"b,{bsn_from(2)},couple,100,1\n"
        f"b,{bsn_from(3)},couple,100,1\n"
        f"c,{bsn_from(4)},single,100,2\n"
    )
    batch = read_households(path)
    chunk = batch.chunk(0, 3, attributes=True)
    assert chunk.cost_sharers is not None and chunk.cost_sharers.tolist() == [0, 1, 2]
    assert chunk.slice(1, 3).cost_sharers.tolist() == [1, 2]  # type: ignore[union-attr]
    assert batch.chunk(0, 3).cost_sharers is None  # the HE modes send members only
