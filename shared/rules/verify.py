"""The static verifier UWV's operator and the auditor run before a rule is approved.

:func:`verify_file` parses and checks a rule, then applies UWV's :class:`ReleasePolicy`:

* every input it reads is on the list of releasable attributes (by default: polis gross
  income, tax withheld and net income, per source kind, summed per household over the
  members and the months of the period), or a value SVB sends with the query;
* exactly one output goes back to SVB, and it is a yes/no decision; the others stay inside;
* no cycles, no unknown names (from :mod:`shared.rules.check`);
* the cost (passes over the batch) stays under a configured limit;
* every threshold is a named definition with a legal reference: numbers other than 0 and 1
  may not appear in the operations;
* the bundled test cases exist and pass.

The :class:`Report` says what the rule reads, what it decides and why anything was refused,
as text for a lawyer and as JSON for machines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.models import SourceKind
from shared.rules._common import render
from shared.rules.canonical import digest
from shared.rules.check import CheckedRule, check, walk
from shared.rules.errors import RuleError, RuleFormatError
from shared.rules.load import load_yaml, read_text
from shared.rules.model import (
    Aggregation,
    Apply,
    If,
    Input,
    Lit,
    PolisAttribute,
    PolisSource,
    QueryField,
    QuerySource,
    Ref,
    Rule,
)
from shared.rules.parse import UNTRANSLATED, parse_file
from shared.rules.testcases import run_tests


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReleasePolicy(_Frozen):
    """What UWV is willing to let a rule read, and how large a rule may be.

    Loaded from YAML with :meth:`from_file`; the defaults are UWV's standard list.
    """

    polis_attributes: frozenset[str] = frozenset(a.value for a in PolisAttribute)
    polis_kinds: frozenset[SourceKind] = frozenset(SourceKind)
    required_aggregation: frozenset[Aggregation] = frozenset(Aggregation)
    query_fields: frozenset[QueryField] = frozenset(QueryField)
    max_cost: int = Field(default=1_000, gt=0)
    allowed_literals: frozenset[int] = frozenset({0, 1})

    @classmethod
    def from_file(cls, path: str | Path) -> ReleasePolicy:
        """Read a policy file (keys as the fields of this class)."""
        data = load_yaml(read_text(path), file=str(path))
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise RuleFormatError(
                f"the release policy is not valid: {exc}", file=str(path)
            ) from None


class Finding(_Frozen):
    """A reason the rule is refused, with where it is and what would be accepted."""

    code: str
    message: str
    path: str = ""
    expected: str = ""


class InputUse(_Frozen):
    """An input the rule reads and where it comes from."""

    name: str
    source: str
    holder: str  # "UWV" or "SVB"
    path: str


class DefinitionUse(_Frozen):
    """A named value the rule uses, its versions and legal basis."""

    name: str
    versions: tuple[str, ...]
    legal_basis: str


class ThresholdInput(_Frozen):
    """An SVB-supplied value the decision depends on: SVB chooses it, so it moves the threshold."""

    name: str
    field: str
    path: str


class TestResult(_Frozen):
    """Outcome of a bundled test case."""

    __test__ = False

    name: str
    path: str
    passed: bool
    problems: tuple[str, ...]


class Report(_Frozen):
    """The verifier's report: accepted or not, and why."""

    file: str
    rule_id: str = ""
    rule_name: str = ""
    digest: str = ""
    accepted: bool
    reads: tuple[InputUse, ...] = ()
    decision: str = ""
    decision_rule: str = ""
    decision_legal_basis: str = ""
    intermediate_outputs: tuple[str, ...] = ()
    definitions: tuple[DefinitionUse, ...] = ()
    cost: int = 0
    cost_limit: int = 0
    tests: tuple[TestResult, ...] = ()
    homomorphic: str = ""
    threshold_inputs: tuple[ThresholdInput, ...] = ()
    budget_note: str = ""
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> str:
        """The report as JSON (stable key order)."""
        return json.dumps(
            self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False
        )

    def to_text(self) -> str:
        """The report as text a lawyer can read."""
        out = [f"Rule file: {self.file}"]
        if self.rule_id:
            out.append(f"Rule: {self.rule_name} ({self.rule_id})")
        if self.digest:
            out.append(f"Identity (SHA-256): {self.digest}")
        out.append("")
        out.append("VERDICT: " + ("ACCEPTED" if self.accepted else "REFUSED"))
        if self.findings:
            out.append("")
            out.append("Why it was refused:")
            for f in self.findings:
                where = f" at {f.path}" if f.path else ""
                exp = f"\n      expected: {f.expected}" if f.expected else ""
                out.append(f"  - {f.message}{where}{exp}")
        if self.reads:
            out.append("")
            out.append("What the rule reads:")
            for r in self.reads:
                out.append(f"  - {r.name}: {r.source} (held by {r.holder})")
        if self.decision:
            out.append("")
            out.append(f"What it decides (the only answer returned to SVB): {self.decision}")
            out.append(f"  = {self.decision_rule}")
            if self.decision_legal_basis:
                out.append(f"  legal basis: {self.decision_legal_basis}")
        if self.intermediate_outputs:
            out.append(
                "Intermediate results (stay inside UWV): " + ", ".join(self.intermediate_outputs)
            )
        if self.definitions:
            out.append("")
            out.append("Named values (thresholds) and their legal basis:")
            for d in self.definitions:
                out.append(f"  - {d.name} ({d.legal_basis}): " + "; ".join(d.versions))
        if self.cost_limit:
            out.append("")
            out.append(f"Cost: {self.cost} passes over the batch (limit {self.cost_limit})")
        if self.tests:
            passed = sum(t.passed for t in self.tests)
            out.append(f"Test cases: {passed} of {len(self.tests)} passed")
            for t in self.tests:
                if not t.passed:
                    out.append(f"  - FAILED {t.name!r} ({t.path}): " + "; ".join(t.problems))
        if self.homomorphic:
            out.append(f"Homomorphic mode: {self.homomorphic}")
        if self.threshold_inputs:
            out.append("")
            out.append("Values SVB supplies that move the threshold (SVB chooses them per query):")
            for moving in self.threshold_inputs:
                out.append(f"  - {moving.name}: {moving.field}")
        if self.budget_note:
            out.append(f"What the budget then bounds: {self.budget_note}")
        return "\n".join(out) + "\n"


