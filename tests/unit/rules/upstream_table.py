"""What this rule language does with real RegelRecht documents (tests/data/regelrecht): does
it load, does it run here, is it a screening rule, and if not, why. Used by the test and to
write the table in docs/rules.md (``python tests/unit/rules/upstream_table.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.models import Period
from shared.rules import Batch, RuleError, check, evaluate, parse_file, verify_rule

DATA = Path(__file__).resolve().parents[2] / "data" / "regelrecht"
BINDINGS = {"wet__test_untranslatables__2025-01-01.yaml": "test_untranslatables.binding.yaml"}


@dataclass(frozen=True)
class Outcome:
    file: str
    loads: bool
    runs: bool
    screening_rule: bool
    reason: str


def outcome(name: str) -> Outcome:
    binding = DATA / BINDINGS[name] if name in BINDINGS else None
    try:
        rule = parse_file(DATA / name, binding=binding)
    except RuleError as exc:
        return Outcome(name, False, False, False, exc.diagnostics().split(": ", 1)[-1])
    try:
        checked = check(rule)
        start = rule.valid_from.isoformat()[:7] if rule.valid_from else "2025-01"
        evaluate(checked, Batch.from_households(Period.parse(start), []))
    except RuleError as exc:
        return Outcome(name, True, False, False, exc.diagnostics().split(": ", 1)[-1])
    report = verify_rule(rule)
    reason = report.findings[0].message if report.findings else ""
    return Outcome(name, True, True, report.accepted, reason)


def table() -> str:
    rows = ["| document | loads | runs here | screening rule | why not |", "|---|---|---|---|---|"]
    for path in sorted(DATA.glob("*.yaml")):
        if path.name.endswith(".binding.yaml"):
            continue
        o = outcome(path.name)
        yes = {True: "yes", False: "no"}
        run = yes[o.runs] + (" (with binding)" if path.name in BINDINGS and o.runs else "")
        rows.append(
            f"| `{o.file}` | {yes[o.loads]} | {run} | {yes[o.screening_rule]} | "
            f"{o.reason.replace('|', '/')} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
