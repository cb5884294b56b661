"""Chunk evaluators, one per HE mode, behind one small interface.

- :class:`MaskedEvaluator` runs the masked CKKS protocol inline (about 3 ms per 4,096
  households: no point in a process hop).
- :class:`StrictEvaluator` runs the exact BFV comparison on a pool of worker processes
  (:class:`shared.he.parallel.StrictEvaluatorPool`) so both cores are used; results are the
  same as in-process evaluation.

Both take UWV's integer household totals ``S`` and SVB's ciphertexts and return the result
ciphertexts as a future, so the gRPC adapter can keep several chunks in flight.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Future
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError
from shared.he.backend import PublicBfvContext, PublicCkksContext
from shared.he.masked import RandomBytes, mask_operands
from shared.he.parallel import StrictEvaluatorPool

IntArray = npt.NDArray[np.int64]

# Slots of a refused household get this total: its strict bit is then "not eligible" whatever
# its income, and the client discards it anyway (the slot carries a budget error).
_REFUSED_TOTAL: Final = 2**40


class ChunkEvaluator(Protocol):
    mode: str
    slots: int
    parameter_set: str

    def validate(self, ciphertexts: list[bytes], households: int) -> None:
        """Raise ``CryptoError`` unless the chunk's ciphertexts parse for this context and hold
        ``households`` slots: called before the budget is charged."""
        ...

    def submit(
        self, totals: IntArray, months: int, ciphertexts: list[bytes], refused: list[int]
    ) -> Future[list[bytes]]:
        """Evaluate one chunk; ``refused`` slots must say nothing about their household."""
        ...

    def close(self) -> None: ...


def _done(value: list[bytes]) -> Future[list[bytes]]:
    future: Future[list[bytes]] = Future()
    future.set_result(value)
    return future


class MaskedEvaluator:
    mode = "masked"

    def __init__(
        self, context: PublicCkksContext, random_bytes: RandomBytes = secrets.token_bytes
    ) -> None:
        self._context = context
        self._random_bytes = random_bytes
        self.slots = context.params.slots
        self.parameter_set = context.params.name

    def validate(self, ciphertexts: list[bytes], households: int) -> None:
        if len(ciphertexts) != 1:
            raise CryptoError(f"masked mode takes 1 ciphertext per chunk, got {len(ciphertexts)}")
        self._context.check_ciphertext(ciphertexts[0], households)

    def submit(
        self, totals: IntArray, months: int, ciphertexts: list[bytes], refused: list[int]
    ) -> Future[list[bytes]]:
        if len(ciphertexts) != 1:
            raise CryptoError(f"masked mode takes 1 ciphertext per chunk, got {len(ciphertexts)}")
        if len(refused) == len(totals):
            # Every household refused: multiplying all slots by zero gives a "transparent"
            # ciphertext SEAL will not process further. SVB's own ciphertext back carries
            # nothing of UWV's data, and every slot carries a refusal anyway.
            return _done([ciphertexts[0]])
        ops = mask_operands(totals, months, self._context.params, self._random_bytes)
        if refused:
            # A refused household's slot must say nothing about its income: zero it out.
            ops.multiply[refused] = 0.0
            ops.add[refused] = 0.0
        result = self._context.masked_affine(ciphertexts[0], ops.subtract, ops.multiply, ops.add)
        return _done([result])

    def close(self) -> None:
        pass


class StrictEvaluator:
    mode = "strict"

    def __init__(self, context: PublicBfvContext, data: bytes, workers: int | None = None) -> None:
        self._params = context.params
        self._context = context
        self.slots = context.params.slots
        self.parameter_set = context.params.name
        self._pool = StrictEvaluatorPool(
            data, context.params.name, workers=workers or max(1, os.cpu_count() or 1)
        )

    def validate(self, ciphertexts: list[bytes], households: int) -> None:
        if len(ciphertexts) != self._params.ciphertexts_per_chunk:
            raise CryptoError(
                f"strict mode takes {self._params.ciphertexts_per_chunk} ciphertexts per chunk, "
                f"got {len(ciphertexts)}"
            )
        for ct in ciphertexts:
            self._context.load(ct, households)

    def submit(
        self, totals: IntArray, months: int, ciphertexts: list[bytes], refused: list[int]
    ) -> Future[list[bytes]]:
        if len(ciphertexts) != self._params.ciphertexts_per_chunk:
            raise CryptoError(
                f"strict mode takes {self._params.ciphertexts_per_chunk} ciphertexts per chunk, "
                f"got {len(ciphertexts)}"
            )
        if refused:
            totals = totals.copy()
            totals[refused] = _REFUSED_TOTAL
        inner = self._pool.submit(ciphertexts, totals)
        outer: Future[list[bytes]] = Future()

        def relay(f: Future[bytes]) -> None:
            exc = f.exception()
            if exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result([f.result()])

        inner.add_done_callback(relay)
        return outer

    def close(self) -> None:
        self._pool.close()
