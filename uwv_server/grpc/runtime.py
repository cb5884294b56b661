"""What the asyncio server needs besides the services: its limits, the admission of screening
streams, and the one way blocking domain work leaves the event loop.

The server is grpc's asyncio server: an open stream is a coroutine waiting on the network, not
a thread, so idle streams cost a few kilobytes and cannot starve health checks. Domain work
(validation, budget, polis look-ups, masked evaluation, context parsing, audit appends) is
synchronous and runs on one bounded thread pool through :func:`blocking`; strict evaluation
runs in the evaluator's worker processes. The event loop itself only moves messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar

import grpc

from shared.errors import Error
from shared.pki import Identity
from uwv_server.grpc.metrics import ServerMetrics

P = ParamSpec("P")
T = TypeVar("T")

UNAUTHENTICATED_CALLER: Final = "unauthenticated (insecure loopback)"
"""The caller of every call on an ``--unsafe-insecure`` server: there is no identity to tell
callers apart, so they share one set of per-caller limits."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The operator's limits; every default is chosen on purpose and says why.

    Stream limits count screening streams (``Screen``): they are long-lived and each holds a
    batch's state. Short unary calls are bounded by ``max_concurrent_streams`` per connection.
    """

    max_streams_total: int = 64
    """Screening streams open at once, all callers together. A masked batch keeps at most
    ``IN_FLIGHT`` chunks (~1.5 MB) in memory and a strict one ~200 MB of ciphertexts; 64
    streams bound the ciphertext memory and are far more than two cores can serve."""
    max_streams_per_caller: int = 16
    """Screening streams one authenticated organisation may hold, so that one caller (or one
    caller's runaway retries) cannot take every slot from the others."""
    idle_timeout_s: float = 120.0
    """A stream on which the client sent nothing and the server owed nothing for this long is
    ended with DEADLINE_EXCEEDED: it holds a slot and a batch. A client encrypts a chunk in
    well under a second; two minutes covers a paused laptop, not a forgotten process."""
    blocking_workers: int = 4
    """Threads for synchronous domain work. TenSEAL holds the GIL while it evaluates, so more
    threads do not add throughput; four let I/O-bound steps (SQLite, DuckDB) overlap."""
    drain_grace_s: float = 30.0
    """On SIGTERM: how long in-flight batches may run on before they are cut off (the client's
    journal resumes them on the next start)."""
    keepalive_time_s: float = 60.0
    """The server pings a connection that has been silent this long, so a peer that vanished
    (NAT timeout, pulled cable) is noticed and its streams released."""
    keepalive_timeout_s: float = 20.0
    """A ping not answered within this time closes the connection."""
    min_client_ping_interval_s: float = 30.0
    """Clients may ping at most this often; more often and the server sends GOAWAY
    (``too_many_pings``), so a misconfigured client cannot flood us with pings."""
    max_connection_idle_s: float = 600.0
    """A connection with no call at all for ten minutes is closed (the client reconnects
    transparently); it frees file descriptors of abandoned clients."""
    max_concurrent_streams: int = 128
    """HTTP/2 streams per connection: above the per-caller screening limit plus room for
    health checks and unary calls, so the transport never refuses what the service would
    allow; below gRPC's default of unlimited."""

    def channel_options(self) -> list[tuple[str, int]]:
        """The gRPC server options for these limits (keepalive and HTTP/2)."""
        return [
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            # Clients may keep a connection alive with pings even between batches.
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_recv_ping_interval_without_data_ms",
                int(self.min_client_ping_interval_s * 1000),
            ),
            # Pings without data are fine (a long strict chunk sends nothing for a while).
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_connection_idle_ms", int(self.max_connection_idle_s * 1000)),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
        ]


GIL_SWITCH_INTERVAL_S: Final = 0.001
"""How long a Python thread may hold the GIL while another waits for it (CPython's default is
5 ms). The event loop that answers health checks shares the GIL with the domain threads; a
shorter hand-off bounds how long a domain thread running Python keeps it waiting, at a cost
of a few per cent of throughput in those threads. ``uwv-server serve`` sets it at start."""


