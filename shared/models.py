"""Domain data shared by both sides: periods, polis records, households.

Amounts are integers in euro cents everywhere; corrections may be negative.
Every object here is valid by construction (parse, don't validate): constructors
check their invariants and raise a :class:`shared.errors.InputError` subclass
that names the field.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from shared.bsn import Bsn
from shared.errors import InputError, PeriodError

MAX_HOUSEHOLD_MEMBERS: Final = 6
"""Larger households are refused as oversized (AIO households are one to a few persons)."""

MAX_KNOWN_INCOME_CENTS: Final = 1_000_000
"""Upper bound on SVB's own monthly payment to a household (EUR 10,000): keeps every
threshold inside the public band the HE modes clamp to (see :mod:`shared.he.masked`)."""


class SourceKind(enum.StrEnum):
    """The kind of an income relation in the polisadministratie."""

    WAGE = "wage"
    BENEFIT = "benefit"
    PENSION = "pension"
    OTHER = "other"


MAX_COST_SHARERS: Final = 20
"""Upper bound on the cost-sharers of one household (art. 19a/22a Participatiewet: other adults
of 27 or older sharing the home, besides the partner); a larger count is refused as implausible
and keeps every threshold inside the range the rule checker proves."""


class NormCategory(enum.StrEnum):
    """The norm category of a household; cost-sharers are a count next to it
    (:attr:`Household.cost_sharers`)."""

    SINGLE = "single"
    COUPLE = "couple"


@dataclass(frozen=True, slots=True)
class IncomeWeights:
    """How UWV's household total ``S`` is formed from polis records: per source kind, a
    weight on the gross amount and one on the tax withheld. Net income of every kind is
    ``gross +1, tax −1`` for all kinds (:data:`NET_INCOME`)."""

    gross: tuple[tuple[SourceKind, int], ...]
    tax: tuple[tuple[SourceKind, int], ...]

    def __post_init__(self) -> None:
        for name, weights in (("gross", self.gross), ("tax", self.tax)):
            kinds = [k for k, _ in weights]
            if sorted(kinds) != sorted(SourceKind) or len(kinds) != len(SourceKind):
                raise InputError(f"{name} weights must name every source kind exactly once")
            for kind, w in weights:
                if not isinstance(w, int) or isinstance(w, bool) or not -16 <= w <= 16:
                    raise InputError(f"{name} weight of {kind.value!r} must be an integer -16..16")

    @classmethod
    def of(cls, gross: dict[SourceKind, int], tax: dict[SourceKind, int]) -> IncomeWeights:
        return cls(
            gross=tuple((k, int(gross[k])) for k in SourceKind),
            tax=tuple((k, int(tax[k])) for k in SourceKind),
        )


NET_INCOME: Final = IncomeWeights.of(dict.fromkeys(SourceKind, 1), dict.fromkeys(SourceKind, -1))
"""Gross minus tax withheld, over every kind of income: the AIO rule's income."""


_MONTH_RE: Final = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month, ``YYYY-MM``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1900 <= self.year <= 2199:
            raise PeriodError(f"year {self.year} is out of range 1900..2199")
        if not 1 <= self.month <= 12:
            raise PeriodError(f"month {self.month} is out of range 1..12")

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse ``YYYY-MM``; anything else raises :class:`PeriodError`."""
        m = _MONTH_RE.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise PeriodError(f"month {text!r} is not of the form YYYY-MM")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def index(self) -> int:
        """Months since year 0: consecutive months have consecutive indices."""
        return self.year * 12 + self.month - 1

    @classmethod
    def from_index(cls, index: int) -> Month:
        return cls(index // 12, index % 12 + 1)

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def last_day(self) -> date:
        nxt = Month.from_index(self.index + 1)
        return date.fromordinal(nxt.first_day().toordinal() - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


MAX_PERIOD_MONTHS: Final = 24


@dataclass(frozen=True, slots=True)
class Period:
    """An inclusive range of months, ``YYYY-MM..YYYY-MM``, at most two years long."""

    start: Month
    end: Month

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PeriodError(f"period ends ({self.end}) before it starts ({self.start})")
        if self.months > MAX_PERIOD_MONTHS:
            raise PeriodError(
                f"period {self} has {self.months} months, at most {MAX_PERIOD_MONTHS} are allowed"
            )

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse ``YYYY-MM..YYYY-MM`` (a single ``YYYY-MM`` means one month)."""
        if not isinstance(text, str):
            raise PeriodError(f"period must be text YYYY-MM..YYYY-MM, got {type(text).__name__}")
        parts = text.strip().split("..")
        if len(parts) == 1:
            month = Month.parse(parts[0])
            return cls(month, month)
        if len(parts) != 2:
            raise PeriodError(f"period {text!r} is not of the form YYYY-MM..YYYY-MM")
        return cls(Month.parse(parts[0]), Month.parse(parts[1]))

    @property
    def months(self) -> int:
        """Number of months ``n`` in the period (inclusive)."""
        return self.end.index - self.start.index + 1

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


@dataclass(frozen=True, slots=True)
class PolisRecord:
    """One month of one income relation of one person, as UWV holds it."""

    bsn: Bsn
    relation_id: int
    kind: SourceKind
    month: Month
    gross_cents: int
    tax_cents: int

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.tax_cents


@dataclass(frozen=True, slots=True)
class Household:
    """A household SVB screens: its members, norm category and the income SVB already knows.

    ``known_income_cents`` is SVB's own monthly payment to the household (the sum over the
    members' rows of the input file), e.g. the AOW. ``cost_sharers`` counts the other adults
    of 27 or older who share the home, besides the partner (art. 19a Participatiewet).
    """

    household_id: str
    members: tuple[Bsn, ...]
    category: NormCategory
    known_income_cents: int
    cost_sharers: int = 0

    def __post_init__(self) -> None:
        from shared.chunk import household_problems  # it imports this module's bounds

        if not self.household_id:
            raise InputError("household_id is empty")
        problems = household_problems(
            [len(self.members)],
            [Bsn(b).as_int() for b in self.members],
            is_couple=[self.category is NormCategory.COUPLE],
            known_income_cents=[self.known_income_cents],
        )
        if problems:
            raise InputError(f"household {self.household_id!r}: {problems[0].reason}")
        if not 0 <= self.cost_sharers <= MAX_COST_SHARERS:
            raise InputError(
                f"household {self.household_id!r}: cost_sharers {self.cost_sharers} is outside "
                f"0..{MAX_COST_SHARERS}"
            )
