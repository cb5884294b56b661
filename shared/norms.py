"""The AIO norm table, kept as data (``shared/data/aio_norms.json``) with its legal source.

A norm is in force from its ``valid_from`` date until the next one for the same category.
The table ends with the 1 January 2025 figures: a period ending after them uses those until
the 1 July 2025 figures are added to the data file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources

from shared.errors import NormError
from shared.models import NormCategory


@dataclass(frozen=True, slots=True)
class Norm:
    category: NormCategory
    valid_from: date
    amount_cents: int
    source: str


@dataclass(frozen=True, slots=True)
class NormTable:
    """Norms per category, each valid from a date until superseded."""

    norms: tuple[Norm, ...]
    legal_basis: str

    def in_force(self, category: NormCategory, on: date) -> Norm:
        """The norm for ``category`` in force on ``on``; :class:`NormError` if none is."""
        candidates = [n for n in self.norms if n.category is category and n.valid_from <= on]
        if not candidates:
            raise NormError(f"no AIO norm for category {category.value!r} is in force on {on}")
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
