"""A seeded, deterministic synthetic polisadministratie and the matching SVB household file.

Shapes follow the AOW population: most persons have AOW (paid by SVB, so *not* in the polis
but in SVB's known income) plus one or two supplementary pensions; some still earn wages,
some have a benefit; a few corrections (negative amounts) occur; some persons have no records
at all. Partial AOW (years lived abroad) is what makes a household eligible for AIO.

Everything is vectorised with numpy so national scale (3.6 million persons) takes minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared.models import Period

IntArray = npt.NDArray[np.int64]

_KINDS = ("wage", "benefit", "pension", "other")
_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2], dtype=np.int64)

# Net monthly AOW (cents), full accrual: the part of the household's income SVB already knows.
_AOW_SINGLE_NET = 142_000
_AOW_COUPLE_MEMBER_NET = 99_000


def valid_bsns(rng: np.random.Generator, count: int) -> IntArray:
    """``count`` distinct random BSNs (as integers) that pass the elfproef."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < count:
        need = int((count - len(out)) * 1.2) + 16
        prefix = rng.integers(1_000_000, 99_999_999, size=need, dtype=np.int64)
        digits = (prefix[:, None] // 10 ** np.arange(7, -1, -1, dtype=np.int64)) % 10
        check = (digits @ _WEIGHTS) % 11
        keep = check <= 9
        candidates = prefix[keep] * 10 + check[keep]
        out = np.unique(np.concatenate([out, candidates]))
    return rng.permutation(out)[:count]


@dataclass(frozen=True, slots=True)
class SynthSummary:
    households: int
    persons: int
    records: int
    polis_path: Path
    households_path: Path


def generate(
    households: int,
    period: Period,
    out_dir: Path,
    *,
    seed: int = 2025,
    fmt: str = "parquet",
) -> SynthSummary:
    """Write ``polis.<fmt>`` and ``households.<fmt>`` to ``out_dir``, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Households: 58% singles, 40% couples, 2% couples with a co-resident adult (3 members).
    kind = rng.choice(3, size=households, p=[0.58, 0.40, 0.02])
    size = np.array([1, 2, 3], dtype=np.int64)[kind]
    persons = int(size.sum())
    bsn = valid_bsns(rng, persons)
    hh_index = np.repeat(np.arange(households, dtype=np.int64), size)
    category = np.where(kind[hh_index] == 0, "single", "couple")

    # SVB's own payment per member: AOW, partial for 20% (years abroad), none for the adult child.
    position = np.arange(persons) - np.repeat(np.cumsum(size) - size, size)
    accrual = np.where(rng.random(persons) < 0.8, 1.0, rng.uniform(0.2, 0.98, persons))
    base = np.where(kind[hh_index] == 0, _AOW_SINGLE_NET, _AOW_COUPLE_MEMBER_NET)
    known = np.where(position < 2, np.round(base * accrual), 0).astype(np.int64)

    # Income relations per person in the polis (AOW itself is SVB's, so not here).
    partial = accrual < 1.0
    n_pension = np.where(
        partial,
        rng.choice(4, size=persons, p=[0.45, 0.40, 0.13, 0.02]),
        rng.choice(4, size=persons, p=[0.06, 0.55, 0.33, 0.06]),
    )
    has_wage = rng.random(persons) < np.where(position == 2, 0.7, 0.06)
    has_benefit = rng.random(persons) < 0.03
    has_other = rng.random(persons) < 0.02
    rel_counts = n_pension + has_wage + has_benefit + has_other
    rel_person = np.repeat(np.arange(persons, dtype=np.int64), rel_counts)
    rel_kind = np.concatenate(
        [
            np.full(int(n_pension.sum()), 2),
            np.full(int(has_wage.sum()), 0),
            np.full(int(has_benefit.sum()), 1),
            np.full(int(has_other.sum()), 3),
        ]
    )
    rel_person = np.concatenate(
        [
            np.repeat(np.arange(persons), n_pension),
            np.flatnonzero(has_wage),
            np.flatnonzero(has_benefit),
            np.flatnonzero(has_other),
        ]
    ).astype(np.int64)
    n_rel = len(rel_person)
    median = np.array([90_000, 60_000, 45_000, 20_000])[rel_kind]
    gross = np.round(median * rng.lognormal(0.0, 0.9, n_rel)).astype(np.int64)
    tax_rate = rng.uniform(0.08, 0.37, n_rel)
    relation_id = np.arange(1, n_rel + 1, dtype=np.int64) * 7 + seed % 7

    # Months: most relations run the whole period; 8% start or stop inside it.
    months = period.months
    start = np.where(rng.random(n_rel) < 0.04, rng.integers(0, months, n_rel), 0)
    stop = np.where(rng.random(n_rel) < 0.04, rng.integers(0, months, n_rel) + 1, months)
    stop = np.maximum(stop, start + 1)
    span = stop - start
    rec_rel = np.repeat(np.arange(n_rel), span)
    rec_month = start[rec_rel] + (np.arange(len(rec_rel)) - np.repeat(np.cumsum(span) - span, span))
    rec_gross = gross[rec_rel] + rng.integers(-500, 500, len(rec_rel))
    rec_tax = np.round(rec_gross * tax_rate[rec_rel]).astype(np.int64)

    # Corrections: 0.5% of record-months get a negative correction of part of the amount.
    corr = np.flatnonzero(rng.random(len(rec_rel)) < 0.005)
    corr_frac = rng.uniform(0.1, 1.2, len(corr))
    all_rel = np.concatenate([rec_rel, rec_rel[corr]])
    all_month = np.concatenate([rec_month, rec_month[corr]])
    all_gross = np.concatenate([rec_gross, -np.round(rec_gross[corr] * corr_frac).astype(np.int64)])
    all_tax = np.concatenate([rec_tax, -np.round(rec_tax[corr] * corr_frac).astype(np.int64)])

    month_labels = [str(period.start.from_index(period.start.index + i)) for i in range(months)]
    polis = pa.table(
        {
            "bsn": _bsn_text(bsn[rel_person[all_rel]]),
            "relation_id": relation_id[all_rel],
            "kind": pa.DictionaryArray.from_arrays(
                pa.array(rel_kind[all_rel].astype(np.int32)), pa.array(_KINDS)
            ),
            "month": pa.DictionaryArray.from_arrays(
                pa.array(all_month.astype(np.int32)), pa.array(month_labels)
            ),
            "gross_cents": all_gross,
            "tax_cents": all_tax,
        }
    )
    hh_ids = pc.binary_join_element_wise(
        "H", pc.utf8_lpad(pa.array(hh_index + 1).cast(pa.string()), 8, "0"), ""
    )
    household_table = pa.table(
        {
            "household_id": hh_ids,
            "bsn": _bsn_text(bsn),
            "category": pa.array(category),
            "known_income_cents": known,
        }
    )
    polis_path = out_dir / f"polis.{fmt}"
    households_path = out_dir / f"households.{fmt}"
    _write(polis, polis_path, fmt)
    _write(household_table, households_path, fmt)
    return SynthSummary(households, persons, polis.num_rows, polis_path, households_path)


def _bsn_text(values: IntArray) -> pa.Array:
    """BSNs as nine-digit text (leading zeros kept)."""
    # large_string: a national polis has more than 2 GiB of BSN text in one column
    text = pc.utf8_lpad(pa.array(values).cast(pa.large_string()), 9, "0")
    return text.cast(pa.string()) if len(values) < 10_000_000 else text


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=1_000_000)
    else:
        import pyarrow.csv as pacsv

        plain = table.cast(
            pa.schema(
                [
                    pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
                    for f in table.schema
                ]
            )
        )
        pacsv.write_csv(plain, path)
