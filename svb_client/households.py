"""Read SVB's household file: one row per member, ``household_id, bsn, category,
known_income_cents`` and optionally ``cost_sharers`` (the other adults of 27 or older who
share the home, besides the partner: art. 19a/22a Participatiewet; whole number, empty or
absent = 0, the same on every row of the household), CSV or Parquet.

Validation is vectorised (a national batch has millions of rows). A row that is wrong rejects
its household with the line and field named; a household that is wrong as a whole (mixed
categories, too many members, a BSN also in another household) is rejected with the reason.
Nothing is dropped silently: every household id in the file ends up either accepted or in
``rejected`` (rows without a household id are reported by line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shared.bsn import Bsn, valid_bsn_mask
from shared.chunk import HouseholdChunk, household_problems
from shared.errors import InputError
from shared.models import (
    MAX_COST_SHARERS,
    MAX_KNOWN_INCOME_CENTS,
    Household,
    NormCategory,
)

IntArray = npt.NDArray[np.int64]
COLUMNS: Final = ("household_id", "bsn", "category", "known_income_cents")
OPTIONAL_COLUMNS: Final = ("cost_sharers",)
_CATEGORIES: Final = tuple(c.value for c in NormCategory)


@dataclass(frozen=True, slots=True)
class HouseholdBatch:
    """Accepted households in file order, as columns, plus the rejected ones with reasons."""

    household_ids: list[str]
    categories: list[str]
    known_income_cents: IntArray
    member_counts: IntArray
    member_bsns: IntArray
    rejected: list[tuple[str, str]]
    rows: int
    cost_sharers: IntArray | None = None
    """Per accepted household (zeros when the file has no ``cost_sharers`` column)."""

    @property
    def sharers(self) -> IntArray:
        """:attr:`cost_sharers`, zeros if absent."""
        if self.cost_sharers is None:
            return np.zeros(len(self.household_ids), np.int64)
        return self.cost_sharers

    def __len__(self) -> int:
        return len(self.household_ids)

    def chunk(self, start: int, stop: int, *, attributes: bool = False) -> HouseholdChunk:
        """Households ``start:stop`` as a validated chunk; ``attributes`` adds whether each
        is a couple, its known income and its cost-sharers (what the compute-to-data mode
        sends)."""
        offsets = np.concatenate([[0], np.cumsum(self.member_counts)])
        counts = self.member_counts[start:stop]
        bsns = self.member_bsns[offsets[start] : offsets[stop]]
        if not attributes:
            return HouseholdChunk(counts, bsns)
        couple = np.array([c == "couple" for c in self.categories[start:stop]], dtype=np.bool_)
        return HouseholdChunk(
            counts,
            bsns,
            couple,
            self.known_income_cents[start:stop],
            self.sharers[start:stop],
        )

    @property
    def households(self) -> list[Household]:
        """The accepted households as objects (for tests and the oracle; costs memory)."""
        offsets = np.concatenate([[0], np.cumsum(self.member_counts)])
        return [
            Household(
                household_id=hid,
                members=tuple(
                    Bsn(f"{b:09d}") for b in self.member_bsns[offsets[i] : offsets[i + 1]]
                ),
                category=NormCategory(self.categories[i]),
                known_income_cents=int(self.known_income_cents[i]),
                cost_sharers=int(self.sharers[i]),
            )
            for i, hid in enumerate(self.household_ids)
        ]


def _read_table(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in (*COLUMNS, *OPTIONAL_COLUMNS)},
                    strings_can_be_null=True,
                ),
            )
        else:
            raise InputError(f"{path}: household file must be .csv or .parquet")
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read household file: {exc}") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {COLUMNS}")
    for c in OPTIONAL_COLUMNS:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
    names = (*COLUMNS, *OPTIONAL_COLUMNS)
    return table.select(list(names)).cast(pa.schema([(c, pa.string()) for c in names]))


def _texts(column: pa.Array | pa.ChunkedArray, where: npt.NDArray[np.bool_]) -> list[str]:
    """The values of ``column`` at the rows where ``where`` holds (only those become Python)."""
    return [str(v) for v in pc.filter(column, pa.array(where)).to_pylist()]


def _row_problems(
    table: pa.Table,
) -> tuple[npt.NDArray[np.object_], IntArray, IntArray, IntArray]:
    """Per row: a reason (or None), the BSN as int (0 if bad), known income (0 if bad),
    cost-sharers (0 if bad or empty).

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
    return reasons, bsn_int, known_int, sharers_int


