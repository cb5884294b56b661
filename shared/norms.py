"""The AIO norm table, kept as data (``shared/data/aio_norms.json``) with its legal source.

A norm is in force from its ``valid_from`` date until the next one for the same category;
the newest until the end of its half year (norms are published per 1 January and 1 July).
A date after that is refused with :class:`NormError` naming the newest norm and its date:
nothing is ever decided on a stale norm. The shipped rule (``shared/rules/data/aio.yaml``)
carries the same amounts as definitions; a test keeps the two equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources

from shared.errors import NormError
from shared.models import NormCategory


def half_year_end(day: date) -> date:
    """30 June or 31 December of the half year ``day`` is in."""
    return date(day.year, 6, 30) if day.month <= 6 else date(day.year, 12, 31)


@dataclass(frozen=True, slots=True)
class Norm:
    category: NormCategory
    valid_from: date
    amount_cents: int
    source: str


@dataclass(frozen=True, slots=True)
class NormTable:
    """Norms per category, each valid from a date until superseded (the newest until the end
    of its half year)."""

    norms: tuple[Norm, ...]
    legal_basis: str

    def newest(self, category: NormCategory) -> Norm:
        """The most recent norm of ``category``; :class:`NormError` if there is none."""
        of = [n for n in self.norms if n.category is category]
        if not of:
            raise NormError(f"the norm table has no norm for category {category.value!r}")
        return max(of, key=lambda n: n.valid_from)

    def valid_until(self, category: NormCategory) -> date:
        """The last day a norm of ``category`` is in force."""
        return half_year_end(self.newest(category).valid_from)

    def in_force(self, category: NormCategory, on: date) -> Norm:
        """The norm for ``category`` in force on ``on``; :class:`NormError` if none is."""
        newest = self.newest(category)
        until = half_year_end(newest.valid_from)
        if on > until:
            raise NormError(
                f"no published AIO norm for category {category.value!r} is in force on {on}: the "
                f"newest is {newest.amount_cents} cents from {newest.valid_from} ({newest.source}),"
                f" in force until {until}"
            )
        candidates = [n for n in self.norms if n.category is category and n.valid_from <= on]
        if not candidates:
            first = min(n.valid_from for n in self.norms if n.category is category)
            raise NormError(
                f"no AIO norm for category {category.value!r} is in force on {on}: the first "
                f"starts {first}"
            )
        return max(candidates, key=lambda n: n.valid_from)


def load_norm_table(text: str | None = None) -> NormTable:
    """Parse a norm table (the shipped one when ``text`` is None)."""
    if text is None:
        text = resources.files("shared.data").joinpath("aio_norms.json").read_text()
    try:
        raw = json.loads(text)
        norms = tuple(
            Norm(
                category=NormCategory(item["category"]),
                valid_from=date.fromisoformat(item["valid_from"]),
                amount_cents=int(item["amount_cents"]),
                source=str(item["source"]),
            )
            for item in raw["norms"]
        )
        return NormTable(norms=norms, legal_basis=str(raw["legal_basis"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise NormError(f"norm table is malformed: {exc}") from None