def verify_file(
    path: str | Path, *, policy: ReleasePolicy | None = None, binding: str | Path | None = None
) -> Report:
    """Parse, check and verify a rule file; never raises for a problem in the rule."""
    file = str(path)
    try:
        rule = parse_file(path, binding=binding)
    except RuleError as exc:
        return Report(file=file, accepted=False, findings=(_finding("format", exc),))
    return verify_rule(rule, policy=policy, file=file)


def verify_rule(rule: Rule, *, policy: ReleasePolicy | None = None, file: str = "") -> Report:
    """Verify a parsed rule against a release policy (default: :class:`ReleasePolicy`)."""
    policy = policy or ReleasePolicy()
    base: dict[str, Any] = {
        "file": file or rule.file,
        "rule_id": rule.id,
        "rule_name": rule.name,
        "digest": digest(rule),
        "cost_limit": policy.max_cost,
    }
    try:
        checked = check(rule)
    except RuleError as exc:
        code = type(exc).__name__.removeprefix("Rule").removesuffix("Error").lower()
        exc.in_file(exc.file or base["file"])
        return Report(accepted=False, findings=(_finding(code, exc),), **base)
    findings: list[Finding] = []
    reads = tuple(_input_use(i) for i in rule.inputs if i.name in checked.used_inputs)
    for inp in rule.inputs:
        if inp.name in checked.used_inputs:
            findings += _policy_findings(inp, policy)
    findings += _decision_findings(checked)
    findings += _threshold_findings(checked, policy)
    for construct in rule.constructs:
        where, _, what = construct.partition(": ")
        if what.startswith(UNTRANSLATED):
            findings.append(
                Finding(
                    code="untranslatable",
                    message=f"the document says it does not implement {what[len(UNTRANSLATED) :]}",
                    path=where,
                    expected="every untranslatable construct accepted (accepted: true) or "
                    "implemented",
                )
            )
    cost = cost_of(checked)
    if cost > policy.max_cost:
        findings.append(
            Finding(
                code="cost",
                message=f"the rule costs {cost} passes over the batch",
                expected=f"at most {policy.max_cost}",
            )
        )
    tests = tuple(
        TestResult(name=t.name, path=t.path, passed=t.passed, problems=t.problems)
        for t in run_tests(checked)
    )
    if not tests:
        findings.append(
            Finding(
                code="tests",
                message="the rule has no test cases",
                expected="at least one test case under tests",
            )
        )
    for t in tests:
        if not t.passed:
            findings.append(
                Finding(
                    code="tests",
                    message=f"test case {t.name!r} fails: " + "; ".join(t.problems),
                    path=t.path,
                    expected="every bundled test case passes",
                )
            )
    decision = checked.decision or ""
    out = rule.output(decision) if decision else None
    act = rule.action(decision) if decision else None
    basis = (out.legal_basis if out else None) or (act.legal_basis if act else None)
    from shared.rules.he_plan import he_status  # here: he_plan uses this module's neighbours

    return Report(
        accepted=not findings,
        reads=reads,
        decision=decision,
        decision_rule=render(act.value) if act else "",
        decision_legal_basis=basis.cite() if basis else "",
        intermediate_outputs=tuple(o.name for o in rule.outputs if not o.returned),
        definitions=tuple(
            DefinitionUse(
                name=d.name,
                versions=tuple(
                    f"{v.value} from {v.valid_from}" if v.valid_from else f"{v.value} (no date)"
                    for v in d.versions
                ),
                legal_basis=d.legal_basis.cite() if d.legal_basis else "none",
            )
            for d in rule.definitions
            if d.name in checked.used_definitions
        ),
        cost=cost,
        tests=tests,
        homomorphic=he_status(checked),
        threshold_inputs=(moving := threshold_inputs(checked)),
        budget_note=_budget_note(moving),
        findings=tuple(findings),
        **base,
    )


