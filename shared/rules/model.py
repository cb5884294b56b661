"""The rule model: frozen pydantic objects a parsed rule document consists of.

A :class:`Rule` is the result of :mod:`shared.rules.parse`; it is structurally valid (every
operation is a supported one with the right operands) but not yet type-checked: that is
:mod:`shared.rules.check`. Expression nodes remember the path they came from in the
document (``actions[2].value.conditions[1]``) so that every later refusal can point at it;
the path is not part of the rule's identity (see :mod:`shared.rules.canonical`).
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Final, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from shared.models import SourceKind


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)


class ValueType(enum.StrEnum):
    """Declared type of an input, definition or output (RegelRecht's ``type``)."""

    BOOLEAN = "boolean"
    AMOUNT = "amount"  # euro cents, a whole number
    NUMBER = "number"  # a whole number without unit (e.g. months)
    # RegelRecht also declares text and date inputs (a BSN, a birth date). They may be declared
    # (a RegelRecht text loads unchanged) but a rule that uses one in a calculation is refused.
    STRING = "string"
    DATE = "date"


class Operation(enum.StrEnum):
    """The supported operations (RegelRecht's vocabulary); any other name is refused."""

    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT_EQUALS"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"
    ADD = "ADD"
    SUBTRACT = "SUBTRACT"
    MULTIPLY = "MULTIPLY"
    DIVIDE = "DIVIDE"
    MIN = "MIN"
    MAX = "MAX"
    IF = "IF"
    ROUND = "ROUND"  # half away from zero ("rekenkundig", RegelRecht RFC-024)
    FLOOR = "FLOOR"
    CEIL = "CEIL"


LOGICAL: Final = frozenset({Operation.AND, Operation.OR})
COMPARISONS: Final = frozenset(
    {
        Operation.EQUALS,
        Operation.NOT_EQUALS,
        Operation.GREATER_THAN,
        Operation.GREATER_THAN_OR_EQUAL,
        Operation.LESS_THAN,
        Operation.LESS_THAN_OR_EQUAL,
    }
)
ROUNDING: Final = frozenset({Operation.ROUND, Operation.FLOOR, Operation.CEIL})
ARITHMETIC: Final = frozenset(
    {
        Operation.ADD,
        Operation.SUBTRACT,
        Operation.MULTIPLY,
        Operation.DIVIDE,
        Operation.MIN,
        Operation.MAX,
    }
)


# --- expressions -------------------------------------------------------------------------


class Lit(_Frozen):
    """A literal: a whole number, a boolean or a text (RegelRecht's text literals load, but
    nothing is computed with a text)."""

    node: Literal["literal"] = "literal"
    value: bool | int | str
    path: str = Field(default="", exclude=True)


class Ref(_Frozen):
    """A reference ``$name`` to a definition, input or output."""

    node: Literal["ref"] = "ref"
    name: str
    path: str = Field(default="", exclude=True)


class Apply(_Frozen):
    """An operation on operands: ``conditions`` (AND/OR), ``values`` (arithmetic),
    ``[subject, value]`` (comparisons) or ``[value]`` (NOT, ROUND/FLOOR/CEIL, which also carry
    ``precision``: decimal places in the value's own unit, 0 = whole cents, -2 = whole euros)."""

    node: Literal["apply"] = "apply"
    op: Operation
    args: tuple[Expr, ...]
    precision: int | None = None
    path: str = Field(default="", exclude=True)


class Case(_Frozen):
    """One ``when``/``then`` case of an ``IF``."""

    when: Expr
    then: Expr


class If(_Frozen):
    """``IF`` with ``cases`` tried in order and a ``default``."""

    node: Literal["if"] = "if"
    cases: tuple[Case, ...]
    default: Expr
    path: str = Field(default="", exclude=True)


Expr = Union[Lit, Ref, Apply, If]  # noqa: UP007 - a forward-referenced recursive alias

Apply.model_rebuild()
Case.model_rebuild()
If.model_rebuild()


# --- declarations ------------------------------------------------------------------------


class LegalBasis(_Frozen):
    """Where in the law a definition or output comes from (RegelRecht's ``legal_basis``)."""

    law: str
    article: str
    bwb_id: str | None = None
    url: str | None = None
    juriconnect: str | None = None
    explanation: str | None = None

    def cite(self) -> str:
        """A short citation a lawyer recognises: ``art. 22 Participatiewet``."""
        return f"art. {self.article} {self.law}"


def half_year_end(day: date) -> date:
    """The last day of the half year ``day`` is in (30 June or 31 December).

    Norms and the other amounts of the Participatiewet are published per half year (1 January
    and 1 July); the newest published value is in force until the end of its half year and
    not beyond: after that the next publication is due, and deciding on the old value would
    be deciding on a stale norm.
    """
    return date(day.year, 6, 30) if day.month <= 6 else date(day.year, 12, 31)


class DefinitionVersion(_Frozen):
    """A value of a definition, in force from ``valid_from`` (``None``: always) on."""

    valid_from: date | None
    value: bool | int


class Definition(_Frozen):
    """A named constant (a norm, a limit), possibly with dated versions and a legal basis."""

    name: str
    versions: tuple[DefinitionVersion, ...]
    legal_basis: LegalBasis | None = None
    path: str = Field(default="", exclude=True)

    @property
    def dated(self) -> bool:
        """Whether any version has a ``valid_from`` (an undated value is always in force)."""
        return any(v.valid_from is not None for v in self.versions)

    def newest(self) -> DefinitionVersion:
        """The version with the latest ``valid_from`` (an undated one counts as earliest)."""
        return max(self.versions, key=lambda v: v.valid_from or date.min)

    def valid_until(self) -> date | None:
        """The last day any version is in force: the end of the newest version's half year
        (``None`` for an undated definition, which is always in force)."""
        newest = self.newest().valid_from
        return None if newest is None else half_year_end(newest)

    def value_on(self, on: date) -> bool | int | None:
        """The value in force on ``on``: the latest version with ``valid_from <= on``, within
        [its start, the next version's start), the newest until the end of its half year."""
        until = self.valid_until()
        if until is not None and on > until:
            return None
        best: DefinitionVersion | None = None
        for v in self.versions:
            in_force = v.valid_from is None or v.valid_from <= on
            if in_force and (
                best is None or (best.valid_from or date.min) <= (v.valid_from or date.min)
            ):
                best = v
        return None if best is None else best.value


class PolisAttribute(enum.StrEnum):
    """Income attributes of the polisadministratie a rule may ask for."""

    GROSS_INCOME = "gross_income"
    TAX_WITHHELD = "tax_withheld"
    NET_INCOME = "net_income"  # gross_income - tax_withheld


class Aggregation(enum.StrEnum):
    """What a polis input is summed over."""

    MEMBERS = "members"
    MONTHS = "months"


class PolisSource(_Frozen):
    """An input UWV computes from its polis: ``attribute`` summed over the household's members,
    the months of the period and the listed source ``kinds``."""

    source: Literal["polis"] = "polis"
    attribute: str
    kinds: tuple[SourceKind, ...]
    sum_over: tuple[Aggregation, ...]


class QueryField(enum.StrEnum):
    """Values SVB sends with the query, per household or per batch."""

    KNOWN_INCOME = "known_income"  # SVB's own monthly payment to the household, cents
    HAS_PARTNER = "has_partner"  # norm category is 'couple'
    PERIOD_MONTHS = "period_months"  # number of months in the reference period
    COST_SHARERS = "cost_sharers"  # other adults 27+ sharing the home, besides the partner


QUERY_FIELD_TYPES: Final = {
    QueryField.KNOWN_INCOME: ValueType.AMOUNT,
    QueryField.HAS_PARTNER: ValueType.BOOLEAN,
    QueryField.PERIOD_MONTHS: ValueType.NUMBER,
    QueryField.COST_SHARERS: ValueType.NUMBER,
}


class QuerySource(_Frozen):
    """An input SVB supplies with the query."""

    source: Literal["query"] = "query"
    field: QueryField


Source = Union[PolisSource, QuerySource]  # noqa: UP007


class Input(_Frozen):
    """A declared input (or RegelRecht parameter) and where its value comes from.

    ``declared_source`` keeps a foreign (RegelRecht) source description as written, for the
    report, when a binding file mapped it to ``source``.
    """

    name: str
    type: ValueType
    source: Source | None
    declared_source: str | None = None
    path: str = Field(default="", exclude=True)


class Scope(enum.StrEnum):
    """What an output is computed for."""

    HOUSEHOLD = "household"
    # Per person and month, from UWV's own per-person, per-month data and definitions only;
    # wherever a household-level expression uses it, its value is the sum over the household's
    # members and the months of the period (e.g. an exemption of art. 31 lid 2 onder n).
    PERSON_MONTH = "person_month"


class Output(_Frozen):
    """A declared output; ``returned`` marks the decision that goes back to SVB."""

    name: str
    type: ValueType
    returned: bool = False
    per: Scope = Scope.HOUSEHOLD
    inferred: bool = False
    """Not declared under ``output`` but computed by an action (RegelRecht's intermediate
    values): its type is what the action computes."""
    legal_basis: LegalBasis | None = None
    path: str = Field(default="", exclude=True)


class Action(_Frozen):
    """``output`` is computed as ``value``."""

    output: str
    value: Expr
    legal_basis: LegalBasis | None = None
    path: str = Field(default="", exclude=True)


class PolisSums(_Frozen):
    """A test household's polis sums for one source kind over the whole period."""

    gross_cents: int = 0
    tax_cents: int = 0


class PersonMonthCase(_Frozen):
    """One person's polis amounts in one month of a test case, per source kind."""

    person: int
    month: str
    polis: tuple[tuple[SourceKind, PolisSums], ...]


class TestCase(_Frozen):
    """A test case bundled with the rule: a household, a period and the expected outputs."""

    __test__ = False  # not a pytest class

    name: str
    period: str
    has_partner: bool
    known_income_cents: int
    polis: tuple[tuple[SourceKind, PolisSums], ...]
    expect: tuple[tuple[str, bool | int], ...]
    cost_sharers: int = 0
    months: tuple[PersonMonthCase, ...] = ()
    path: str = Field(default="", exclude=True)


class Rule(_Frozen):
    """A parsed rule document (with its binding applied)."""

    id: str
    name: str
    valid_from: date | None
    definitions: tuple[Definition, ...]
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    actions: tuple[Action, ...]
    tests: tuple[TestCase, ...]
    constructs: tuple[str, ...] = ()
    """RegelRecht constructs the document carries that do not change what it computes here
    (competent_authority, open_terms, implements, hooks, overrides, endpoint, enables,
    produces, untranslatables), as ``path: key`` texts, so they are part of its identity."""
    file: str = Field(default="", exclude=True)

    def definition(self, name: str) -> Definition | None:
        return next((d for d in self.definitions if d.name == name), None)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.output == name), None)
