"""The server's metrics in the Prometheus format, served on an operator port.

One :class:`ServerMetrics` per server, on its own registry (tests run several servers in one
process). What is counted and why an operator wants it:

- ``uwv_batches_total{mode}`` / ``uwv_households_total{mode}``: work done, per mode;
- ``uwv_refusals_total{reason}``: calls refused (stream limits, memory bound, quota, draining,
  idle streams, bad input by error code): a rising count is a capacity or client problem;
- ``uwv_budget_refused_households_total``: households refused by the differencing budget;
- ``uwv_chunk_seconds{mode}``: from a chunk's arrival to its result (queueing included);
- ``uwv_streams_in_flight``, ``uwv_blocking_threads_busy``, ``uwv_strict_pools``,
  ``uwv_strict_workers``: how full the server is;
- ``uwv_memory_rss_bytes``: resident memory of the server and its worker processes, and
  ``uwv_memory_reserved_bytes``: what the context registry has reserved under its bound.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

CHUNK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Masked chunks take milliseconds, strict chunks seconds: buckets cover both."""


def _rss_of(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process and all its descendants (Linux ``/proc``; 0 elsewhere)."""
    root = os.getpid() if pid is None else pid
    total, stack, seen = 0, [root], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_of(p)
        stack.extend(_children(p))
    return total


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.batches = Counter("uwv_batches", "Screening batches opened", ["mode"], registry=r)
        self.households = Counter("uwv_households", "Households evaluated", ["mode"], registry=r)
        self.refusals = Counter("uwv_refusals", "Calls or chunks refused", ["reason"], registry=r)
        self.budget_refused = Counter(
            "uwv_budget_refused_households",
            "Households refused because a member's budget is spent",
            registry=r,
        )
        self.chunk_seconds = Histogram(
            "uwv_chunk_seconds",
            "Seconds from a chunk's arrival to its result",
            ["mode"],
            buckets=CHUNK_BUCKETS,
            registry=r,
        )
        self.streams = Gauge("uwv_streams_in_flight", "Screening streams open", registry=r)
        self.blocking_busy = Gauge(
            "uwv_blocking_threads_busy", "Threads of the domain pool at work", registry=r
        )
        self.strict_pools = Gauge("uwv_strict_pools", "Strict evaluator pools alive", registry=r)
        self.strict_workers = Gauge(
            "uwv_strict_workers", "Strict evaluator worker processes alive", registry=r
        )
        self.rss = Gauge(
            "uwv_memory_rss_bytes", "Resident memory incl. worker processes", registry=r
        )
        self.reserved = Gauge(
            "uwv_memory_reserved_bytes", "Memory reserved by the context registry", registry=r
        )
        self.rss.set_function(tree_rss_bytes)

    def watch(
        self,
        *,
        streams: Callable[[], float],
        blocking_busy: Callable[[], float],
        strict_pools: Callable[[], float],
        strict_workers: Callable[[], float],
        reserved: Callable[[], float],
    ) -> None:
        """Read the gauges from the server's parts when scraped."""
        self.streams.set_function(streams)
        self.blocking_busy.set_function(blocking_busy)
        self.strict_pools.set_function(strict_pools)
        self.strict_workers.set_function(strict_workers)
        self.reserved.set_function(reserved)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the bound port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