def threshold_inputs(checked: CheckedRule) -> tuple[ThresholdInput, ...]:
    """The SVB-supplied inputs the decision depends on (through any chain of actions)."""
    decision = checked.decision
    if not decision:
        return ()
    rule = checked.rule
    seen: set[str] = set()
    stack = [decision]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        act = rule.action(name)
        if act is not None:
            stack.extend(n.name for n in walk(act.value) if isinstance(n, Ref))
    out = []
    for inp in rule.inputs:
        if inp.name in seen and isinstance(inp.source, QuerySource):
            out.append(ThresholdInput(name=inp.name, field=inp.source.field.value, path=inp.path))
    return tuple(out)


def _budget_note(moving: tuple[ThresholdInput, ...]) -> str:
    if not moving:
        return (
            "the threshold is fixed by the rule's named values; each evaluation still answers "
            "one bit, and the per-BSN yearly budget bounds how many a person is in"
        )
    names = ", ".join(t.name for t in moving)
    return (
        f"SVB can move the threshold per household with {names} (e.g. sweep its known income "
        "to binary-search a person's income). The rule cannot stop that; UWV's per-BSN budget "
        "does: every answer is one bit (compute-to-data and strict) and a person is answered at "
        "most once per batch and the budget's number of times per calendar year, so a search "
        "learns at most that many bits about one person a year (masked mode: measured, "
        "`python -m shared.he.leakage --bound-only`)"
    )


def cost_of(checked: CheckedRule) -> int:
    """Passes over the batch: one per operation node, two per source kind of a polis input."""
    cost = 0
    for act in checked.rule.actions:
        cost += sum(1 for n in walk(act.value) if isinstance(n, Apply | If))
    for name in checked.used_inputs:
        inp = checked.rule.input(name)
        if inp is not None and isinstance(inp.source, PolisSource):
            cost += 2 * len(inp.source.kinds)
    return cost


def _finding(code: str, exc: RuleError) -> Finding:
    where = ":".join(p for p in (exc.file, exc.path) if p)
    return Finding(code=code, message=exc.message, path=where, expected=exc.expected)


def _input_use(inp: Input) -> InputUse:
    src = inp.source
    if isinstance(src, QuerySource):
        text = {
            QueryField.KNOWN_INCOME: "the income SVB already pays the household, per month",
            QueryField.HAS_PARTNER: "whether the household is a couple (SVB)",
            QueryField.PERIOD_MONTHS: "the number of months in the period",
            QueryField.COST_SHARERS: "the number of cost-sharers in the home (SVB)",
        }[src.field]
        return InputUse(name=inp.name, source=text, holder="SVB", path=inp.path)
    assert isinstance(src, PolisSource)
    text = f"polis {src.attribute} from {', '.join(k.value for k in src.kinds)}, " + (
        f"summed over {' and '.join(a.value for a in src.sum_over)}"
        if src.sum_over
        else "per person and month (only inside outputs per: person_month, summed per "
        "household before use)"
    )
    if inp.declared_source:
        text += f" (declared in the rule as {inp.declared_source}, mapped by the binding)"
    return InputUse(name=inp.name, source=text, holder="UWV", path=inp.path)


