"""Strict-mode evaluation on several cores: a process pool whose workers each hold the client's
public context, deserialised once.

Why processes: TenSEAL holds the GIL through most of an evaluation, and its own threads did not
speed things up on this machine (DESIGN §3a); separate processes did. Chunks are independent,
so results are identical to :func:`shared.he.strict.evaluate_chunk` in-process, in order.

Why ``spawn`` by default: the server runs gRPC, whose threads do not survive ``fork``. Each
worker pays the import of TenSEAL once (well under a second) and then evaluates many chunks.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError
from shared.he.backend import PublicBfvContext
from shared.he.strict import evaluate_chunk

IntArray = npt.NDArray[np.int64]

StrictChunk = tuple[Sequence[bytes], IntArray]
"""One chunk of work: SVB's ciphertexts for the chunk and UWV's totals, in slot order."""

# Set once per worker process by _init_worker; the parent never touches it.
_WORKER_CONTEXT: PublicBfvContext | None = None


def _init_worker(public_context: bytes, params_name: str) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = PublicBfvContext(public_context, params_name)


def _evaluate_in_worker(ciphertexts: Sequence[bytes], totals_cents: IntArray) -> bytes:
    if _WORKER_CONTEXT is None:
        raise CryptoError("worker was started without a public context")
    return evaluate_chunk(_WORKER_CONTEXT, ciphertexts, totals_cents)


class StrictEvaluatorPool:
    """A pool of ``workers`` processes evaluating strict chunks under one public context.

    The context is checked in the parent first (no secret key, known parameters), so a bad
    upload fails here with :class:`CryptoError` rather than inside a worker.
    """

    def __init__(
        self,
        public_context: bytes,
        params_name: str,
        workers: int = 2,
        start_method: str = "spawn",
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        PublicBfvContext(public_context, params_name)
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(start_method),
            initializer=_init_worker,
            initargs=(public_context, params_name),
        )

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
