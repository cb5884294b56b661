"""Errors of the wire layer: what UWV refused, or that it could not be reached."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import Error


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """UWV's machine-readable reason (the contract's ``ErrorDetail``, without protobuf).

    ``code`` is the contract's error code name (``INVALID_BSN``, ``UNKNOWN_CONTEXT`` …);
    ``chunk_index``, ``slot`` and ``member`` are -1 where they do not apply.
    """

    code: str
    message: str
    field: str = ""
    chunk_index: int = -1
    slot: int = -1
    member: int = -1


class ServerError(Error):
    """UWV refused a request or could not be reached; ``detail`` is its reason when it sent one.

    ``status`` is the transport's status name (``UNAVAILABLE``, ``INVALID_ARGUMENT`` …) or ""
    when the transport has none.
    """

    def __init__(self, message: str, detail: ErrorInfo | None = None, status: str = "") -> None:
        super().__init__(message)
        self.detail = detail
        self.status = status
