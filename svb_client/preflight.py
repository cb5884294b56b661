"""Everything about a screening's inputs that can be checked before anything is created or sent.

``svb-client screen`` calls :func:`check_inputs` before it creates or opens a key, a journal or
a connection: a rule that does not load, a period for which the rule has no published norm in
force (e.g. a period in 2027 with the 2026 norms), a rule outside the homomorphic subset (HE
modes) or a households file that cannot be read to its end (or lacks a column) is refused with
its message, and nothing is left behind.
"""

from __future__ import annotations

from pathlib import Path

from shared.models import Period
from shared.rules import check, compile_he, parse_file
from shared.rules.validity import check_period
from svb_client.households import check_readable


def check_inputs(rule: Path, period: Period, households: Path | None, *, mode: str) -> None:
    """Raise a :class:`shared.errors.Error` naming the first input that cannot be screened.

    ``households`` None: the file is not read again (a run that reads UWV's sealed response
    resumes the plan its journal holds, validated when the request was written; the journal
    refuses any other file by its SHA-256), so opening a response does not hold the batch."""
    checked = check(parse_file(rule))
    check_period(checked, period)
    if mode != "enclave":
        compile_he(checked)
    if households is not None:
        check_readable(households)  # one pass in parts; the batch validates it again
