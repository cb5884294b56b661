"""SVB's household file, read a part at a time, and the checks of each row on its own.

The file has one row per member: ``household_id, bsn, category, known_income_cents`` and
optionally ``cost_sharers`` (the other adults of 27 or older who share the home, besides the
partner: art. 19a/22a Participatiewet; whole number, empty or absent = 0, the same on every row
of the household), as CSV or Parquet. It is read in parts of a bounded size (pyarrow's
streaming CSV reader, Parquet row batches), every value as text, so a national file never
sits in memory whole; the checks that span rows (households, a BSN in two households) are
:mod:`svb_client.households.validate`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shared.bsn import valid_bsn_mask
from shared.errors import InputError
from shared.models import MAX_COST_SHARERS, MAX_KNOWN_INCOME_CENTS, NormCategory

IntArray = npt.NDArray[np.int64]
COLUMNS: Final = ("household_id", "bsn", "category", "known_income_cents")
OPTIONAL_COLUMNS: Final = ("cost_sharers",)
_CATEGORIES: Final = tuple(c.value for c in NormCategory)
_NAMES: Final = (*COLUMNS, *OPTIONAL_COLUMNS)
_TEXT: Final = pa.schema([(c, pa.string()) for c in _NAMES])

CSV_BLOCK_BYTES: Final = 1 << 20
"""Bytes of CSV per part (about 17,000 rows of a typical file)."""
PARQUET_BATCH_ROWS: Final = 65_536
"""Rows per part of a Parquet file."""


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """pyarrow's and the OS's errors while reading, as one InputError naming the file."""
    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read household file: {exc}") from None


def _columns_present(path: Path, names: list[str]) -> list[str]:
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {COLUMNS}")
    return [c for c in _NAMES if c in names]


def _as_text(table: pa.Table) -> pa.Table:
    """The columns in :data:`_NAMES` order, every one as text (an absent optional one null)."""
    for c in OPTIONAL_COLUMNS:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
    return table.select(list(_NAMES)).cast(_TEXT)


def _csv_reader(path: Path, include: list[str] | None) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in _NAMES},
            strings_can_be_null=True,
            include_columns=include,
        ),
    )


def read_parts(path: Path) -> Iterator[pa.Table]:
    """The file as tables of text columns (:data:`COLUMNS` and :data:`OPTIONAL_COLUMNS`), a
    bounded number of rows each, in file order. Raises :class:`InputError` for a file that
    is not .csv or .parquet, cannot be read (also part-way through) or lacks a column."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"{path}: household file must be .csv or .parquet")
    with _read_errors(path):
        if suffix == ".parquet":
            parquet = pq.ParquetFile(path)
            present = _columns_present(path, list(parquet.schema_arrow.names))
            batches: Iterator[pa.RecordBatch] = parquet.iter_batches(
                batch_size=PARQUET_BATCH_ROWS, columns=present
            )
        else:
            # The header first (one block), then only the columns used: an extra column's
            # type is never inferred, so it cannot fail the read further on.
            header = _csv_reader(path, None)
            names = list(header.schema.names)
            header.close()
            batches = iter(_csv_reader(path, _columns_present(path, names)))
        for batch in batches:
            yield _as_text(pa.Table.from_batches([batch]))


def check_readable(path: Path) -> int:
    """Read the whole file once, a part at a time (constant memory), and return its number of
    rows; raises :class:`InputError` as :func:`read_parts` does. The row checks are not run:
    a bad row rejects its household, it does not refuse the file."""
    return sum(part.num_rows for part in read_parts(path))


@dataclass(frozen=True, slots=True, eq=False)
class CheckedRows:
    """One part of the file after the checks of each row on its own."""

    reasons: npt.NDArray[np.object_]
    """Per row, why it is wrong (without its line), or None."""
    household_id: pa.Array | pa.ChunkedArray
    """Trimmed; "" where empty."""
    category: pa.Array | pa.ChunkedArray
    """Trimmed; "" where empty."""
    bsn: IntArray
    """0 where not a valid BSN."""
    known_income_cents: IntArray
    """0 where not valid."""
    cost_sharers: IntArray
    """0 where not valid or empty."""


