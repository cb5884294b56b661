"""The columnar input of the evaluators: one row per household, aggregated over the period.

UWV's store produces, per household of the batch, the sum over all members and all months of
the period of ``gross_cents`` and of ``tax_cents``, separately per source kind; SVB's query
supplies the norm category and the income SVB already knows. That is everything a rule may
read (see :mod:`shared.rules.verify` for the policy that enforces it)::

    batch = Batch.from_columns(
        period=Period.parse("2025-01..2025-03"),
        gross_cents={SourceKind.PENSION: pension_gross, SourceKind.WAGE: wage_gross},
        tax_cents={SourceKind.PENSION: pension_tax, SourceKind.WAGE: wage_tax},
        is_couple=category == "couple",          # numpy bool array
        known_income_cents=known,                # numpy int64 array
    )

Kinds that are absent count as zero. Every array has one entry per household, in the order
of the batch; results come back in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from shared.models import (
    MAX_COST_SHARERS,
    MAX_KNOWN_INCOME_CENTS,
    NormCategory,
    Period,
    SourceKind,
)
from shared.rules.check import MAX_POLIS_SUM_CENTS
from shared.rules.errors import RuleError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class BatchError(RuleError):
    """The columns given to the evaluator are inconsistent or out of range."""


@dataclass(frozen=True)
class PersonMonths:
    """UWV's per-person, per-month polis amounts of a batch's households: one row per person
    and month that has records (a person-month without records counts as zero), with the
    position of the household the person belongs to. What outputs with ``per: person_month``
    are computed on."""

    household: IntArray
    gross_cents: Mapping[SourceKind, IntArray]
    tax_cents: Mapping[SourceKind, IntArray]

    @classmethod
    def empty(cls) -> PersonMonths:
        zero = np.zeros(0, np.int64)
        return cls(zero, dict.fromkeys(SourceKind, zero), dict.fromkeys(SourceKind, zero))

    def __len__(self) -> int:
        return len(self.household)


@dataclass(frozen=True)
class HouseholdFacts:
    """One household's row of a batch (used by the per-household interpreter and the tests)."""

    gross_cents: Mapping[SourceKind, int]
    tax_cents: Mapping[SourceKind, int]
    is_couple: bool
    known_income_cents: int
    cost_sharers: int = 0
    person_months: tuple[tuple[Mapping[SourceKind, int], Mapping[SourceKind, int]], ...] | None = (
        None
    )
    """Per person and month (gross, tax) per kind; ``None``: the sums are one person-month."""


