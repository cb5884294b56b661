"""Accepted households as columns: a whole file's (small files, tests, the oracle) or one part
of a file validated out of core (:func:`svb_client.households.validate_households`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.bsn import Bsn
from shared.chunk import HouseholdChunk
from shared.models import Household, NormCategory

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HouseholdBatch:
    """Accepted households in file order, as columns, plus the rejected ones with reasons
    (:func:`~svb_client.households.read_households`; a part of a validated file carries no
    rejections: those come after the last part)."""

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

    def _offsets(self) -> IntArray:
        return np.concatenate([[0], np.cumsum(self.member_counts)]).astype(np.int64)

    def chunk(self, start: int, stop: int, *, attributes: bool = False) -> HouseholdChunk:
        """Households ``start:stop`` as a validated chunk; ``attributes`` adds whether each
        is a couple, its known income and its cost-sharers (what the compute-to-data mode
        sends)."""
        offsets = self._offsets()
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

    def slice(self, start: int, stop: int, offsets: IntArray | None = None) -> HouseholdBatch:
        """Households ``start:stop`` as a batch of their own (no rejections); ``offsets``:
        where each household's members start (computed if not given)."""
        offsets = self._offsets() if offsets is None else offsets
        return HouseholdBatch(
            household_ids=self.household_ids[start:stop],
            categories=self.categories[start:stop],
            known_income_cents=self.known_income_cents[start:stop],
            member_counts=self.member_counts[start:stop],
            member_bsns=self.member_bsns[offsets[start] : offsets[stop]],
            rejected=[],
            rows=int(offsets[stop] - offsets[start]),
            cost_sharers=self.sharers[start:stop],
        )

    def split(self, size: int, *, keep_rest: bool = False) -> list[HouseholdBatch]:
        """The households as batches of ``size`` in order; the last one smaller, or with
        ``keep_rest`` always present (possibly empty) as the remainder."""
        offsets = self._offsets()
        n = len(self)
        whole = n - n % size if keep_rest else n
        parts = [self.slice(i, min(i + size, n), offsets) for i in range(0, whole, size)]
        if keep_rest:
            parts.append(self.slice(whole, n, offsets))
        return parts

    @staticmethod
    def concat(
        parts: Sequence[HouseholdBatch],
        *,
        rejected: list[tuple[str, str]] | None = None,
        rows: int | None = None,
    ) -> HouseholdBatch:
        """The households of ``parts`` in order, as one batch."""

        def ints(arrays: list[IntArray]) -> IntArray:
            return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)

        return HouseholdBatch(
            household_ids=[h for p in parts for h in p.household_ids],
            categories=[c for p in parts for c in p.categories],
            known_income_cents=ints([p.known_income_cents for p in parts]),
            member_counts=ints([p.member_counts for p in parts]),
            member_bsns=ints([p.member_bsns for p in parts]),
            rejected=list(rejected or []),
            rows=sum(p.rows for p in parts) if rows is None else rows,
            cost_sharers=ints([p.sharers for p in parts]),
        )

    @property
    def households(self) -> list[Household]:
        """The accepted households as objects (for tests and the oracle; costs memory)."""
        offsets = self._offsets()
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
