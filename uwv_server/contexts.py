"""Public contexts uploaded by clients, kept by SHA-256 (in memory and on disk).

A context is checked once, at upload, by the facade (:class:`PublicMaskedContext` for the
masked mode: a public key whose random part is the common ``a`` of this server's seed;
:class:`PublicBfvContext` for the strict mode: no secret key, parameters of a named set, the
same check on its public key); afterwards batches refer to it by digest and lease an
evaluator for it. The parameter set comes from its name only, never from the uploaded bytes.
Strict contexts are checked in a separate process (:class:`ContextChecker`): parsing one holds
the GIL for up to a second, which the server's event loop cannot spare.

Storage and lifecycle:

- What is stored is the facade's re-serialisation (:meth:`canonical_bytes`), never the bytes
  as uploaded: anything the parser skipped (an unknown field, trailing bytes; a secret key
  hidden there) is not in it and never reaches the disk. Batches may name a context by the
  digest of the bytes the client sent (what the client knows) or of the canonical form; both
  resolve to the one stored copy (``index.json`` keeps the aliases). Uploading the same
  context again, or another serialisation of the same keys, stores nothing new and is
  answered ``already_known``.
- Each caller has a quota of contexts and bytes on disk (:class:`ContextQuota`); the owners
  of every stored context are kept in ``owners.json`` beside them.
- Evaluators are shared per context and leased by batches (:mod:`uwv_server.capacity`):
  never evicted while a batch holds one, and refused under the operator's memory bound.

Strict-mode contexts are accepted only through the key check (:attr:`ContextRegistry.
key_check`, cut-and-choose over ``strict_key_sets`` key sets, :mod:`uwv_server.key_checks`):
their relinearisation keys cannot be checked by looking at them. A plain upload of a strict
context is refused unless the very bytes were accepted before (so a sealed request file may
carry a context accepted online), or the registry was built with
``unsafe_trust_strict_keys=True`` (tests and benchmarks of an SVB trusted to make its keys).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared.digests import sha256_hex
from shared.errors import CryptoError, Error
from shared.he.backend import DEFAULT_CRS_SEED, PublicMaskedContext
from shared.he.keysets import DEFAULT_KEY_SETS
from shared.he.parallel import CheckedBfvContext, ContextChecker
from shared.he.params import BFV_PARAMETER_SETS, PARAMETER_SETS
from uwv_server.capacity import (
    CACHED_CONTEXT_FACTOR,
    MASKED_EVALUATOR_BYTES,
    EvaluatorCache,
    Lease,
    strict_cost,
)
from uwv_server.evaluators import ChunkEvaluator, MaskedEvaluator, StrictEvaluator
from uwv_server.key_checks import StrictKeyCheck

PublicContext = PublicMaskedContext | CheckedBfvContext
UNNAMED_CALLER: Final = "unnamed client"
_INDEX: Final = "index.json"

STRICT_WORKER_NICE: Final = 5
"""Strict evaluation workers (and the context checker) run at this lower priority: on a busy
machine the server's own process, which moves messages and answers health checks, then gets
a core when it needs one, and the workers still take every idle cycle."""


def _parse(
    parameter_set: str, data: bytes, crs_seed: bytes, checker: ContextChecker
) -> PublicContext:
    if parameter_set in BFV_PARAMETER_SETS:
        return checker.check(data, parameter_set, crs_seed)
    if parameter_set in PARAMETER_SETS:
        return PublicMaskedContext(data, parameter_set, crs_seed)
    known = ", ".join(sorted([*PARAMETER_SETS, *BFV_PARAMETER_SETS]))
    raise CryptoError(f"unknown parameter set {parameter_set!r}; known: {known}")


class UnknownContext(CryptoError):
    """A batch names a context digest the server has not been given."""


class KeysNotChecked(CryptoError):
    """A strict-mode context uploaded without the key check (cut-and-choose)."""


class QuotaExceeded(Error):
    """A caller's stored contexts would exceed its quota (count or bytes)."""


@dataclass(frozen=True, slots=True)
class ContextQuota:
    """What one caller may keep on the server's disk."""

    max_contexts: int = 16
    """A client needs one context per key and mode; sixteen leaves room for key rotation."""
    max_bytes: int = 256 * 1024 * 1024
    """An N=16384 strict context is ~6.4 MB; 256 MB is forty of them."""


