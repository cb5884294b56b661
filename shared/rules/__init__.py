"""The rule language: RegelRecht-style YAML rules, checked, digested, evaluated and compiled.

Parse → check → evaluate, one module each:

* :mod:`~shared.rules.parse`: YAML → frozen :class:`~shared.rules.model.Rule`, with
  :mod:`~shared.rules.load` (safe YAML with limits), :mod:`~shared.rules.expressions`
  (operation trees), :mod:`~shared.rules.sources` (input sources) and
  :mod:`~shared.rules.binding` (RegelRecht bindings);
* :mod:`~shared.rules.check`: names, types, references, cycles, value ranges → ``CheckedRule``;
* :mod:`~shared.rules.canonical`: canonical JSON and the SHA-256 identity;
* :mod:`~shared.rules.evaluate` (vectorised) and :mod:`~shared.rules.interpret` (per household);
* :mod:`~shared.rules.testcases`: parses and runs the test cases bundled with a rule;
* :mod:`~shared.rules.verify`: UWV's and the auditor's static verifier and its report;
* :mod:`~shared.rules.he_plan`: the compiler to the homomorphic mode's plan;
* :mod:`~shared.rules.cli`: command functions the CLIs wire up.

Errors derive from :class:`~shared.rules.errors.RuleError` (see that module for the tree).
"""

from shared.rules.batch import Batch, BatchError, HouseholdFacts, category_is_couple
from shared.rules.canonical import canonical_json, digest
from shared.rules.check import CheckedRule, check
from shared.rules.errors import (
    NoNormInForce,
    NotHeCompilable,
    RuleError,
    RuleEvaluationError,
    RuleFormatError,
    RuleReferenceError,
    RuleTypeError,
)
from shared.rules.evaluate import Result, Trace, TraceEntry, evaluate
from shared.rules.he_plan import HePlan, compile_he
from shared.rules.interpret import interpret
from shared.rules.model import Rule
from shared.rules.parse import parse_file, parse_text
from shared.rules.testcases import run_tests
from shared.rules.verify import ReleasePolicy, Report, verify_file, verify_rule

__all__ = [
    "Batch",
    "BatchError",
    "CheckedRule",
    "HePlan",
    "HouseholdFacts",
    "NoNormInForce",
    "NotHeCompilable",
    "ReleasePolicy",
    "Report",
    "Result",
    "Rule",
    "RuleError",
    "RuleEvaluationError",
    "RuleFormatError",
    "RuleReferenceError",
    "RuleTypeError",
    "Trace",
    "TraceEntry",
    "canonical_json",
    "category_is_couple",
    "check",
    "compile_he",
    "digest",
    "evaluate",
    "interpret",
    "parse_file",
    "parse_text",
    "run_tests",
    "verify_file",
    "verify_rule",
]
