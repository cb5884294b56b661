"""Public contexts uploaded by clients, kept by SHA-256 (in memory and on disk).

A context is checked once, at upload, by :class:`shared.he.backend.PublicCkksContext`
(no secret key, parameters of a named set); afterwards batches refer to it by digest.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from shared.errors import CryptoError
from shared.he.backend import PublicCkksContext, sha256_hex


class UnknownContext(CryptoError):
    """A batch names a context digest the server has not been given."""


class ContextRegistry:
    def __init__(self, directory: Path | None = None, max_in_memory: int = 64) -> None:
        self._dir = directory
        self._max = max_in_memory
        self._contexts: dict[str, PublicCkksContext] = {}
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def upload(self, parameter_set: str, data: bytes) -> tuple[str, bool]:
        """Check and keep a context; returns (digest, already_known)."""
        digest = sha256_hex(data)
        with self._lock:
            if digest in self._contexts:
                return digest, True
        ctx = PublicCkksContext(data, parameter_set)  # refuses secret keys and foreign params
        with self._lock:
            self._remember(digest, ctx)
        if self._dir is not None:
            tmp = self._dir / f".{digest}.tmp"
            tmp.write_bytes(parameter_set.encode() + b"\n" + data)
            os.replace(tmp, self._dir / f"{digest}.ctx")
        return digest, False

    def _remember(self, digest: str, ctx: PublicCkksContext) -> None:
        if len(self._contexts) >= self._max:
            self._contexts.pop(next(iter(self._contexts)))
        self._contexts[digest] = ctx

    def known(self, digest: str) -> bool:
        with self._lock:
            if digest in self._contexts:
                return True
        return self._dir is not None and (self._dir / f"{digest}.ctx").exists()

    def get(self, digest: str) -> PublicCkksContext:
        with self._lock:
            ctx = self._contexts.get(digest)
        if ctx is not None:
            return ctx
        path = None if self._dir is None else self._dir / f"{digest}.ctx"
        if path is None or not path.exists() or len(digest) != 64:
            raise UnknownContext(f"context {digest[:16]}… is not known here; upload it first")
        name, _, data = path.read_bytes().partition(b"\n")
        ctx = PublicCkksContext(data, name.decode())
        with self._lock:
            self._remember(digest, ctx)
        return ctx