def _dictionary(column: pa.ChunkedArray) -> tuple[IntArray, list[str]]:
    """Codes in order of first appearance, and the distinct values (nulls become "")."""
    encoded = pc.dictionary_encode(pc.fill_null(column, "").combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def read_households(path: Path) -> HouseholdBatch:
    """Read and validate a household file; see the module docstring for the rules."""
    table = _read_table(path)
    n = table.num_rows
    reasons, bsn_int, known_int, sharers_int = _row_problems(table)
    line = np.arange(n, dtype=np.int64) + 2  # line 1 is the CSV header
    group, group_ids = _dictionary(table.column("household_id"))  # first-appearance order
    cat_code, cat_values = _dictionary(table.column("category"))
    groups = len(group_ids)
    rejected: dict[str, str] = {}
    refused = np.zeros(groups, dtype=bool)

    def reject(g: int, message: str) -> None:
        refused[g] = True
        key = group_ids[g].strip()
        rejected.setdefault(key or f"<no id, line {message.split(':')[0][5:]}>", message)

    for i in np.flatnonzero(reasons != None):  # noqa: E711 - object array
        reject(int(group[i]), f"line {int(line[i])}: {reasons[i]}")

    # A BSN in more than one household rejects every household involved.
    valid = np.flatnonzero(bsn_int > 0)
    _, inverse, counts = np.unique(bsn_int[valid], return_inverse=True, return_counts=True)
    owner: dict[int, int] = {}
    for i in valid[counts[inverse] > 1]:
        b, g = int(bsn_int[i]), int(group[i])
        first = owner.setdefault(b, g)
        if first != g:
            reject(g, f"line {int(line[i])}: bsn {b:09d} is also in household {group_ids[first]!r}")
            reject(first, f"bsn {b:09d} is also in household {group_ids[g]!r}")

    # Household-level checks, vectorised over groups (rows sorted by group, then file order).
    rows = np.lexsort((np.arange(n), group))
    size = np.bincount(group, minlength=groups)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    g_sorted, b_sorted = group[rows], bsn_int[rows]
    cat_sorted = cat_code[rows]
    cat_min = np.minimum.reduceat(cat_sorted, starts) if n else cat_sorted
    cat_max = np.maximum.reduceat(cat_sorted, starts) if n else cat_sorted
    known_sum = np.add.reduceat(known_int[rows], starts) if n else known_int
    sharers_sorted = sharers_int[rows]
    sharers_min = np.minimum.reduceat(sharers_sorted, starts) if n else sharers_sorted
    sharers_max = np.maximum.reduceat(sharers_sorted, starts) if n else sharers_sorted
    first_row = rows[starts] if n else rows
    is_couple = np.array([v == "couple" for v in cat_values], dtype=bool)[cat_min]
    for gi in np.flatnonzero(sharers_min != sharers_max):
        reject(
            int(gi),
            f"line {int(line[first_row[gi]])}: household {group_ids[gi].strip()!r}: "
            "rows disagree on cost_sharers",
        )
    for gi in np.flatnonzero(cat_min != cat_max):
        members = cat_sorted[starts[gi] : starts[gi] + size[gi]]
        detail = (
            f"rows disagree on category ({', '.join(sorted({cat_values[c] for c in members}))})"
        )
        reject(
            int(gi),
            f"line {int(line[first_row[gi]])}: household {group_ids[gi].strip()!r}: {detail}",
        )
    # Every rule of a valid household is shared.chunk's (the one the services apply too).
    problems = (
        household_problems(size, b_sorted, is_couple=is_couple, known_income_cents=known_sum)
        if groups
        else {}
    )
    for slot, problem in problems.items():
        at = first_row[slot] if problem.member < 0 else rows[starts[slot] + problem.member]
        key = group_ids[slot].strip()
        reject(slot, f"line {int(line[at])}: household {key!r}: {problem.reason}")

    accepted = ~refused
    keep_rows = rows[accepted[g_sorted]]
    accepted_groups = np.flatnonzero(accepted)
    return HouseholdBatch(
        household_ids=[group_ids[g].strip() for g in accepted_groups],
        categories=[cat_values[c].strip() for c in cat_min[accepted_groups]],
        known_income_cents=known_sum[accepted_groups].astype(np.int64),
        member_counts=size[accepted_groups].astype(np.int64),
        member_bsns=bsn_int[keep_rows],
        rejected=sorted(rejected.items()),
        rows=n,
        cost_sharers=sharers_min[accepted_groups].astype(np.int64),
    )