@dataclass(frozen=True)
class Batch:
    """Per-household columns for one reference period (construct with :meth:`from_columns`)."""

    period: Period
    gross_cents: Mapping[SourceKind, IntArray]
    tax_cents: Mapping[SourceKind, IntArray]
    is_couple: BoolArray
    known_income_cents: IntArray
    cost_sharers: IntArray
    size: int
    person_months: PersonMonths | None = None

    @classmethod
    def from_columns(
        cls,
        *,
        period: Period,
        gross_cents: Mapping[SourceKind, npt.ArrayLike],
        tax_cents: Mapping[SourceKind, npt.ArrayLike],
        is_couple: npt.ArrayLike,
        known_income_cents: npt.ArrayLike,
        cost_sharers: npt.ArrayLike | None = None,
        person_months: PersonMonths | None = None,
    ) -> Batch:
        """Check and freeze the columns; missing kinds (and cost-sharers) become zeros."""
        couple = np.asarray(is_couple)
        if couple.ndim != 1 or couple.dtype != np.bool_:
            raise BatchError(
                "is_couple must be a one-dimensional boolean array",
                path="is_couple",
                expected="numpy bool array, one per household",
            )
        n = len(couple)
        known = _column(known_income_cents, n, "known_income_cents", 0, MAX_KNOWN_INCOME_CENTS)
        sharers = _column(
            np.zeros(n, np.int64) if cost_sharers is None else cost_sharers,
            n,
            "cost_sharers",
            0,
            MAX_COST_SHARERS,
        )
        gross = {
            k: _column(
                gross_cents.get(k, np.zeros(n, np.int64)),
                n,
                f"gross_cents[{k}]",
                -MAX_POLIS_SUM_CENTS,
                MAX_POLIS_SUM_CENTS,
            )
            for k in SourceKind
        }
        tax = {
            k: _column(
                tax_cents.get(k, np.zeros(n, np.int64)),
                n,
                f"tax_cents[{k}]",
                -MAX_POLIS_SUM_CENTS,
                MAX_POLIS_SUM_CENTS,
            )
            for k in SourceKind
        }
        for col in (couple, known, sharers, *gross.values(), *tax.values()):
            col.flags.writeable = False
        return cls(
            period=period,
            gross_cents=MappingProxyType(gross),
            tax_cents=MappingProxyType(tax),
            is_couple=couple,
            known_income_cents=known,
            cost_sharers=sharers,
            size=n,
            person_months=person_months,
        )

    @classmethod
    def from_households(cls, period: Period, rows: Sequence[HouseholdFacts]) -> Batch:
        """Build a batch from per-household rows (convenient for tests and small batches)."""
        for i, r in enumerate(rows):
            values = [*r.gross_cents.values(), *r.tax_cents.values()]
            if any(abs(v) > MAX_POLIS_SUM_CENTS for v in values):
                raise BatchError(
                    f"household {i} has a polis sum beyond {MAX_POLIS_SUM_CENTS}",
                    path=f"[{i}]",
                    expected=f"|sum| <= {MAX_POLIS_SUM_CENTS} cents",
                )
            if not 0 <= r.known_income_cents <= MAX_KNOWN_INCOME_CENTS:
                raise BatchError(
                    f"household {i} has known income {r.known_income_cents}",
                    path=f"[{i}]",
                    expected=f"0..{MAX_KNOWN_INCOME_CENTS} cents",
                )
        return cls.from_columns(
            period=period,
            gross_cents={
                k: np.array([r.gross_cents.get(k, 0) for r in rows], np.int64) for k in SourceKind
            },
            tax_cents={
                k: np.array([r.tax_cents.get(k, 0) for r in rows], np.int64) for k in SourceKind
            },
            is_couple=np.array([r.is_couple for r in rows], np.bool_).reshape(len(rows)),
            known_income_cents=np.array([r.known_income_cents for r in rows], np.int64),
            cost_sharers=np.array([r.cost_sharers for r in rows], np.int64),
            person_months=_person_months(rows),
        )

    def __len__(self) -> int:
        return self.size

    def household(self, i: int) -> HouseholdFacts:
        """Row ``i`` as plain Python values."""
        return HouseholdFacts(
            gross_cents={k: int(v[i]) for k, v in self.gross_cents.items()},
            tax_cents={k: int(v[i]) for k, v in self.tax_cents.items()},
            is_couple=bool(self.is_couple[i]),
            known_income_cents=int(self.known_income_cents[i]),
            cost_sharers=int(self.cost_sharers[i]),
            person_months=self._rows_of(i),
        )

    def _rows_of(
        self, i: int
    ) -> tuple[tuple[Mapping[SourceKind, int], Mapping[SourceKind, int]], ...] | None:
        pm = self.person_months
        if pm is None:
            return None
        return tuple(
            (
                {k: int(v[r]) for k, v in pm.gross_cents.items()},
                {k: int(v[r]) for k, v in pm.tax_cents.items()},
            )
            for r in np.flatnonzero(pm.household == i)
        )


def _person_months(rows: Sequence[HouseholdFacts]) -> PersonMonths:
    """Per-person, per-month rows of small batches (tests); a household without them counts
    its sums as one person-month."""
    index: list[int] = []
    gross: dict[SourceKind, list[int]] = {k: [] for k in SourceKind}
    tax: dict[SourceKind, list[int]] = {k: [] for k in SourceKind}
    for i, r in enumerate(rows):
        months = r.person_months if r.person_months is not None else ((r.gross_cents, r.tax_cents),)
        for g, t in months:
            index.append(i)
            for k in SourceKind:
                gross[k].append(g.get(k, 0))
                tax[k].append(t.get(k, 0))
    return PersonMonths(
        np.array(index, np.int64),
        {k: np.array(v, np.int64) for k, v in gross.items()},
        {k: np.array(v, np.int64) for k, v in tax.items()},
    )


def category_is_couple(categories: Sequence[NormCategory]) -> BoolArray:
    """Turn a sequence of norm categories into the ``is_couple`` column."""
    return np.array([c is NormCategory.COUPLE for c in categories], np.bool_).reshape(
        len(categories)
    )


def _column(values: npt.ArrayLike, n: int, name: str, low: int, high: int) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise BatchError(
            f"{name} has shape {arr.shape}", path=name, expected=f"one value per household ({n})"
        )
    if arr.dtype != np.int64:
        if not np.issubdtype(arr.dtype, np.integer) and n > 0:
            raise BatchError(
                f"{name} holds {arr.dtype} values",
                path=name,
                expected="whole numbers of euro cents (int64)",
            )
        arr = arr.astype(np.int64)
    if n and (int(arr.min()) < low or int(arr.max()) > high):
        raise BatchError(
            f"{name} has values outside {low}..{high}",
            path=name,
            expected=f"values in {low}..{high}",
        )
    return arr
