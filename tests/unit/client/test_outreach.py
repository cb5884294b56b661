"""The one writer of result files: complete or not there, never half-written."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from svb_client.pipeline.outreach import OutputError, atomic_file, write_outreach
from svb_client.pipeline.summary import Summary


def test_outreach_is_written_whole_and_counted(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    summary = Summary()
    rows = [
        ("h1", "eligible", ""),
        ("h2", "rejected", "refused by UWV: budget"),
        ("h3", "not_eligible", ""),
    ]
    write_outreach(out, rows, summary.count)
    with out.open(newline="") as f:
        assert list(csv.reader(f)) == [["household_id", "decision", "reason"], *map(list, rows)]
    assert out.stat().st_mode & 0o777 == 0o600
    assert (summary.households, summary.screened, summary.eligible) == (3, 2, 1)
    assert (summary.rejected, summary.refused_by_uwv) == (1, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("previous\n")

    with pytest.raises(RuntimeError):
        write_outreach(out, _failing(), Summary().count)
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def _failing() -> Iterator[tuple[str, str, str]]:
    yield ("h1", "eligible", "")
    raise RuntimeError("journal went away")


def test_an_unwritable_place_is_one_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(OutputError, match="no-such-folder"),
        atomic_file(tmp_path / "no-such-folder" / "out.csv") as f,
    ):
        f.write(b"x")
