"""Reading a rule or binding file safely: size, nesting and node limits, ``yaml.safe_load`` only.

Nothing in a rule document is ever executed: YAML tags that construct Python objects are
refused by the safe loader, and aliases cannot blow up the document because every node
is counted (an alias is counted again each time it is used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from shared.rules.errors import RuleFormatError

MAX_DOCUMENT_BYTES: Final = 1_000_000
"""A rule document is a few kilobytes; one megabyte is far beyond any honest rule."""

MAX_NESTING: Final = 64
"""Maximum YAML nesting depth (mappings and lists inside each other)."""

MAX_NODES: Final = 50_000
"""Maximum number of YAML nodes, counting every use of an alias."""


def read_text(path: str | Path) -> str:
    """Read a file as UTF-8 text, refusing oversized or unreadable files with a clear message."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise RuleFormatError(f"cannot read the file: {exc.strerror}", file=str(path)) from None
    if size > MAX_DOCUMENT_BYTES:
        raise RuleFormatError(
            f"the document is {size} bytes long",
            expected=f"at most {MAX_DOCUMENT_BYTES} bytes",
            file=str(path),
        )
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFormatError(
            f"cannot read the file as UTF-8 text: {exc}", file=str(path)
        ) from None


def load_yaml(text: str, *, file: str = "") -> dict[str, Any]:
    """Parse YAML text into plain data (dicts, lists, scalars) within the limits above."""
    if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        raise RuleFormatError(
            "the document is too large", expected=f"at most {MAX_DOCUMENT_BYTES} bytes", file=file
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleFormatError(
            f"this is not valid YAML: {problem}", path=where, expected="a YAML mapping", file=file
        ) from None
    except RecursionError:
        raise RuleFormatError(
            "the document is nested too deeply", expected=f"at most {MAX_NESTING} levels", file=file
        ) from None
    if not isinstance(data, dict):
        raise RuleFormatError(
            f"the document is a {type(data).__name__}, not a mapping",
            expected="a YAML mapping at the top level",
            file=file,
        )
    _check_shape(data, file)
    return data


def _check_shape(data: object, file: str) -> None:
    """Refuse documents nested deeper than MAX_NESTING or with more than MAX_NODES nodes."""
    count = 0
    stack: list[tuple[object, int, str]] = [(data, 0, "")]
    while stack:
        node, depth, path = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise RuleFormatError(
                "the document has too many elements",
                expected=f"at most {MAX_NODES} (aliases count each time they are used)",
                file=file,
            )
        if depth > MAX_NESTING:
            raise RuleFormatError(
                "the document is nested too deeply",
                path=path,
                expected=f"at most {MAX_NESTING} levels",
                file=file,
            )
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise RuleFormatError(
                        f"key {key!r} is not text", path=path, expected="text keys", file=file
                    )
                stack.append((value, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                stack.append((value, depth + 1, f"{path}[{i}]"))
