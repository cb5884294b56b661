"""Errors of the wire layer: what UWV refused, or that it could not be reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.errors import Error

ADVICE: Final = {
    "STREAM_LIMIT_CALLER": (
        "UWV holds as many open batches for your organisation as it allows; wait for one to "
        "finish (or stop a stuck client) and run the command again: the journal resumes"
    ),
    "STREAM_LIMIT_TOTAL": (
        "UWV's server is serving as many batches as it takes from all organisations; run the "
        "command again later: the journal resumes"
    ),
    "MEMORY_BOUND": (
        "UWV's server has no memory left for another evaluator (its batches in progress go "
        "on); run the command again later: the journal resumes"
    ),
    "CONTEXT_QUOTA": (
        "UWV keeps as many of your organisation's keys as its quota allows; reuse a key UWV "
        "already has (--key) or ask UWV's operator to remove old ones"
    ),
    "DRAINING": (
        "UWV's server is shutting down and takes no new batches; run the command again in a "
        "few minutes (or against another server): the journal resumes"
    ),
    "IDLE_TIMEOUT": (
        "UWV closed the stream because this client sent nothing for too long; run the command "
        "again: the journal resumes"
    ),
}
"""What SVB's operator can do about each of UWV's refusals that are not about the input."""


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

    @property
    def advice(self) -> str:
        """What to do about UWV's refusal, for the codes that say so (else "")."""
        return ADVICE.get(self.detail.code, "") if self.detail is not None else ""

    def diagnostics(self) -> str:
        advice = self.advice
        return f"{self} ({advice})" if advice else str(self)