def _texts(column: pa.Array | pa.ChunkedArray, where: npt.NDArray[np.bool_]) -> list[str]:
    """The values of ``column`` at the rows where ``where`` holds (only those become Python)."""
    return [str(v) for v in pc.filter(column, pa.array(where)).to_pylist()]


def row_checks(table: pa.Table) -> CheckedRows:
    """Check every row of one part of the file (a table of the string columns
    :data:`COLUMNS` and :data:`OPTIONAL_COLUMNS`).

    Vectorised: only rows that are wrong are ever turned into Python strings.
    """
    n = table.num_rows
    reasons: npt.NDArray[np.object_] = np.full(n, None, dtype=object)

    def flag(
        mask: npt.NDArray[np.bool_],
        render: Callable[[str], str],
        column: pa.Array | pa.ChunkedArray,
    ) -> None:
        new = mask & (reasons == None)  # noqa: E711 - elementwise on an object array
        if new.any():
            reasons[new] = [render(v) for v in _texts(column, new)]

    def as_bool(array: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)

    hid = pc.fill_null(pc.utf8_trim_whitespace(table.column("household_id")), "")
    flag(as_bool(pc.equal(hid, "")), lambda _: "household_id is empty", hid)

    bsn = pc.fill_null(pc.utf8_trim_whitespace(table.column("bsn")), "")
    is_nine = as_bool(pc.match_substring_regex(bsn, r"^[0-9]{9}$"))
    flag(~is_nine, lambda t: f"bsn {t!r} is not nine digits", bsn)
    bsn_int = np.zeros(n, dtype=np.int64)
    if is_nine.any():
        bsn_int[is_nine] = pc.cast(pc.filter(bsn, pa.array(is_nine)), pa.int64()).to_numpy()
    elf_ok = valid_bsn_mask(bsn_int)
    flag(is_nine & ~elf_ok, lambda t: f"bsn {t!r} fails the elfproef", bsn)
    bsn_int[~elf_ok] = 0

    category = pc.fill_null(pc.utf8_trim_whitespace(table.column("category")), "")
    cat_ok = as_bool(pc.is_in(category, pa.array(_CATEGORIES)))
    allowed = ", ".join(_CATEGORIES)
    flag(~cat_ok, lambda c: f"category {c!r} is not one of {allowed}", category)

    known = pc.fill_null(pc.utf8_trim_whitespace(table.column("known_income_cents")), "")
    known_ok = as_bool(pc.match_substring_regex(known, r"^[0-9]{1,9}$"))
    known_int = np.zeros(n, dtype=np.int64)
    if known_ok.any():
        known_int[known_ok] = pc.cast(pc.filter(known, pa.array(known_ok)), pa.int64()).to_numpy()
    over = known_ok & (known_int > MAX_KNOWN_INCOME_CENTS)
    flag(
        ~known_ok | over,
        lambda t: (
            f"known_income_cents {t!r} is not a whole number of cents in "
            f"0..{MAX_KNOWN_INCOME_CENTS}"
        ),
        known,
    )
    sharers = pc.fill_null(pc.utf8_trim_whitespace(table.column("cost_sharers")), "")
    empty = as_bool(pc.equal(sharers, ""))
    sharers_ok = as_bool(pc.match_substring_regex(sharers, r"^[0-9]{1,9}$"))
    sharers_int = np.zeros(n, dtype=np.int64)
    if sharers_ok.any():
        sharers_int[sharers_ok] = pc.cast(
            pc.filter(sharers, pa.array(sharers_ok)), pa.int64()
        ).to_numpy()
    too_many = sharers_ok & (sharers_int > MAX_COST_SHARERS)
    flag(
        ~(sharers_ok | empty) | too_many,
        lambda t: (
            f"cost_sharers {t!r} is not a whole number 0..{MAX_COST_SHARERS} (the other adults "
            "of 27 or older sharing the home, besides the partner)"
        ),
        sharers,
    )
    sharers_int[~sharers_ok] = 0
    return CheckedRows(reasons, hid, category, bsn_int, known_int, sharers_int)
