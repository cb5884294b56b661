"""Chunk evaluators, one per HE mode, behind one small interface.

- :class:`MaskedEvaluator` runs the masked BFV protocol inline (tens of ms per 16,384
  households: no point in a process hop).
- :class:`StrictEvaluator` runs the exact BFV comparison on a pool of worker processes
  (:class:`shared.he.parallel.StrictEvaluatorPool`) so both cores are used; results are the
  same as in-process evaluation. Its structural checks run in those workers too: the
  server's own process never parses a strict ciphertext or context (TenSEAL holds the GIL,
  which the event loop answering health checks needs).

Two steps, so the service can refuse malformed uploads before it charges anything:
:meth:`ChunkEvaluator.validate` checks a chunk's ciphertexts (count, size, parameters, level,
coefficients, slots; cheap next to evaluation) and returns a :class:`ParsedChunk`;
:meth:`ChunkEvaluator.evaluate` takes that and UWV's integer household totals ``S`` and
returns the result ciphertexts as a future, so the gRPC adapter can keep several chunks in
flight.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError
from shared.he.backend import DEFAULT_CRS_SEED, MaskedInput, PublicMaskedContext
from shared.he.masked import RandomBytes, mask_operands
from shared.he.parallel import StrictEvaluatorPool
from shared.he.params import BfvParams

IntArray = npt.NDArray[np.int64]

# Slots of a refused household get this total: its strict bit is then "not eligible" whatever
# its income, and the client discards it anyway (the slot carries a budget error).
_REFUSED_TOTAL: Final = 2**40


@dataclass(frozen=True)
class ParsedChunk:
    """A chunk's ciphertexts after :meth:`ChunkEvaluator.parse`: structurally valid."""

    ciphertexts: tuple[bytes, ...]
    handles: tuple[MaskedInput, ...] = ()


class ChunkEvaluator(Protocol):
    mode: str
    slots: int
    parameter_set: str

    def validate(self, ciphertexts: list[bytes], households: int) -> ParsedChunk:
        """Raise ``CryptoError`` unless the chunk's ciphertexts are well formed for this
        context and ``households`` slots: called before the budget is charged."""
        ...

    def evaluate(
        self, parsed: ParsedChunk, totals: IntArray, months: int, refused: list[int]
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
        self, context: PublicMaskedContext, random_bytes: RandomBytes = secrets.token_bytes
    ) -> None:
        self._context = context
        self._random_bytes = random_bytes
        self.slots = context.params.slots
        self.parameter_set = context.params.name

    def parse(self, ciphertexts: list[bytes]) -> ParsedChunk:
        if len(ciphertexts) != 1:
            raise CryptoError(f"masked mode takes 1 ciphertext per chunk, got {len(ciphertexts)}")
        handle = self._context.parse(ciphertexts[0])
        return ParsedChunk(tuple(ciphertexts), (handle,))

    def validate(self, ciphertexts: list[bytes], households: int) -> ParsedChunk:
        # Every BFV ciphertext holds all N slots; the service checks households <= slots.
        return self.parse(ciphertexts)

    def evaluate(
        self, parsed: ParsedChunk, totals: IntArray, months: int, refused: list[int]
    ) -> Future[list[bytes]]:
        if len(parsed.handles) != 1:
            raise CryptoError("a masked chunk must be parsed by its evaluator first")
        ops = mask_operands(totals, self._context.params, self._random_bytes)
        if refused:
            # A refused household's slot must say nothing about its income: zero it out.
            ops.multiply[refused] = 0
            ops.add[refused] = 0
        result = self._context.evaluate(
            parsed.handles[0], ops.multiply, ops.add, self._random_bytes
        )
        return _done([result])

    def close(self) -> None:
        pass


class StrictEvaluator:
    """Strict chunks on a pool of worker processes; ``params`` and ``data`` are a context
    already checked (:class:`shared.he.parallel.CheckedBfvContext`)."""

    mode = "strict"

    def __init__(
        self,
        params: BfvParams,
        data: bytes,
        *,
        crs_seed: bytes = DEFAULT_CRS_SEED,
        workers: int | None = None,
        nice: int = 0,
    ) -> None:
        self._params = params
        self.slots = params.slots
        self.parameter_set = params.name
        self._pool = StrictEvaluatorPool(
            data,
            params.name,
            workers=workers or max(1, os.cpu_count() or 1),
            crs_seed=crs_seed,
            checked=True,
            nice=nice,
        )

    def validate(self, ciphertexts: list[bytes], households: int) -> ParsedChunk:
        if len(ciphertexts) != self._params.ciphertexts_per_chunk:
            raise CryptoError(
                f"strict mode takes {self._params.ciphertexts_per_chunk} ciphertexts per chunk, "
                f"got {len(ciphertexts)}"
            )
        self._pool.check(ciphertexts, households).result()
        return ParsedChunk(tuple(ciphertexts))

    def evaluate(
        self, parsed: ParsedChunk, totals: IntArray, months: int, refused: list[int]
    ) -> Future[list[bytes]]:
        if refused:
            totals = totals.copy()
            totals[refused] = _REFUSED_TOTAL
        inner = self._pool.submit(list(parsed.ciphertexts), totals)
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
