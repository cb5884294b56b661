"""File export of the log, for auditors who verify offline.

An export is a text file of JSON lines::

    line 1       header: {"format": "aio-audit-export/v1", "origin": ..., "size": N,
                          "log_key": <vkey>, "witness_keys": [<vkey>, ...],
                          "checkpoint": <signed checkpoint note text>}
    lines 2..N+1 the leaves, verbatim: entry i is the canonical JSON of run i

The header's keys are a convenience: an auditor should pass the keys it trusts
(``--log-key``) rather than take them from the file it is checking. The file is
written to a temporary name, fsync'ed and renamed, so a reader never sees half
an export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shared.audit.checkpoint import Checkpoint
from shared.audit.errors import ExportError, NoteError
from shared.audit.log import AuditLog
from shared.audit.note import NoteVerifier, parse_note

EXPORT_FORMAT: Final = "aio-audit-export/v1"
_CHUNK: Final = 10_000


@dataclass(frozen=True, slots=True)
class LogExport:
    """A loaded export: header fields and the leaves, not yet verified."""

    origin: str
    log_key: str
    witness_keys: tuple[str, ...]
    checkpoint: str
    leaves: tuple[bytes, ...]


def export_log(
    log: AuditLog,
    path: str | Path,
    checkpoint: str,
    log_key: NoteVerifier,
    witness_keys: Sequence[NoteVerifier] = (),
) -> None:
    """Write the entries covered by ``checkpoint`` (a signed checkpoint of ``log``) to ``path``."""
    try:
        cp = Checkpoint.parse(parse_note(checkpoint).text)
    except NoteError as exc:
        raise ExportError(f"cannot export: the checkpoint is malformed: {exc}") from None
    if cp.origin != log.origin or cp.size > log.size:
        raise ExportError(f"checkpoint ({cp.origin}, size {cp.size}) is not of this log")
    header = {
        "format": EXPORT_FORMAT,
        "origin": log.origin,
        "size": cp.size,
        "log_key": log_key.vkey(),
        "witness_keys": [w.vkey() for w in witness_keys],
        "checkpoint": checkpoint,
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(header, sort_keys=True, ensure_ascii=True).encode() + b"\n")
        for start in range(0, cp.size, _CHUNK):
            for leaf in log.leaves(start, min(cp.size, start + _CHUNK)):
                if b"\n" in leaf or b"\r" in leaf:
                    raise ExportError(f"entry {start} contains a line break: not a canonical entry")
                f.write(leaf + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _field(header: dict[str, Any], name: str, kind: type) -> Any:
    value = header.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ExportError(f"export header: {name!r} is missing or not {kind.__name__}")
    return value


def load_export(path: str | Path) -> LogExport:
    """Read an export file; a malformed one raises :class:`ExportError` naming the line."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
            try:
                header = json.loads(first.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise ExportError("line 1: export header is not JSON") from None
            if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
                raise ExportError(f"line 1: not an {EXPORT_FORMAT} file")
            leaves: list[bytes] = []
            for lineno, line in enumerate(f, start=2):
                if not line.endswith(b"\n"):
                    raise ExportError(f"line {lineno}: last line is cut off (no newline)")
                leaves.append(line[:-1])
    except OSError as exc:
        raise ExportError(f"cannot read export {path}: {exc.strerror or exc}") from None
    witness_keys = _field(header, "witness_keys", list)
    if not all(isinstance(k, str) for k in witness_keys):
        raise ExportError("export header: 'witness_keys' must be a list of texts")
    size = _field(header, "size", int)
    if size != len(leaves):
        raise ExportError(
            f"export header says {size} entries, the file holds {len(leaves)}: "
            + ("truncated" if len(leaves) < size else "entries were added")
        )
    return LogExport(
        origin=_field(header, "origin", str),
        log_key=_field(header, "log_key", str),
        witness_keys=tuple(witness_keys),
        checkpoint=_field(header, "checkpoint", str),
        leaves=tuple(leaves),
    )
