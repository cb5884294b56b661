"""What every console script does the same way: run one command, turn errors into messages.

A domain error or an OS error ends the command with a one-line message on stderr and exit
code 2, never a traceback; Ctrl-C ends it with 130 and the command's own hint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.errors import Error


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    interrupted_hint: str = "interrupted",
) -> int:
    """Parse ``argv`` and call the chosen subcommand's ``func(args) -> int``."""
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except Error as exc:
        print(f"{parser.prog}: {exc.diagnostics()}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: {interrupted_hint}", file=sys.stderr)
        return 130