def _policy_findings(inp: Input, policy: ReleasePolicy) -> list[Finding]:
    src = inp.source
    found: list[Finding] = []
    if isinstance(src, QuerySource):
        if src.field not in policy.query_fields:
            found.append(
                Finding(
                    code="input",
                    path=inp.path,
                    message=f"input {inp.name!r} uses SVB value {src.field.value!r}, "
                    "which the policy does not allow",
                    expected="one of " + ", ".join(sorted(policy.query_fields)),
                )
            )
        return found
    assert isinstance(src, PolisSource)
    if src.attribute not in policy.polis_attributes:
        found.append(
            Finding(
                code="input",
                path=inp.path,
                message=f"input {inp.name!r} reads polis attribute {src.attribute!r}, "
                "which is not on UWV's list of releasable attributes",
                expected="one of " + ", ".join(sorted(policy.polis_attributes)),
            )
        )
    bad_kinds = sorted(set(src.kinds) - policy.polis_kinds)
    if bad_kinds:
        found.append(
            Finding(
                code="input",
                path=inp.path,
                message=f"input {inp.name!r} reads source kinds {bad_kinds}: not releasable",
                expected="kinds among " + ", ".join(sorted(policy.polis_kinds)),
            )
        )
    missing = sorted(policy.required_aggregation - set(src.sum_over))
    # A per-person, per-month input (sum_over: []) is confined by the checker to outputs with
    # per: person_month, whose values UWV sums over members and months before anything else
    # uses them: what leaves the per-person computation is still a household total.
    if missing and src.sum_over:
        found.append(
            Finding(
                code="input",
                path=inp.path,
                message=f"input {inp.name!r} is not summed over {' and '.join(missing)}: "
                "per-person or per-month income is not releasable",
                expected="sum_over: [" + ", ".join(sorted(policy.required_aggregation)) + "]",
            )
        )
    return found


def _decision_findings(checked: CheckedRule) -> list[Finding]:
    returned = [o for o in checked.rule.outputs if o.returned]
    if not returned:
        return [
            Finding(
                code="decision",
                message="no output is marked as the decision returned to SVB",
                expected="exactly one boolean output with 'returned: true' (or 'decision:' "
                "in the binding)",
            )
        ]
    if len(returned) > 1:
        return [
            Finding(
                code="decision",
                path=returned[1].path,
                message="more than one output would be returned to SVB: "
                + ", ".join(o.name for o in returned),
                expected="exactly one boolean output returned; the others stay inside",
            )
        ]
    if returned[0].type.value != "boolean":
        return [
            Finding(
                code="decision",
                path=returned[0].path,
                message=f"the returned output {returned[0].name!r} is {returned[0].type.value}, "
                "so it would reveal more than yes/no",
                expected="type: boolean",
            )
        ]
    return []


def _threshold_findings(checked: CheckedRule, policy: ReleasePolicy) -> list[Finding]:
    found: list[Finding] = []
    for act in checked.rule.actions:
        for node in walk(act.value):
            if (
                isinstance(node, Lit)
                and not isinstance(node.value, bool)
                and node.value not in policy.allowed_literals
            ):
                found.append(
                    Finding(
                        code="threshold",
                        path=node.path,
                        message=f"the number {node.value} is written directly in the rule",
                        expected="a named definition with a legal_basis (only "
                        + ", ".join(str(v) for v in sorted(policy.allowed_literals))
                        + " may be written directly)",
                    )
                )
    for name in checked.used_definitions:
        d = checked.rule.definition(name)
        if d is not None and d.legal_basis is None:
            found.append(
                Finding(
                    code="threshold",
                    path=d.path,
                    message=f"definition {name!r} has no legal basis",
                    expected="legal_basis: {law: ..., article: ...}",
                )
            )
    return found


def dump_policy(policy: ReleasePolicy) -> str:
    """The policy as YAML (to start a configuration file from the defaults)."""
    data = json.loads(policy.model_dump_json())
    return yaml.safe_dump({k: sorted(v) if isinstance(v, list) else v for k, v in data.items()})
