"""Public contexts uploaded by clients, kept by SHA-256 (in memory and on disk).

A context is checked once, at upload, by the facade (:class:`PublicMaskedContext` for the
masked mode: a public key whose random part is the common ``a`` of this server's seed;
:class:`PublicBfvContext` for the strict mode: no secret key, parameters of a named set, the
same check on its public key); afterwards batches refer to it by digest and get an evaluator
for it. The parameter set comes from its name only, never from the uploaded bytes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he.backend import DEFAULT_CRS_SEED, PublicBfvContext, PublicMaskedContext
from shared.he.params import BFV_PARAMETER_SETS, PARAMETER_SETS
from uwv_server.evaluators import ChunkEvaluator, MaskedEvaluator, StrictEvaluator

PublicContext = PublicMaskedContext | PublicBfvContext


def _parse(parameter_set: str, data: bytes, crs_seed: bytes) -> PublicContext:
    if parameter_set in BFV_PARAMETER_SETS:
        return PublicBfvContext(data, parameter_set, crs_seed)
    if parameter_set in PARAMETER_SETS:
        return PublicMaskedContext(data, parameter_set, crs_seed)
    known = ", ".join(sorted([*PARAMETER_SETS, *BFV_PARAMETER_SETS]))
    raise CryptoError(f"unknown parameter set {parameter_set!r}; known: {known}")


class UnknownContext(CryptoError):
    """A batch names a context digest the server has not been given."""


class ContextRegistry:
    def __init__(
        self,
        directory: Path | None = None,
        max_in_memory: int = 64,
        crs_seed: bytes = DEFAULT_CRS_SEED,
    ) -> None:
        self._dir = directory
        self._crs_seed = crs_seed
        self._max = max_in_memory
        self._contexts: dict[str, tuple[PublicContext, bytes]] = {}
        self._evaluators: dict[str, ChunkEvaluator] = {}
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def upload(self, parameter_set: str, data: bytes) -> tuple[str, bool]:
        """Check and keep a context; returns (digest, already_known)."""
        digest = sha256_hex(data)
        with self._lock:
            if digest in self._contexts:
                return digest, True
        ctx = _parse(
            parameter_set, data, self._crs_seed
        )  # refuses secret keys and foreign parameters
        with self._lock:
            self._remember(digest, ctx, data)
        if self._dir is not None:
            tmp = self._dir / f".{digest}.tmp"
            tmp.write_bytes(parameter_set.encode() + b"\n" + data)
            os.replace(tmp, self._dir / f"{digest}.ctx")
        return digest, False

    def _remember(self, digest: str, ctx: PublicContext, data: bytes) -> None:
        if len(self._contexts) >= self._max:
            self._contexts.pop(next(iter(self._contexts)))
        self._contexts[digest] = (ctx, data)

    def known(self, digest: str) -> bool:
        with self._lock:
            if digest in self._contexts:
                return True
        return self._dir is not None and (self._dir / f"{digest}.ctx").exists()

    def get(self, digest: str) -> PublicContext:
        return self._entry(digest)[0]

    def _entry(self, digest: str) -> tuple[PublicContext, bytes]:
        with self._lock:
            entry = self._contexts.get(digest)
        if entry is not None:
            return entry
        path = None if self._dir is None else self._dir / f"{digest}.ctx"
        if path is None or len(digest) != 64 or not path.exists():
            raise UnknownContext(f"context {digest[:16]}… is not known here; upload it first")
        name, _, data = path.read_bytes().partition(b"\n")
        ctx = _parse(name.decode(), data, self._crs_seed)
        with self._lock:
            self._remember(digest, ctx, data)
        return ctx, data

    def evaluator(self, digest: str, mode: str) -> ChunkEvaluator:
        """The evaluator for batches in ``mode`` under this context (kept for reuse)."""
        ctx, data = self._entry(digest)
        if mode == "masked" and not isinstance(ctx, PublicMaskedContext):
            raise CryptoError(f"context {digest[:16]}… is for strict mode, the batch is masked")
        if mode == "strict" and not isinstance(ctx, PublicBfvContext):
            raise CryptoError(f"context {digest[:16]}… is for masked mode, the batch is strict")
        with self._lock:
            found = self._evaluators.get(digest)
        if found is not None:
            return found
        evaluator: ChunkEvaluator
        if isinstance(ctx, PublicMaskedContext):
            evaluator = MaskedEvaluator(ctx)
        else:
            evaluator = StrictEvaluator(ctx, data)  # starts worker processes: keep it
        with self._lock:
            if len(self._evaluators) >= 4:
                _, old = self._evaluators.popitem()
                old.close()
            self._evaluators[digest] = evaluator
        return evaluator

    def close(self) -> None:
        """Stop every evaluator's worker processes."""
        with self._lock:
            evaluators, self._evaluators = list(self._evaluators.values()), {}
        for evaluator in evaluators:
            evaluator.close()
