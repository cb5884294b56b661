"""The gRPC channel to UWV and the mapping of its errors to client errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import grpc

from shared._proto.eligibility.v1 import eligibility_pb2 as pb
from shared._proto.eligibility.v1 import eligibility_pb2_grpc as pb_grpc
from shared.errors import Error

MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
ERROR_METADATA_KEY: Final = "eligibility-error-bin"


class ServerError(Error):
    """UWV refused a request or could not be reached; ``detail`` is its machine-readable reason."""

    def __init__(self, message: str, detail: pb.ErrorDetail | None = None) -> None:
        super().__init__(message)
        self.detail = detail


def server_error(exc: grpc.RpcError, doing: str) -> ServerError:
    """Turn an RpcError into a ServerError carrying the server's ErrorDetail if it sent one."""
    detail = None
    call = exc if isinstance(exc, grpc.Call) else None
    if call is not None:
        for key, value in call.trailing_metadata() or ():
            if key == ERROR_METADATA_KEY and isinstance(value, bytes):
                detail = pb.ErrorDetail.FromString(value)
        code = call.code()
        text = call.details()
        if code == grpc.StatusCode.UNAVAILABLE:
            return ServerError(f"{doing}: UWV server unreachable ({text})", detail)
        return ServerError(f"{doing}: {code.name}: {text}", detail)
    return ServerError(f"{doing}: {exc}", detail)


def open_channel(target: str) -> grpc.Channel:
    """A channel to a UWV server with message limits set to the contract's."""
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )


class Connection:
    """A channel to one UWV server's screening service."""

    def __init__(self, target: str, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = open_channel(target)
        self.stub = pb_grpc.ScreeningStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def server_info(self) -> pb.ServerInfo:
        try:
            info: pb.ServerInfo = self.stub.GetServerInfo(
                pb.GetServerInfoRequest(), timeout=self.timeout, wait_for_ready=True
            )
            return info
        except grpc.RpcError as exc:
            raise server_error(exc, f"asking {self.target} for its parameters") from None

    def ensure_context(self, parameter_set: str, context: bytes, digest: str) -> bool:
        """Upload the public context unless the server has it; True if it was uploaded."""
        try:
            known = self.stub.HasContext(
                pb.HasContextRequest(context_sha256=digest), timeout=self.timeout
            ).known
            if known:
                return False
            reply = self.stub.UploadContext(
                pb.UploadContextRequest(parameter_set=parameter_set, context=context),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise server_error(exc, "uploading the public context") from None
        if reply.context_sha256 != digest:
            raise ServerError(f"server stored context {reply.context_sha256}, expected {digest}")
        return True

    def screen(
        self, requests: Iterator[pb.ScreenRequest], deadline_s: float | None
    ) -> Iterator[pb.ScreenResponse]:
        """Open the bidirectional screening stream."""
        yield from self.stub.Screen(requests, timeout=deadline_s)
