"""Command functions for the CLIs: ``svb-client rules check|digest FILE`` and
``uwv-server rules verify FILE``. Each prints a report and returns an exit code; none raises
or prints a traceback for a problem in the rule.

Exit codes: 0 accepted / done, 1 the rule was refused (report says why), 2 the file could not
be read or parsed at all.
"""

from __future__ import annotations

from typing import TextIO

from shared.errors import Error
from shared.rules.canonical import digest
from shared.rules.check import check
from shared.rules.errors import RuleError
from shared.rules.parse import parse_file
from shared.rules.testcases import run_tests
from shared.rules.verify import ReleasePolicy, verify_file

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNREADABLE = 2


def check_command(path: str, out: TextIO, *, binding: str | None = None) -> int:
    """SVB's analyst: parse and type-check a rule and run its bundled test cases."""
    try:
        checked = check(parse_file(path, binding=binding))
    except RuleError as exc:
        out.write(f"REFUSED {exc.in_file(exc.file or path).diagnostics()}\n")
        return EXIT_UNREADABLE
    except Error as exc:
        out.write(f"REFUSED {exc.diagnostics()}\n")
        return EXIT_UNREADABLE
    outcomes = run_tests(checked)
    failed = [t for t in outcomes if not t.passed]
    for t in failed:
        out.write(f"FAILED test {t.name!r} ({path}:{t.path}): " + "; ".join(t.problems) + "\n")
    out.write(
        f"{path}: rule {checked.rule.id!r}, {len(outcomes) - len(failed)} of {len(outcomes)} "
        f"test cases passed\n"
    )
    out.write(f"digest {digest(checked.rule)}\n")
    return EXIT_REFUSED if failed or not outcomes else EXIT_OK


def digest_command(path: str, out: TextIO, *, binding: str | None = None) -> int:
    """Print the rule's identity (SHA-256 of its canonical form) — what gets signed and approved."""
    try:
        rule = parse_file(path, binding=binding)
    except Error as exc:
        out.write(f"REFUSED {exc.diagnostics()}\n")
        return EXIT_UNREADABLE
    out.write(f"{digest(rule)}  {path}\n")
    return EXIT_OK


def verify_command(
    path: str,
    out: TextIO,
    *,
    json_output: bool = False,
    binding: str | None = None,
    policy: str | None = None,
) -> int:
    """UWV's operator and the auditor: the full static verification, as text or JSON."""
    try:
        release = ReleasePolicy.from_file(policy) if policy is not None else ReleasePolicy()
        report = verify_file(path, policy=release, binding=binding)
    except Error as exc:
        out.write(f"REFUSED {exc.diagnostics()}\n")
        return EXIT_UNREADABLE
    out.write(report.to_json() + "\n" if json_output else report.to_text())
    if report.accepted:
        return EXIT_OK
    return EXIT_UNREADABLE if not report.digest else EXIT_REFUSED
