"""The server builder: one gRPC server with the screening service, health checking, reflection
and the further services (compute-to-data, audit log) registered by their modules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.wire import CHANNEL_OPTIONS
from uwv_server.grpc.screening import ScreeningServicer
from uwv_server.service import ScreeningService

ServiceRegistrar = Callable[[grpc.Server], Sequence[str]]
"""Adds further services (e.g. the compute-to-data service) and returns their full names."""


def build_server(
    service: ScreeningService,
    port: int,
    host: str = "127.0.0.1",
    max_workers: int = 8,
    extra_services: Sequence[ServiceRegistrar] = (),
) -> tuple[grpc.Server, int]:
    """A gRPC server with the screening service, health checking and reflection; not started."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers), options=list(CHANNEL_OPTIONS)
    )
    pb_grpc.add_ScreeningServiceServicer_to_server(ScreeningServicer(service), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set("eligibility.v2.ScreeningService", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    names = [
        pb.DESCRIPTOR.services_by_name["ScreeningService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    ]
    for register in extra_services:
        for name in register(server):
            names.append(name)
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return server, bound