class ContextRegistry:
    def __init__(
        self,
        directory: Path | None = None,
        max_in_memory: int = 64,
        *,
        crs_seed: bytes = DEFAULT_CRS_SEED,
        memory_limit_bytes: int | None = None,
        strict_workers: int | None = None,
        quota: ContextQuota | None = None,
        worker_nice: int = STRICT_WORKER_NICE,
        measure_memory: Callable[[], int] | None = None,
        strict_key_sets: int = DEFAULT_KEY_SETS,
        unsafe_trust_strict_keys: bool = False,
        key_check_choose: Callable[[int], int] = secrets.randbelow,
    ) -> None:
        self._dir = directory
        self._worker_nice = worker_nice
        self._checker = ContextChecker(nice=worker_nice)
        self._crs_seed = crs_seed
        self._max = max_in_memory
        self._strict_workers = strict_workers or max(1, os.cpu_count() or 1)
        self.quota = quota if quota is not None else ContextQuota()
        self._contexts: OrderedDict[str, tuple[PublicContext, bytes]] = OrderedDict()
        self._cached_bytes = 0
        self._owners: dict[str, list[str]] = {}  # canonical digest -> callers
        self._sizes: dict[str, int] = {}  # canonical digest -> stored bytes
        self._alias: dict[str, str] = {}  # digest of any accepted upload -> canonical digest
        self._lock = threading.Lock()
        self.evaluators = EvaluatorCache(memory_limit_bytes, measure_memory)
        self.evaluators.count_also(lambda: self._cached_bytes)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load_index(directory)
        self.unsafe_trust_strict_keys = unsafe_trust_strict_keys
        self.key_check = StrictKeyCheck(
            self.accept_checked,
            crs_seed=crs_seed,
            key_sets=strict_key_sets,
            directory=directory,
            choose=key_check_choose,
            # regenerating key sets holds TenSEAL for seconds: not in the server's process
            regenerate=self._checker.regenerated_digest,
        )
        """The cut-and-choose check strict contexts pass (``key_check.key_sets`` = K)."""

    # -- storage and quota ------------------------------------------------------------------

    def _load_index(self, directory: Path) -> None:
        path = directory / _INDEX
        index = json.loads(path.read_text()) if path.exists() else {}
        owners, aliases = index.get("owners", {}), index.get("aliases", {})
        for ctx_file in directory.glob("*.ctx"):
            digest = ctx_file.stem
            self._sizes[digest] = ctx_file.stat().st_size
            self._owners[digest] = list(owners.get(digest, []))
            self._alias[digest] = digest
        for alias, digest in aliases.items():
            if digest in self._sizes:
                self._alias[alias] = digest

    def _save_index(self) -> None:
        """Persist owners and aliases; caller holds the lock."""
        if self._dir is None:
            return
        aliases = {a: d for a, d in self._alias.items() if a != d}
        tmp = self._dir / f".{_INDEX}.tmp"
        tmp.write_text(json.dumps({"owners": self._owners, "aliases": aliases}, sort_keys=True))
        os.replace(tmp, self._dir / _INDEX)

    def usage(self, caller: str) -> tuple[int, int]:
        """(contexts, bytes) stored on behalf of ``caller``."""
        with self._lock:
            mine = [d for d, who in self._owners.items() if caller in who]
            return len(mine), sum(self._sizes.get(d, 0) for d in mine)

    def _claim(self, digest: str, size: int, caller: str) -> None:
        """Record ``caller`` as an owner of ``digest`` within its quota; caller holds the lock."""
        owners = self._owners.setdefault(digest, [])
        if caller in owners:
            return
        mine = [d for d, who in self._owners.items() if caller in who]
        used = sum(self._sizes.get(d, 0) for d in mine)
        q = self.quota
        if len(mine) + 1 > q.max_contexts or used + size > q.max_bytes:
            if not owners:
                del self._owners[digest]
            raise QuotaExceeded(
                f"{caller} keeps {len(mine)} context(s), {used // 1024} KiB on this server; the "
                f"quota is {q.max_contexts} contexts and {q.max_bytes // 1024} KiB: reuse an "
                "uploaded context (same key, same bytes) instead of a new one"
            )
        owners.append(caller)

    def upload(
        self, parameter_set: str, data: bytes, caller: str = UNNAMED_CALLER
    ) -> tuple[str, bool]:
        """Check and keep a context; returns (digest of ``data``, already_known).

        A strict-mode context is refused here unless these bytes passed the key check before
        (or keys are trusted, ``unsafe_trust_strict_keys``)."""
        sent = sha256_hex(data)
        with self._lock:
            digest = self._alias.get(sent)
            if digest is not None:  # these very bytes were accepted before
                self._claim(digest, self._sizes.get(digest, len(data)), caller)
                self._save_index()
                return sent, True
        if parameter_set in BFV_PARAMETER_SETS and not self.unsafe_trust_strict_keys:
            raise KeysNotChecked(
                f"a strict-mode context ({parameter_set}) is accepted only through the key "
                f"check: propose {self.key_check.key_sets} key sets (ProposeKeySets), open all "
                "but the one UWV chooses (OpenKeySets); a context accepted that way may be "
                "uploaded again"
            )
        return self._store(parameter_set, data, caller)

    def accept_checked(self, parameter_set: str, data: bytes, caller: str) -> str:
        """Store a strict context that passed the key check; its digest as sent."""
        return self._store(parameter_set, data, caller)[0]

    def _store(self, parameter_set: str, data: bytes, caller: str) -> tuple[str, bool]:
        sent = sha256_hex(data)
        # refuses secret keys, foreign sets
        ctx = _parse(parameter_set, data, self._crs_seed, self._checker)
        canonical = ctx.canonical_bytes()
        digest = sha256_hex(canonical)
        with self._lock:
            known = digest in self._sizes
            self._claim(digest, len(canonical), caller)
            self._sizes[digest] = len(canonical)
            self._alias[sent] = digest
            self._alias[digest] = digest
            self._remember(digest, ctx, canonical)
            if not known and self._dir is not None:
                tmp = self._dir / f".{digest}.tmp"
                tmp.write_bytes(parameter_set.encode() + b"\n" + canonical)
                os.replace(tmp, self._dir / f"{digest}.ctx")
            self._save_index()
        return sent, known

    # -- contexts in memory -----------------------------------------------------------------

    def _remember(self, digest: str, ctx: PublicContext, data: bytes) -> None:
        """Cache a parsed context; caller holds the lock. The oldest go first (they are on
        disk; an evaluator keeps its own reference)."""
        if digest in self._contexts:
            self._contexts.move_to_end(digest)
            return
        while len(self._contexts) >= self._max:
            _, (_, old) = self._contexts.popitem(last=False)
            self._cached_bytes -= CACHED_CONTEXT_FACTOR * len(old)
        self._contexts[digest] = (ctx, data)
        self._cached_bytes += CACHED_CONTEXT_FACTOR * len(data)

    def known(self, digest: str) -> bool:
        with self._lock:
            return digest in self._alias

    def get(self, digest: str) -> PublicContext:
        return self._entry(digest)[0]

    def _entry(self, digest: str) -> tuple[PublicContext, bytes]:
        """(parsed context, canonical bytes) for a digest or alias."""
        with self._lock:
            canonical = self._alias.get(digest)
            entry = None if canonical is None else self._contexts.get(canonical)
        if entry is not None:
            return entry
        path = None if self._dir is None or canonical is None else self._dir / f"{canonical}.ctx"
        if path is None or not path.exists():
            raise UnknownContext(f"context {digest[:16]}… is not known here; upload it first")
        name, _, data = path.read_bytes().partition(b"\n")
        ctx = _parse(name.decode(), data, self._crs_seed, self._checker)
        with self._lock:
            self._remember(path.stem, ctx, data)
        return ctx, data

    # -- evaluators -------------------------------------------------------------------------

    def acquire(self, digest: str, mode: str) -> Lease:
        """A lease on the shared evaluator for batches in ``mode`` under this context; release
        it when the batch is over. Raises :class:`~uwv_server.capacity.CapacityExceeded` when
        a new evaluator does not fit under the memory bound."""
        ctx, data = self._entry(digest)
        key = sha256_hex(data)  # the canonical digest: one evaluator for every alias
        if mode == "masked" and not isinstance(ctx, PublicMaskedContext):
            raise CryptoError(f"context {digest[:16]}… is for strict mode, the batch is masked")
        if mode == "strict" and not isinstance(ctx, CheckedBfvContext):
            raise CryptoError(f"context {digest[:16]}… is for masked mode, the batch is strict")
        if isinstance(ctx, PublicMaskedContext):
            masked = ctx
            return self.evaluators.acquire(
                key, lambda: MaskedEvaluator(masked), MASKED_EVALUATOR_BYTES
            )
        strict, workers = ctx, self._strict_workers

        def make() -> ChunkEvaluator:
            return StrictEvaluator(  # starts worker processes
                strict.params,
                data,
                crs_seed=self._crs_seed,
                workers=workers,
                nice=self._worker_nice,
            )

        return self.evaluators.acquire(key, make, strict_cost(len(data), workers), workers)

    def close(self) -> None:
        """Stop every evaluator's worker processes and the context checker."""
        self.evaluators.close()
        self._checker.close()
