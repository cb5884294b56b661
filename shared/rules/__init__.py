"""The rule language: RegelRecht-style YAML rules, checked, digested, evaluated and compiled.

Parse → check → evaluate, one module each:

* :mod:`~shared.rules.parse` (with :mod:`~shared.rules.load` and :mod:`~shared.rules.binding`):
  YAML → frozen :class:`~shared.rules.model.Rule`;
* :mod:`~shared.rules.check`: names, types, references, cycles, value ranges → ``CheckedRule``;
* :mod:`~shared.rules.canonical`: canonical JSON and the SHA-256 identity;
* :mod:`~shared.rules.evaluate` (vectorised) and :mod:`~shared.rules.interpret` (per household);
* :mod:`~shared.rules.testcases`: runs the test cases bundled with a rule;
* :mod:`~shared.rules.verify`: UWV's and the auditor's static verifier and its report;
* :mod:`~shared.rules.he_plan`: the compiler to the homomorphic mode's plan;
* :mod:`~shared.rules.cli`: command functions the CLIs wire up.

Errors derive from :class:`~shared.rules.errors.RuleError` (see that module for the tree).
"""
