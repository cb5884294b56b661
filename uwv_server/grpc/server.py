"""The server builder: one asyncio gRPC server with the screening service, health checking,
reflection (v1 and v1alpha) and the further services registered by their modules, run on an
event loop of its own so that the CLI, tests and benchmarks drive it with plain calls.

Shutdown (:meth:`Server.drain`): health (``Check`` and ``Watch``) turns NOT_SERVING for every
service, new batches are refused with UNAVAILABLE, running batches go on for the grace period,
then the server stops. A client cut off at the end resumes from its journal on the next start.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.wire import CHANNEL_OPTIONS
from uwv_server.grpc.auth import AuthInterceptor, Authoriser
from uwv_server.grpc.metrics import ServerMetrics
from uwv_server.grpc.reflection import enable_reflection
from uwv_server.grpc.runtime import (
    Admission,
    BlockingPool,
    Runtime,
    ServerLimits,
    ServiceRegistrar,
)
from uwv_server.grpc.screening import ScreeningServicer
from uwv_server.service import ScreeningService

log = logging.getLogger("uwv_server")
T = TypeVar("T")

__all__ = ["Server", "ServiceRegistrar", "TlsConfig", "build_server", "is_loopback"]


class Server:
    """A UWV gRPC server on its own event-loop thread; see :func:`build_server`."""

    def __init__(
        self,
        service: ScreeningService,
        *,
        limits: ServerLimits,
        metrics: ServerMetrics,
        extra_services: Sequence[ServiceRegistrar],
        tls: TlsConfig | None = None,
    ) -> None:
        self.service = service
        self.tls = tls
        self.limits = limits
        self.metrics = metrics
        self.admission = Admission(limits)
        self.pool = BlockingPool(limits.blocking_workers)
        self.runtime = Runtime(limits, self.admission, self.pool, metrics)
        self._extra = extra_services
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grpc-aio", daemon=True)
        self._thread.start()
        self._server: grpc.aio.Server | None = None
        self.health: Any = None
        self.service_names: list[str] = []
        self._stopped = False
        evaluators = service.contexts.evaluators
        metrics.watch(
            streams=lambda: self.admission.open_streams,
            blocking_busy=lambda: self.pool.busy,
            strict_pools=lambda: evaluators.stats()[0],
            strict_workers=lambda: evaluators.stats()[1],
            reserved=lambda: evaluators.reserved_bytes,
        )

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    async def _build(self, host: str, port: int) -> int:
        options = [*CHANNEL_OPTIONS, *self.limits.channel_options()]
        interceptors = [] if self.tls is None else [AuthInterceptor(self.tls.authoriser)]
        server = grpc.aio.server(options=options, interceptors=interceptors)
        self._server = server
        screening = ScreeningServicer(
            self.service,
            limits=self.limits,
            admission=self.admission,
            pool=self.pool,
            metrics=self.metrics,
        )
        pb_grpc.add_ScreeningServiceServicer_to_server(screening, server)
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [
            pb.DESCRIPTOR.services_by_name["ScreeningService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        ]
        for register in self._extra:
            names.extend(register(server, self.runtime))
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        enable_reflection(names, server)
        self.service_names = names
        address = f"{host}:{port}"
        if self.tls is None:
            if not is_loopback(host):
                raise OSError(
                    f"refusing to serve plaintext on {host}: without TLS only a loopback "
                    "address (127.0.0.1, ::1, localhost) is allowed"
                )
            log.warning(
                "UNSAFE: serving WITHOUT TLS on %s: no caller is authenticated, every caller "
                "may call everything; for development on this machine only",
                address,
            )
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, self.tls.credentials)
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        return bound

    def bind(self, host: str, port: int) -> int:
        return self._call(self._build(host, port))

    def start(self) -> None:
        assert self._server is not None
        self._call(self._server.start())

    async def _drain(self, grace_s: float) -> bool:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING, also to Watch streams
        log.info(
            "draining: NOT_SERVING, no new batches, %d stream(s) open, grace %.0f s",
            self.admission.open_streams,
            grace_s,
        )
        drained = await self.admission.drain(grace_s)
        if not drained:
            log.warning(
                "grace period over with %d stream(s) still open: cutting them off (their "
                "clients resume from their journals)",
                self.admission.open_streams,
            )
        return drained

    def drain(self, grace_s: float | None = None) -> bool:
        """Stop taking batches and wait for running ones (``grace_s``, default the limits');
        True if every stream ended within the grace period. The server still answers health
        checks (NOT_SERVING) until :meth:`stop`."""
        return self._call(self._drain(self.limits.drain_grace_s if grace_s is None else grace_s))

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (calls still running after ``grace`` seconds are cancelled)."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._call(self._server.stop(grace))
        self.pool.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


@dataclass(frozen=True)
class TlsConfig:
    """Mutual TLS: the server's credentials (client certificates required, e.g.
    :func:`shared.pki.reloading_server_credentials`) and who may call what."""

    credentials: grpc.ServerCredentials
    authoriser: Authoriser


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_server(
    service: ScreeningService,
    port: int,
    host: str = "127.0.0.1",
    extra_services: Sequence[ServiceRegistrar] = (),
    *,
    limits: ServerLimits | None = None,
    metrics: ServerMetrics | None = None,
    tls: TlsConfig | None = None,
) -> tuple[Server, int]:
    """A server with the screening service, health and reflection, bound but not started.

    With ``tls`` every service (health and reflection included) is served over mutual TLS
    and every call is authenticated and authorised (:mod:`uwv_server.grpc.auth`). Without it
    the server is plaintext, which is refused on anything but a loopback address and logged
    as unsafe.
    """
    server = Server(
        service,
        limits=limits if limits is not None else ServerLimits(),
        metrics=metrics if metrics is not None else ServerMetrics(),
        extra_services=extra_services,
        tls=tls,
    )
    try:
        bound = server.bind(host, port)
    except BaseException:
        server.stop()
        raise
    return server, bound
