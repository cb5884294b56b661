"""One validated chunk of households: the one place that says what a valid household is.

A :class:`HouseholdChunk` is households as columns, in slot order: how many members each has,
all their BSNs one after the other, and (where a mode needs them) whether each is a couple,
the income SVB already knows and its cost-sharers. It is valid by construction: the
constructor checks every invariant and raises a :class:`HouseholdError` naming the household
slot and member position.

SVB's reader (:mod:`svb_client.households`) reports the same rules per household through
:func:`household_problems` (it rejects a household and goes on); SVB's journal stores chunks;
UWV's screening and compute-to-data services build one from what they receive, so a chunk
that passes the client passes the server and one the server refuses names the same rule.

Invariants (in the order they are checked; the first that fails is reported):

1. at least one household, and the per-household columns have one value per household;
2. every household has 1..:data:`~shared.models.MAX_HOUSEHOLD_MEMBERS` members, and the
   member counts add up to the number of BSNs;
3. every BSN passes the elfproef (:func:`shared.bsn.valid_bsn_mask`);
4. no BSN appears twice in the chunk (a person counted twice would double their income and
   their share in UWV's differencing budget);
5. a couple has at least two members;
6. the known income is 0..:data:`~shared.models.MAX_KNOWN_INCOME_CENTS` cents;
7. the cost-sharers (other adults of 27 or older sharing the home, besides the partner) are
   0..:data:`~shared.models.MAX_COST_SHARERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.bsn import valid_bsn_mask
from shared.errors import InputError
from shared.models import MAX_COST_SHARERS, MAX_HOUSEHOLD_MEMBERS, MAX_KNOWN_INCOME_CENTS

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CHECKS: Final = (
    "chunk",
    "members",
    "bsn",
    "duplicate",
    "couple",
    "known_income",
    "cost_sharers",
)
"""The names of the checks, as :attr:`HouseholdError.check` carries them."""


class HouseholdError(InputError):
    """A chunk or one of its households breaks an invariant.

    ``slot`` is the household's position in the chunk and ``member`` the member's position in
    that household (-1 where the problem is not one household's / one member's); ``check``
    is one of :data:`CHECKS`; ``reason`` is the problem without its position.
    """

    def __init__(self, reason: str, *, check: str, slot: int = -1, member: int = -1) -> None:
        where = ""
        if slot >= 0:
            where = f"household slot {slot}" + (f", member {member}" if member >= 0 else "")
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.check = check
        self.slot = slot
        self.member = member


def _readonly(array: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def household_problems(
    member_counts: npt.ArrayLike,
    member_bsns: npt.ArrayLike,
    *,
    is_couple: npt.ArrayLike | None = None,
    known_income_cents: npt.ArrayLike | None = None,
    cost_sharers: npt.ArrayLike | None = None,
) -> dict[int, HouseholdError]:
    """The first problem of every household that has one, by slot (vectorised).

    A problem of the chunk as a whole (no households, columns of different lengths, member
    counts that do not add up to the BSNs) is raised, not returned: it has no household.
    """
    counts = np.asarray(member_counts, dtype=np.int64).reshape(-1)
    bsns = np.asarray(member_bsns, dtype=np.int64).reshape(-1)
    n = len(counts)
    if n == 0:
        raise HouseholdError("no households", check="chunk")
    for name, column in (
        ("is_couple", is_couple),
        ("known_income_cents", known_income_cents),
        ("cost_sharers", cost_sharers),
    ):
        if column is not None and len(np.asarray(column).reshape(-1)) != n:
            raise HouseholdError(
                f"{n} households but {len(np.asarray(column).reshape(-1))} values of {name}",
                check="chunk",
            )
    problems: dict[int, HouseholdError] = {}

    def add(slot: int, error: HouseholdError) -> None:
        problems.setdefault(slot, error)

    bad_count = (counts < 1) | (counts > MAX_HOUSEHOLD_MEMBERS)
    for slot in np.flatnonzero(bad_count).tolist():
        c = int(counts[slot])
        if c < 1:
            text = "no members" if c == 0 else f"{c} members, expected 1..{MAX_HOUSEHOLD_MEMBERS}"
        else:
            text = f"{c} members, at most {MAX_HOUSEHOLD_MEMBERS} allowed"
        add(slot, HouseholdError(text, check="members", slot=slot))
    if (counts < 0).any():
        raise problems[min(problems)]
    if int(counts.sum()) != len(bsns):
        raise HouseholdError(
            f"member counts add up to {int(counts.sum())} but {len(bsns)} BSNs were sent",
            check="chunk",
        )
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def at(position: int) -> tuple[int, int]:
        slot = int(owner[position])
        return slot, position - int(offsets[slot])

    for position in np.flatnonzero(~valid_bsn_mask(bsns)).tolist():
        slot, member = at(position)
        text = f"{int(bsns[position]):09d} is not a valid BSN"
        add(slot, HouseholdError(text, check="bsn", slot=slot, member=member))

    order = np.argsort(bsns, kind="stable")
    repeat = np.flatnonzero(bsns[order][1:] == bsns[order][:-1])
    for first, again in zip(order[repeat].tolist(), order[repeat + 1].tolist(), strict=True):
        slot, member = at(again)
        first_slot, first_member = at(first)
        if first_slot == slot:
            text = f"the same BSN is listed twice (members {first_member} and {member})"
        else:
            text = f"BSN {int(bsns[again]):09d} is also in household slot {first_slot}"
        add(slot, HouseholdError(text, check="duplicate", slot=slot, member=member))

    if is_couple is not None:
        couple = np.asarray(is_couple, dtype=np.bool_).reshape(-1)
        for slot in np.flatnonzero(couple & (counts < 2)).tolist():
            text = "category 'couple' needs at least two members"
            add(slot, HouseholdError(text, check="couple", slot=slot))
    if known_income_cents is not None:
        known = np.asarray(known_income_cents, dtype=np.int64).reshape(-1)
        for slot in np.flatnonzero((known < 0) | (known > MAX_KNOWN_INCOME_CENTS)).tolist():
            text = f"known income {int(known[slot])} cents is outside 0..{MAX_KNOWN_INCOME_CENTS}"
            add(slot, HouseholdError(text, check="known_income", slot=slot))
    if cost_sharers is not None:
        sharers = np.asarray(cost_sharers, dtype=np.int64).reshape(-1)
        for slot in np.flatnonzero((sharers < 0) | (sharers > MAX_COST_SHARERS)).tolist():
            text = f"cost_sharers {int(sharers[slot])} is outside 0..{MAX_COST_SHARERS}"
            add(slot, HouseholdError(text, check="cost_sharers", slot=slot))
    return problems


@dataclass(frozen=True, slots=True, eq=False)
class HouseholdChunk:
    """Households as columns, in slot order; valid by construction (see the module doc).

    The arrays are read-only copies. ``is_couple``, ``known_income_cents`` and
    ``cost_sharers`` are None when a mode does not send them (the homomorphic modes send only
    members; SVB's threshold carries the rest).
    """

    member_counts: IntArray
    member_bsns: IntArray
    is_couple: BoolArray | None = None
    known_income_cents: IntArray | None = None
    cost_sharers: IntArray | None = None

    def __post_init__(self) -> None:
        counts = np.asarray(self.member_counts, dtype=np.int64).reshape(-1)
        bsns = np.asarray(self.member_bsns, dtype=np.int64).reshape(-1)
        couple = None if self.is_couple is None else np.asarray(self.is_couple, dtype=np.bool_)
        known = (
            None
            if self.known_income_cents is None
            else np.asarray(self.known_income_cents, dtype=np.int64)
        )
        sharers = (
            None if self.cost_sharers is None else np.asarray(self.cost_sharers, dtype=np.int64)
        )
        problems = household_problems(
            counts, bsns, is_couple=couple, known_income_cents=known, cost_sharers=sharers
        )
        if problems:
            raise problems[min(problems)]
        object.__setattr__(self, "member_counts", _readonly(counts))
        object.__setattr__(self, "member_bsns", _readonly(bsns))
        if couple is not None:
            object.__setattr__(self, "is_couple", _readonly(couple.reshape(-1)))
        if known is not None:
            object.__setattr__(self, "known_income_cents", _readonly(known.reshape(-1)))
        if sharers is not None:
            object.__setattr__(self, "cost_sharers", _readonly(sharers.reshape(-1)))

    def __len__(self) -> int:
        return len(self.member_counts)

    @property
    def offsets(self) -> IntArray:
        """Where each household's members start in :attr:`member_bsns`, plus the end."""
        return np.concatenate([[0], np.cumsum(self.member_counts)]).astype(np.int64)

    def members(self) -> HouseholdChunk:
        """The same households without the per-household columns (what HE modes send)."""
        if self.is_couple is None and self.known_income_cents is None and self.cost_sharers is None:
            return self
        return HouseholdChunk(self.member_counts, self.member_bsns)

    def slice(self, start: int, stop: int) -> HouseholdChunk:
        """Households ``start:stop`` as a chunk of their own."""
        offsets = self.offsets
        return HouseholdChunk(
            self.member_counts[start:stop],
            self.member_bsns[offsets[start] : offsets[stop]],
            None if self.is_couple is None else self.is_couple[start:stop],
            None if self.known_income_cents is None else self.known_income_cents[start:stop],
            None if self.cost_sharers is None else self.cost_sharers[start:stop],
        )
