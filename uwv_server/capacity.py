"""The server's memory bound: evaluators shared per context, leased by batches, never evicted
while a batch holds them, and refused rather than over-committed.

A strict evaluator is a pool of worker processes each holding the client's deserialised
public context (hundreds of MB at N=16384); a masked evaluator is a few MB. The operator sets
one bound (``--memory-limit-mb``); the registry reserves an estimate for every evaluator and
every cached context under it. When a new batch needs an evaluator that does not fit, idle
evaluators (no lease) are closed, oldest first; if that is not enough the batch is refused
with :class:`CapacityExceeded` (gRPC ``RESOURCE_EXHAUSTED``) and running batches are not
touched.

The bound counts the larger of two figures:

- the **estimates** reserved for every evaluator and cached context (deterministic, and ahead
  of the facts: an evaluator that is still starting its workers is counted at once). The
  issue's measurement of 4.1 GB for a server with eight N=16384 workers gives ~450 MB per
  worker, about a fixed 120 MB (interpreter, TenSEAL) plus fifty times the serialised context;
- the **measured** resident memory of the server and its worker processes (``measure``;
  ``uwv-server serve`` passes the process tree's RSS from ``/proc``), which also sees what no
  estimate covers (the store's caches, batches' chunks in flight, an estimate that is low).

Either over the bound refuses a new evaluator; neither ever stops a running batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.errors import Error
from uwv_server.evaluators import ChunkEvaluator

MB: Final = 1024 * 1024
WORKER_BASE_BYTES: Final = 120 * MB
WORKER_BYTES_PER_CONTEXT_BYTE: Final = 50
MASKED_EVALUATOR_BYTES: Final = 8 * MB
CACHED_CONTEXT_FACTOR: Final = 4
"""A parsed context in the parent holds its keys unpacked: about four times its bytes."""


class CapacityExceeded(Error):
    """A new batch would take the server past its memory bound; running batches go on."""


def strict_cost(context_bytes: int, workers: int) -> int:
    """Estimated bytes of a strict evaluator pool."""
    return workers * (WORKER_BASE_BYTES + WORKER_BYTES_PER_CONTEXT_BYTE * context_bytes)


@dataclass(slots=True)
class _Entry:
    evaluator: ChunkEvaluator
    cost: int
    workers: int
    leases: int = 0


class Lease:
    """A batch's hold on a shared evaluator; :meth:`release` once when the batch is over."""

    def __init__(self, cache: EvaluatorCache, key: str, evaluator: ChunkEvaluator) -> None:
        self._cache = cache
        self._key = key
        self.evaluator = evaluator
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._cache._release(self._key)


class EvaluatorCache:
    """Evaluators by key (context digest), leased by batches, under one memory bound."""

    def __init__(self, limit_bytes: int | None, measure: Callable[[], int] | None = None) -> None:
        self.limit_bytes = limit_bytes
        self._measure = measure
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._reserved = 0  # entries plus evaluators being built
        self._lock = threading.Lock()
        self._extra: Callable[[], int] = lambda: 0

    def count_also(self, extra: Callable[[], int]) -> None:
        """Count further reserved memory (the registry's cached contexts) against the bound."""
        self._extra = extra

    @property
    def reserved_bytes(self) -> int:
        with self._lock:
            return self._reserved + self._extra()

    def stats(self) -> tuple[int, int]:
        """(strict pools alive, strict worker processes alive)."""
        with self._lock:
            pools = [e.workers for e in self._entries.values() if e.workers]
        return len(pools), sum(pools)

    def leases(self, key: str) -> int:
        with self._lock:
            entry = self._entries.get(key)
            return 0 if entry is None else entry.leases

    def acquire(
        self, key: str, make: Callable[[], ChunkEvaluator], cost: int, workers: int = 0
    ) -> Lease:
        """A lease on the evaluator for ``key``, built by ``make`` if there is none and it fits
        (``workers``: the worker processes it starts, for the metrics)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.leases += 1
                self._entries.move_to_end(key)
                return Lease(self, key, entry.evaluator)
            idle = self._make_room(cost)
            self._reserved += cost
        for evaluator in idle:
            evaluator.close()
        try:
            built = make()
        except BaseException:
            with self._lock:
                self._reserved -= cost
            raise
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:  # usual case: nobody built it meanwhile
                self._entries[key] = entry = _Entry(built, cost, workers)
                duplicate = None
            else:
                self._reserved -= cost
                duplicate = built
            entry.leases += 1
            evaluator = entry.evaluator
        if duplicate is not None:
            duplicate.close()
        return Lease(self, key, evaluator)

    def _make_room(self, cost: int) -> list[ChunkEvaluator]:
        """Drop idle evaluators (oldest first) until ``cost`` fits; caller holds the lock."""
        limit = self.limit_bytes
        if limit is None:
            return []
        reserved = self._reserved + self._extra()
        measured = self._measure() if self._measure is not None else 0
        in_use = max(reserved, measured)
        idle = [k for k, e in self._entries.items() if e.leases == 0]
        if in_use - sum(self._entries[k].cost for k in idle) + cost > limit:
            busy = len(self._entries) - len(idle)
            raise CapacityExceeded(
                f"the server's memory bound of {limit // MB} MB is taken ({reserved // MB} MB "
                f"reserved, {measured // MB} MB resident, {busy} evaluator(s) in use by "
                f"running batches); this batch needs ~{cost // MB} MB more: retry when a "
                "running batch has finished"
            )
        freed: list[ChunkEvaluator] = []
        for key in idle:
            if in_use + cost <= limit:
                break
            entry = self._entries.pop(key)
            self._reserved -= entry.cost
            in_use -= entry.cost
            freed.append(entry.evaluator)
        return freed

    def _release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.leases -= 1

    def close(self) -> None:
        """Stop every evaluator (server shutdown)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
            self._reserved = 0
        for entry in entries:
            entry.evaluator.close()
