"""The engine version digest: what code evaluated the rule.

SHA-256 over the sorted list of ``(path, SHA-256 of the file)`` for every source file of the
rule language (:mod:`shared.rules`) and of the runner itself. Any change to the evaluator or
the runner changes the digest, so a replay with different code is visible in the statement.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import shared.rules
import uwv_server.enclave

_RUNNER_FILES = ("runner_main.py", "sandbox.py", "job.py", "engine.py")


def engine_files() -> list[tuple[str, Path]]:
    """The files the digest covers, with their names relative to the project."""
    rules = Path(shared.rules.__file__).parent
    enclave = Path(uwv_server.enclave.__file__).parent
    files = [(f"shared/rules/{p.name}", p) for p in sorted(rules.glob("*.py"))]
    files += [(f"uwv_server/enclave/{n}", enclave / n) for n in _RUNNER_FILES]
    return files


def engine_digest() -> str:
    """The digest over :func:`engine_files`."""
    h = hashlib.sha256()
    for name, path in engine_files():
        h.update(name.encode("utf-8") + b"\x00")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
