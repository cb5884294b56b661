"""What UWV computes in the homomorphic modes: the income definition of a rule UWV approved.

SVB names a rule digest in the batch header; UWV looks it up in its compute-to-data register
(:class:`uwv_server.enclave.approvals.RuleRegister`), requires it to be approved and in force,
and compiles the rule's HE plan itself (:func:`shared.rules.compile_he`). The household total
``S`` is then formed from UWV's data the way *that* rule says. SVB never sends weights: the
former ``income_weights`` header field is gone from the contract (field number reserved), and
a header that still carries it is refused. An unknown or unapproved digest is refused before
anything is charged.

:class:`PinnedRules` (rule files UWV configures itself) serves tests and benchmarks that run
without a register; ``uwv-server serve`` always uses the register.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shared.errors import Error, InputError
from shared.models import IncomeWeights, Period
from shared.rules import HePlan, RuleError, check, compile_he, digest, parse_file, parse_text
from uwv_server.store import Snapshot

IntArray = npt.NDArray[np.int64]


class RuleNotApproved(InputError):
    """A batch names a rule digest UWV has not approved (or that cannot run homomorphically)."""


@dataclass(frozen=True)
class IncomeDefinition:
    """The part of an approved rule's HE plan that UWV executes on its own data."""

    rule_digest: str
    plan: HePlan

    @property
    def weights(self) -> IncomeWeights:
        return IncomeWeights.of(dict(self.plan.gross_weight), dict(self.plan.tax_weight))

    def household_totals(
        self, snapshot: Snapshot, period: Period, member_bsns: IntArray, member_counts: IntArray
    ) -> IntArray:
        """UWV's household totals ``S`` over ``period`` as the rule defines them, including its
        per-person, per-month terms (e.g. the work-income exemption), computed by UWV."""
        return snapshot.household_totals(
            period, member_bsns, member_counts, self.weights, person_terms=self.plan
        )


def compile_definition(rule_yaml: str, expected_digest: str) -> IncomeDefinition:
    """Compile an approved rule's text; refuse it if it is not the digest asked for."""
    try:
        rule = parse_text(rule_yaml, file="approved-rule")
        actual = digest(rule)
        plan = compile_he(check(rule))
    except RuleError as exc:
        raise RuleNotApproved(
            f"rule {expected_digest[:16]}… is approved but cannot run homomorphically: "
            f"{exc.diagnostics()}"
        ) from None
    if actual != expected_digest:
        raise RuleNotApproved(f"the register's text of {expected_digest[:16]}… has digest {actual}")
    return IncomeDefinition(actual, plan)


class ApprovedRules(Protocol):
    """Where the HE modes get their income definition from."""

    def definition(self, rule_digest: str) -> IncomeDefinition:
        """The definition of an approved rule; :class:`RuleNotApproved` otherwise."""
        ...


class RegisterRules:
    """Approved rules from the compute-to-data register (approval checked at every batch)."""

    def __init__(
        self, runnable: Callable[[str, datetime], tuple[str, str]], clock: Callable[[], datetime]
    ) -> None:
        self._runnable = runnable
        self._clock = clock
        self._compiled: dict[str, IncomeDefinition] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, register: object, clock: Callable[[], datetime]) -> RegisterRules:
        """From a :class:`~uwv_server.enclave.approvals.RuleRegister`."""
        from uwv_server.enclave.approvals import RuleRegister

        assert isinstance(register, RuleRegister)

        def runnable(d: str, now: datetime) -> tuple[str, str]:
            rule = register.runnable(d, now)
            return rule.digest, rule.rule_yaml

        return cls(runnable, clock)

    def definition(self, rule_digest: str) -> IncomeDefinition:
        try:
            d, text = self._runnable(rule_digest, self._clock())
        except Error as exc:
            raise RuleNotApproved(
                f"rule {rule_digest[:16]}… may not be computed here: {exc.diagnostics()}"
            ) from None
        with self._lock:
            found = self._compiled.get(d)
        if found is None:
            found = compile_definition(text, d)
            with self._lock:
                self._compiled[d] = found
        return found


class PinnedRules:
    """A fixed set of rule files UWV chose itself (tests, benchmarks)."""

    def __init__(self, definitions: Iterable[IncomeDefinition]) -> None:
        self._by_digest = {d.rule_digest: d for d in definitions}

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> PinnedRules:
        out = []
        for path in paths:
            text = path.read_text()
            out.append(compile_definition(text, digest(parse_file(path))))
        return cls(out)

    def definition(self, rule_digest: str) -> IncomeDefinition:
        found = self._by_digest.get(rule_digest)
        if found is None:
            raise RuleNotApproved(f"rule {rule_digest[:16]}… is not one this server computes")
        return found


class NoRules:
    """No register configured: every HE batch is refused, with what to do about it."""

    def definition(self, rule_digest: str) -> IncomeDefinition:
        raise RuleNotApproved(
            "this server has no rule register, so it computes no rule in the homomorphic modes; "
            "start it with --enclave-state, --registry and --runner-key and approve the rule there"
        )
