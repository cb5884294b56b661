"""Plain SHA-256 digests, as hex: of bytes, and of a file read in blocks.

For data that is not personal (contexts, rules, snapshots, statements, input files as a
whole). Digests of personal data in the audit log are salted: see :mod:`shared.audit.entry`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, read 1 MiB at a time (files may be gigabytes)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
