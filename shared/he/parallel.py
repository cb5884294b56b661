"""Strict-mode evaluation on several cores: a process pool whose workers each hold the client's
public context, deserialised once.

Why processes: TenSEAL holds the GIL through most of an evaluation, and its own threads did not
speed things up on this machine (DESIGN §3a); separate processes did. Chunks are independent,
so results are identical to :func:`shared.he.strict.evaluate_chunk` in-process, in order.

Why ``spawn`` by default: the server runs gRPC, whose threads do not survive ``fork``. Each
worker pays the import of TenSEAL once (well under a second) and then evaluates many chunks.

Why the structural checks run in the workers too (:meth:`StrictEvaluatorPool.check`, and
:class:`ContextChecker` for uploaded contexts): parsing a strict chunk's 39 ciphertexts takes
~60 ms and parsing a public context 0.3 to 1 s, all of it in TenSEAL holding the GIL. In the
server's process that time is taken from its event loop, which also answers health checks;
measured, four strict batches pushed health p99 past 150 ms. The server's process keeps only
bytes and parameters of a strict context.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import numpy.typing as npt

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he.backend import DEFAULT_CRS_SEED, PublicBfvContext
from shared.he.params import BfvParams, bfv_parameter_set
from shared.he.strict import evaluate_chunk

IntArray = npt.NDArray[np.int64]

StrictChunk = tuple[Sequence[bytes], IntArray]
"""One chunk of work: SVB's ciphertexts for the chunk and UWV's totals, in slot order."""

# Set once per worker process by _init_worker; the parent never touches it.
_WORKER_CONTEXT: PublicBfvContext | None = None


def _lower_priority(nice: int) -> None:
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)


def _init_worker(public_context: bytes, params_name: str, crs_seed: bytes, nice: int) -> None:
    global _WORKER_CONTEXT
    _lower_priority(nice)
    _WORKER_CONTEXT = PublicBfvContext(public_context, params_name, crs_seed)


def _worker_context() -> PublicBfvContext:
    if _WORKER_CONTEXT is None:
        raise CryptoError("worker was started without a public context")
    return _WORKER_CONTEXT


def _evaluate_in_worker(ciphertexts: Sequence[bytes], totals_cents: IntArray) -> bytes:
    return evaluate_chunk(_worker_context(), ciphertexts, totals_cents)


def _check_in_worker(ciphertexts: Sequence[bytes], households: int) -> None:
    context = _worker_context()
    for i, ciphertext in enumerate(ciphertexts):
        try:
            context.check_upload(ciphertext)
            context.load(ciphertext, households)
        except CryptoError as exc:
            raise CryptoError(f"ciphertext {i}: {exc}") from None


class StrictEvaluatorPool:
    """A pool of ``workers`` processes evaluating strict chunks under one public context.

    The context is checked in the parent first (no secret key, known parameters), so a bad
    upload fails here with :class:`CryptoError` rather than inside a worker; a caller that has
    checked it already (the server, in a :class:`ContextChecker`) passes ``checked=True``.
    ``nice`` lowers the workers' scheduling priority, so that the process that hands them work
    (and answers health checks) gets a core when it needs one.
    """

    def __init__(
        self,
        public_context: bytes,
        params_name: str,
        workers: int = 2,
        start_method: str = "spawn",
        *,
        crs_seed: bytes = DEFAULT_CRS_SEED,
        checked: bool = False,
        nice: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if not checked:
            PublicBfvContext(public_context, params_name, crs_seed)
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(start_method),
            initializer=_init_worker,
            initargs=(public_context, params_name, crs_seed, nice),
        )

    def check(self, ciphertexts: Sequence[bytes], households: int) -> Future[None]:
        """The structural checks of one chunk's uploads (:meth:`PublicBfvContext.check_upload`
        and that each holds ``households`` slots), in a worker; the future raises the first
        failure as ``CryptoError("ciphertext i: ...")``."""
        return self._executor.submit(_check_in_worker, ciphertexts, households)

    def submit(self, ciphertexts: Sequence[bytes], totals_cents: IntArray) -> Future[bytes]:
        """Queue one chunk; lets a caller encrypt the next chunk while workers evaluate."""
        return self._executor.submit(_evaluate_in_worker, ciphertexts, totals_cents)

    def evaluate(self, chunks: Sequence[StrictChunk]) -> list[bytes]:
        """Results for ``chunks``, in order; a failing chunk raises its (domain) error."""
        futures = [self._executor.submit(_evaluate_in_worker, cts, s) for cts, s in chunks]
        return [f.result() for f in futures]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> StrictEvaluatorPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class CheckedBfvContext:
    """A strict-mode public context that passed :class:`PublicBfvContext`'s checks in another
    process: what the server's own process keeps of it (parameters and canonical bytes)."""

    params: BfvParams
    canonical: bytes
    sha256: str

    def canonical_bytes(self) -> bytes:
        return self.canonical


def _canonical_in_worker(data: bytes, params_name: str, crs_seed: bytes) -> bytes:
    return PublicBfvContext(data, params_name, crs_seed).canonical_bytes()


def _regenerated_digest_in_worker(params_name: str, seed: bytes, crs_seed: bytes) -> str:
    from shared.he.keysets import regenerate_public_bytes

    return sha256_hex(regenerate_public_bytes(bfv_parameter_set(params_name), seed, crs_seed))


class ContextChecker:
    """One spawned process that checks uploaded strict-mode contexts and re-serialises them.

    Started on first use (importing TenSEAL there takes about a second once) and kept, so a
    server that never sees a strict context never starts it. Thread-safe.
    """

    def __init__(self, start_method: str = "spawn", nice: int = 0) -> None:
        self._start_method = start_method
        self._nice = nice
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context(self._start_method),
                    initializer=_lower_priority,
                    initargs=(self._nice,),
                )
            return self._executor

    def check(
        self, data: bytes, params_name: str, crs_seed: bytes = DEFAULT_CRS_SEED
    ) -> CheckedBfvContext:
        """:class:`PublicBfvContext`'s checks on ``data``, run in the checker's process;
        raises its ``CryptoError`` (no secret key, the named parameters, the common ``a``)."""
        params = bfv_parameter_set(params_name)
        canonical = self._pool().submit(_canonical_in_worker, data, params_name, crs_seed).result()
        return CheckedBfvContext(params, canonical, sha256_hex(canonical))

    def regenerated_digest(
        self, params_name: str, seed: bytes, crs_seed: bytes = DEFAULT_CRS_SEED
    ) -> str:
        """SHA-256 of the public context the key set of ``seed`` gives (the key check's
        regeneration, :mod:`shared.he.keysets`), computed in the checker's process."""
        return str(
            self._pool().submit(_regenerated_digest_in_worker, params_name, seed, crs_seed).result()
        )

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
