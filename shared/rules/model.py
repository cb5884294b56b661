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
    """A literal: a whole number or a boolean."""

    node: Literal["literal"] = "literal"
    value: bool | int
    path: str = Field(default="", exclude=True)


class Ref(_Frozen):
    """A reference ``$name`` to a definition, input or output."""

    node: Literal["ref"] = "ref"
    name: str
    path: str = Field(default="", exclude=True)


class Apply(_Frozen):
    """An operation on operands: ``conditions`` (AND/OR), ``values`` (arithmetic),
    ``[subject, value]`` (comparisons) or ``[value]`` (NOT)."""

    node: Literal["apply"] = "apply"
    op: Operation
    args: tuple[Expr, ...]
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

    def value_on(self, on: date) -> bool | int | None:
        """The value in force on ``on``: the latest version with ``valid_from <= on``."""
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


QUERY_FIELD_TYPES: Final = {
    QueryField.KNOWN_INCOME: ValueType.AMOUNT,
    QueryField.HAS_PARTNER: ValueType.BOOLEAN,
    QueryField.PERIOD_MONTHS: ValueType.NUMBER,
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


class Output(_Frozen):
    """A declared output; ``returned`` marks the decision that goes back to SVB."""

    name: str
    type: ValueType
    returned: bool = False
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


class TestCase(_Frozen):
    """A test case bundled with the rule: a household, a period and the expected outputs."""

    __test__ = False  # not a pytest class

    name: str
    period: str
    has_partner: bool
    known_income_cents: int
    polis: tuple[tuple[SourceKind, PolisSums], ...]
    expect: tuple[tuple[str, bool | int], ...]
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
    file: str = Field(default="", exclude=True)

    def definition(self, name: str) -> Definition | None:
        return next((d for d in self.definitions if d.name == name), None)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.output == name), None)
