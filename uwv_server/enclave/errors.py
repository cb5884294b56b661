"""Errors of the compute-to-data mode (UWV side), rooted in :class:`shared.errors.Error`.

Hierarchy::

    EnclaveError
    ├── SubmissionRefused   a bundle that is unsigned, wrongly signed, by a non-author, or whose
    │                       digest does not match its rule text
    ├── UnknownRule         a digest that was never submitted
    ├── ApprovalRefused     an approval that cannot be recorded (refused rule, bad signature, …)
    ├── NotRunnable         a rule that may not run now: pending, rejected, revoked, expired
    ├── BatchRefused        a run request whose batch is malformed (names the position)
    └── RunFailed           the isolated runner crashed, hit a limit, or the rule failed at run time
"""

from __future__ import annotations

from shared.errors import Error, InputError


class EnclaveError(Error):
    """Root of the compute-to-data errors on UWV's side."""


class SubmissionRefused(EnclaveError, InputError):
    """A submitted rule bundle that is not accepted for review."""


class UnknownRule(EnclaveError):
    """A rule digest that was never submitted here."""


class ApprovalRefused(EnclaveError):
    """An approval, rejection or revocation that cannot be recorded."""


class NotRunnable(EnclaveError):
    """A rule that may not run now; the message says why (pending, rejected, revoked, expired)."""


class BatchRefused(EnclaveError, InputError):
    """A run request whose batch is malformed; nothing was evaluated or charged."""


class RunFailed(EnclaveError):
    """The run did not produce a result: runner crash, resource limit, or a run-time rule error."""
