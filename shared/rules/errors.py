"""Errors of the rule language: each refusal names the file, the path in it and the expected form.

Hierarchy (all derive from :class:`shared.errors.InputError` via :class:`RuleError`)::

    RuleError                  root of this package; carries file, path and expected form
    ├── RuleFormatError        malformed YAML, wrong structure, unknown operation, too big/deep
    ├── RuleTypeError          an operation applied to values of the wrong type
    ├── RuleReferenceError     a name that is not defined, or outputs that depend on each other
    ├── RuleEvaluationError    a failure while running: division by zero, no definition in force
    │   └── NoNormInForce      no norm in force for a category and date (also a NormError)
    └── NotHeCompilable        the rule is outside the homomorphic subset (with the reason)

The verifier does not raise for findings about an otherwise well-formed rule; it returns a
report (see :mod:`shared.rules.verify`).
"""

from __future__ import annotations

from shared.errors import InputError, NormError


class RuleError(InputError):
    """A rule document (or its binding, or its use) that cannot be accepted.

    ``file`` is the document the problem is in (may be empty for rules built in memory),
    ``path`` the place inside it in the notation ``actions[2].value.conditions[1]``,
    ``expected`` what would have been accepted there.
    """

    def __init__(self, message: str, *, path: str = "", expected: str = "", file: str = "") -> None:
        self.message = message
        self.path = path
        self.expected = expected
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        where = ":".join(p for p in (self.file, self.path) if p)
        text = f"{where}: {self.message}" if where else self.message
        if self.expected:
            text += f" (expected: {self.expected})"
        return text

    def in_file(self, file: str) -> RuleError:
        """Attach the file name (used by loaders that learn it after the fact)."""
        self.file = file
        self.args = (self._render(),)
        return self

    def diagnostics(self) -> str:
        return self._render()


class RuleFormatError(RuleError):
    """The document does not have the structure of a rule document."""


class RuleTypeError(RuleError):
    """An operation is applied to a value of the wrong type (e.g. adding a boolean to an amount)."""


class RuleReferenceError(RuleError):
    """A ``$name`` that is not defined, or outputs that depend on each other in a cycle."""


class RuleEvaluationError(RuleError):
    """The rule could not be evaluated on the given data (division by zero, no value in force)."""


class NoNormInForce(RuleEvaluationError, NormError):
    """No norm (definition version) is in force at the asked date."""


class NotHeCompilable(RuleError):
    """The rule is outside the homomorphic subset; the message gives the reason."""
