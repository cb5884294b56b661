"""SVB's wire layer: the transport seam and its transports (see :mod:`.transport`).

The only client code that touches protobuf is :mod:`svb_client.wire.grpc_transport`; the
pipeline uses the domain objects in :mod:`svb_client.wire.messages`.

Errors: :class:`shared.errors.Error` ← :class:`ServerError` (UWV refused, or unreachable);
:class:`BatchDeferred` (a transport whose answers come later).
"""

from svb_client.wire.errors import ErrorInfo, ServerError
from svb_client.wire.grpc_transport import GrpcTransport
from svb_client.wire.messages import (
    BatchOpen,
    ChunkAnswer,
    EnclaveInfo,
    EncryptedChunk,
    Refusal,
    RuleStatus,
    RunBatch,
    RunReply,
    ServerInfo,
)
from svb_client.wire.transport import (
    BatchDeferred,
    EnclaveTransport,
    ScreeningTransport,
    Transport,
    WireStats,
)

__all__ = [
    "BatchDeferred",
    "BatchOpen",
    "ChunkAnswer",
    "EnclaveInfo",
    "EnclaveTransport",
    "EncryptedChunk",
    "ErrorInfo",
    "GrpcTransport",
    "Refusal",
    "RuleStatus",
    "RunBatch",
    "RunReply",
    "ScreeningTransport",
    "ServerError",
    "ServerInfo",
    "Transport",
    "WireStats",
]
