"""The one way the client writes its result files: temp file, fsync, rename, fsync the folder.

A reader of the outreach file (or of the statements next to it) sees either the previous
complete file or the new complete file, never a half-written one, also after a crash or a
power cut. The files hold household ids and decisions, so they are created mode 0600.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

from shared.errors import Error

OUTREACH_COLUMNS: Final = ("household_id", "decision", "reason")


class OutputError(Error):
    """A result file could not be written (disk full, no permission, missing folder …)."""


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: the body writes to a temp file, which replaces ``path``
    only once it is complete and on disk. On an exception the temp file is removed."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. a platform without directory fds: the rename is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_outreach(
    path: Path, rows: Iterable[tuple[str, str, str]], on_row: Callable[[str, str], None]
) -> None:
    """Write the outreach CSV (``household_id, decision, reason``) atomically; ``on_row``
    sees each (decision, reason) as it is written (the summary counts them)."""
    with atomic_file(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(OUTREACH_COLUMNS)
        for hid, decision, reason in rows:
            writer.writerow([hid, decision, reason])
            on_row(decision, reason)
        text.flush()
        text.detach()  # the binary file stays open for atomic_file to fsync


def write_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write one line per item atomically (e.g. the run statements); returns the count."""
    count = 0
    with atomic_file(path) as f:
        for line in lines:
            f.write(line + b"\n")
            count += 1
    return count
