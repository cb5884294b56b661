"""Server reflection in both versions: ``grpc.reflection.v1`` (what current grpcurl, Postman and
grpcui ask for first) and ``grpc.reflection.v1alpha`` (older tools).

grpcio-reflection ships only the v1alpha servicer. The v1 protocol is the same messages under
another package name (the v1 proto is a copy of v1alpha with ``package grpc.reflection.v1``),
so the same servicer answers both: v1 is registered with the v1alpha message classes, which
are wire-identical, and its descriptor is added to the pool so that v1 can describe itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA: Final = reflection.SERVICE_NAME
V1: Final = "grpc.reflection.v1.ServerReflection"
_V1_FILE: Final = "grpc/reflection/v1/reflection.proto"


def _add_v1_descriptor() -> None:
    """The v1 file descriptor, derived from v1alpha's (package and type names renamed)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    fdp.name = _V1_FILE
    fdp.package = "grpc.reflection.v1"
    fdp.options.Clear()
    for message in fdp.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(".v1alpha.", ".v1.")
    for service in fdp.service:
        for method in service.method:
            method.input_type = method.input_type.replace(".v1alpha.", ".v1.")
            method.output_type = method.output_type.replace(".v1alpha.", ".v1.")
    pool.Add(fdp)


def enable_reflection(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection (v1 and v1alpha) for ``service_names`` and both reflection services."""
    _add_v1_descriptor()
    names = [*service_names, V1, V1ALPHA]
    servicer = reflection_aio.ReflectionServicer(names)
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    for name in (V1, V1ALPHA):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
