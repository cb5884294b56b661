"""Read SVB's household file: one row per member, ``household_id, bsn, category,
known_income_cents``, CSV or Parquet.

Validation is vectorised (a national batch has millions of rows). A row that is wrong rejects
its household with the line and field named; a household that is wrong as a whole (mixed
categories, too many members, a BSN also in another household) is rejected with the reason.
Nothing is dropped silently: every household id in the file ends up either accepted or in
``rejected`` (rows without a household id are reported by line).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shared.bsn import Bsn
from shared.errors import InputError
from shared.models import (
    MAX_HOUSEHOLD_MEMBERS,
    MAX_KNOWN_INCOME_CENTS,
    Household,
    NormCategory,
)

IntArray = npt.NDArray[np.int64]
COLUMNS: Final = ("household_id", "bsn", "category", "known_income_cents")
_WEIGHTS: Final = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)
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
    input_sha256: str
    rows: int

    def __len__(self) -> int:
        return len(self.household_ids)

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
                    column_types={c: pa.string() for c in COLUMNS}, strings_can_be_null=True
                ),
            )
        else:
            raise InputError(f"{path}: household file must be .csv or .parquet")
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read household file: {exc}") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {COLUMNS}")
    return table.select(list(COLUMNS)).cast(pa.schema([(c, pa.string()) for c in COLUMNS]))


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _row_problems(table: pa.Table) -> tuple[npt.NDArray[np.object_], IntArray, IntArray]:
    """Per row: a reason (or None), the BSN as int (0 if bad), known income (0 if bad)."""
    n = table.num_rows
    reasons: npt.NDArray[np.object_] = np.full(n, None, dtype=object)

    def flag(mask: npt.NDArray[np.bool_], text: npt.NDArray[np.object_] | str) -> None:
        new = mask & (reasons == None)  # noqa: E711 - elementwise comparison on an object array
        if isinstance(text, str):
            reasons[new] = text
        else:
            reasons[new] = text[new]

    hid = table.column("household_id")
    hid_empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(hid), ""), True).to_numpy(
        zero_copy_only=False
    )
    flag(hid_empty, "household_id is empty")

    bsn = pc.fill_null(pc.utf8_trim_whitespace(table.column("bsn")), "")
    bsn_text = np.asarray(bsn.to_pylist(), dtype=object)
    is_nine = pc.match_substring_regex(bsn, r"^[0-9]{9}$").to_numpy(zero_copy_only=False)
    flag(
        ~is_nine,
        np.array([f"bsn {t!r} is not nine digits" for t in bsn_text], dtype=object)
        if (~is_nine).any()
        else "",
    )
    bsn_int = np.zeros(n, dtype=np.int64)
    if is_nine.any():
        bsn_int[is_nine] = pc.cast(pc.filter(bsn, pa.array(is_nine)), pa.int64()).to_numpy()
    digits = (bsn_int[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.int64)) % 10
    elf_ok = ((digits @ _WEIGHTS) % 11 == 0) & (bsn_int != 0)
    bad_elf = is_nine & ~elf_ok
    if bad_elf.any():
        flag(bad_elf, np.array([f"bsn {t!r} fails the elfproef" for t in bsn_text], dtype=object))

    category = pc.fill_null(pc.utf8_trim_whitespace(table.column("category")), "")
    cat_ok = pc.is_in(category, pa.array(_CATEGORIES)).to_numpy(zero_copy_only=False)
    if (~cat_ok).any():
        cats = np.asarray(category.to_pylist(), dtype=object)
        flag(
            ~cat_ok,
            np.array(
                [f"category {c!r} is not one of {', '.join(_CATEGORIES)}" for c in cats],
                dtype=object,
            ),
        )

    known = pc.fill_null(pc.utf8_trim_whitespace(table.column("known_income_cents")), "")
    known_ok = pc.match_substring_regex(known, r"^[0-9]{1,9}$").to_numpy(zero_copy_only=False)
    known_int = np.zeros(n, dtype=np.int64)
    if known_ok.any():
        known_int[known_ok] = pc.cast(pc.filter(known, pa.array(known_ok)), pa.int64()).to_numpy()
    over = known_ok & (known_int > MAX_KNOWN_INCOME_CENTS)
    if (~known_ok | over).any():
        texts = np.asarray(known.to_pylist(), dtype=object)
        flag(
            ~known_ok | over,
            np.array(
                [
                    f"known_income_cents {t!r} is not a whole number of cents in "
                    f"0..{MAX_KNOWN_INCOME_CENTS}"
                    for t in texts
                ],
                dtype=object,
            ),
        )
    return reasons, bsn_int, known_int


def read_households(path: Path) -> HouseholdBatch:
    """Read and validate a household file; see the module docstring for the rules."""
    table = _read_table(path)
    n = table.num_rows
    reasons, bsn_int, known_int = _row_problems(table)
    hid = np.asarray(pc.fill_null(table.column("household_id"), "").to_pylist(), dtype=object)
    cats = np.asarray(pc.fill_null(table.column("category"), "").to_pylist(), dtype=object)
    line = np.arange(n, dtype=np.int64) + 2  # line 1 is the CSV header

    rejected: dict[str, str] = {}
    for i in np.flatnonzero(reasons != None):  # noqa: E711
        key = str(hid[i]).strip()
        message = f"line {int(line[i])}: {reasons[i]}"
        if not key:
            rejected.setdefault(f"<no id, line {int(line[i])}>", message)
        else:
            rejected.setdefault(key, message)

    # Group rows by household in order of first appearance.
    unique_ids, first_index, inverse = np.unique(hid, return_index=True, return_inverse=True)
    order_of_group = np.argsort(first_index, kind="stable")
    rank = np.empty_like(order_of_group)
    rank[order_of_group] = np.arange(len(order_of_group))
    group = rank[inverse]
    rows_sorted = np.lexsort((np.arange(n), group))
    counts = np.bincount(group, minlength=len(unique_ids))

    # BSNs in more than one household reject every household involved.
    valid_bsn = bsn_int > 0
    seen: dict[int, str] = {}
    for i in np.flatnonzero(valid_bsn):
        b = int(bsn_int[i])
        owner = seen.setdefault(b, str(hid[i]))
        if owner != hid[i]:
            msg = f"line {int(line[i])}: bsn {b:09d} is also in household {owner!r}"
            rejected.setdefault(str(hid[i]).strip() or f"<no id, line {int(line[i])}>", msg)
            rejected.setdefault(owner, f"bsn {b:09d} is also in household {str(hid[i])!r}")

    group_ids = unique_ids[order_of_group]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    accepted_ids: list[str] = []
    accepted_cats: list[str] = []
    known_sum: list[int] = []
    member_counts: list[int] = []
    member_rows: list[npt.NDArray[np.int64]] = []
    for g, gid in enumerate(group_ids):
        key = str(gid).strip()
        if not key or key in rejected:
            continue
        rows = rows_sorted[offsets[g] : offsets[g + 1]]
        size = len(rows)
        group_cats = set(cats[rows].tolist())
        problem = None
        if len(group_cats) > 1:
            problem = f"rows disagree on category ({', '.join(sorted(map(str, group_cats)))})"
        elif size > MAX_HOUSEHOLD_MEMBERS:
            problem = f"{size} members, at most {MAX_HOUSEHOLD_MEMBERS} allowed"
        elif len(set(bsn_int[rows].tolist())) != size:
            problem = "the same bsn is listed twice"
        elif cats[rows[0]] == "couple" and size < 2:
            problem = "category 'couple' needs at least two members"
        elif int(known_int[rows].sum()) > MAX_KNOWN_INCOME_CENTS:
            problem = f"known income adds up to more than {MAX_KNOWN_INCOME_CENTS} cents"
        if problem is not None:
            rejected[key] = f"line {int(line[rows[0]])}: household {key!r}: {problem}"
            continue
        accepted_ids.append(key)
        accepted_cats.append(str(cats[rows[0]]))
        known_sum.append(int(known_int[rows].sum()))
        member_counts.append(size)
        member_rows.append(rows)

    return HouseholdBatch(
        household_ids=accepted_ids,
        categories=accepted_cats,
        known_income_cents=np.asarray(known_sum, dtype=np.int64),
        member_counts=np.asarray(member_counts, dtype=np.int64),
        member_bsns=bsn_int[np.concatenate(member_rows)]
        if member_rows
        else np.zeros(0, dtype=np.int64),
        rejected=sorted(rejected.items()),
        input_sha256=_file_sha256(path),
        rows=n,
    )