class Refused(Error):
    """A call the server will not take now (its status is in :mod:`uwv_server.grpc.errors`);
    ``reason`` labels the refusal in the metrics."""

    reason: str = "limit"


class StreamLimitReached(Refused):
    """Too many screening streams open (in total or for this caller)."""

    reason = "streams"


class CallerStreamLimit(StreamLimitReached):
    """This caller holds :attr:`ServerLimits.max_streams_per_caller` streams already."""


class TotalStreamLimit(StreamLimitReached):
    """The server holds :attr:`ServerLimits.max_streams_total` streams already."""


class Draining(Refused):
    """The server is shutting down: no new batches (a client retries elsewhere or later)."""

    reason = "draining"


class RequesterMismatch(Error):
    """A message names another requester than the authenticated caller."""


class IdleStream(Refused):
    """A stream that sent nothing for the idle timeout."""

    reason = "idle"


class Admission:
    """Counts open screening streams per caller and in total; refuses over the limits or when
    draining; lets the shutdown wait until the streams are gone. Used from the event loop only
    (the counters need no lock); ``open_streams`` may be read from any thread."""

    def __init__(self, limits: ServerLimits) -> None:
        self._limits = limits
        self._per_caller: Counter[str] = Counter()
        self._total = 0
        self._draining = False
        self._idle: asyncio.Event | None = None

    @property
    def open_streams(self) -> int:
        return self._total

    @property
    def draining(self) -> bool:
        return self._draining

    @contextlib.asynccontextmanager
    async def stream(self, caller: str) -> AsyncIterator[None]:
        """Hold one stream slot for ``caller`` while the body runs."""
        if self._draining:
            raise Draining("the server is shutting down and takes no new batches; retry later")
        limits = self._limits
        if self._total >= limits.max_streams_total:
            raise TotalStreamLimit(
                f"the server has {self._total} screening streams open, its limit is "
                f"{limits.max_streams_total}; retry later"
            )
        if self._per_caller[caller] >= limits.max_streams_per_caller:
            raise CallerStreamLimit(
                f"{caller} has {self._per_caller[caller]} screening streams open, the limit "
                f"per caller is {limits.max_streams_per_caller}; close one or retry later"
            )
        self._total += 1
        self._per_caller[caller] += 1
        try:
            yield
        finally:
            self._total -= 1
            self._per_caller[caller] -= 1
            if self._per_caller[caller] == 0:
                del self._per_caller[caller]
            if self._total == 0 and self._idle is not None:
                self._idle.set()

    async def drain(self, grace_s: float) -> bool:
        """Refuse new streams and wait up to ``grace_s`` for open ones; True if all ended."""
        self._draining = True
        if self._total == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_s)
        except TimeoutError:
            return False
        return True


class BlockingPool:
    """The bounded thread pool for synchronous domain work; counts busy threads for metrics."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="domain")
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        return self._busy

    def _run(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self._busy += 1
        try:
            return fn()
        finally:
            with self._lock:
                self._busy -= 1

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the pool, awaited from the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._run, functools.partial(fn, *args, **kwargs)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class Runtime:
    """The parts of a running server its services share."""

    limits: ServerLimits
    admission: Admission
    pool: BlockingPool
    metrics: ServerMetrics


ServiceRegistrar = Callable[[grpc.aio.Server, Runtime], Sequence[str]]
"""Adds a further service (compute-to-data, audit log) and returns its full names."""


CURRENT_IDENTITY: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "uwv_identity", default=None
)
"""The authenticated caller of the call this task serves (set by the auth interceptor)."""


def identity_of(context: Context) -> Identity | None:
    """The caller's verified identity, or None on an insecure (loopback) server."""
    return CURRENT_IDENTITY.get()


def caller_of(context: Context) -> str:
    """The authenticated caller of a call (organisation and OIN), or the shared insecure name:
    what per-caller limits and quotas count by."""
    identity = CURRENT_IDENTITY.get()
    return UNAUTHENTICATED_CALLER if identity is None else str(identity)
