"""One table from domain errors to gRPC status codes and machine-readable error details.

Every service of the server (Screening, ComputeToData, AuditLog) uses it, so a client sees
the same convention everywhere:

- an error that ends a call carries the gRPC status of :data:`STATUS_OF`, the domain error's
  :meth:`~shared.errors.Error.diagnostics` as status text and an ``ErrorDetail`` in the
  trailing metadata key :data:`ERROR_METADATA_KEY`;
- an error of one chunk of a screening batch does not end the call: it becomes a failed
  ``ChunkResult`` carrying the same ``ErrorDetail`` (:func:`detail_of`);
- anything that is not a domain error is a bug: it is logged with its traceback and the
  caller gets ``INTERNAL`` with no detail of the server's internals.

The first matching row wins, so more specific classes come first.
"""

from __future__ import annotations

import logging
from typing import Any, Final, NoReturn, TypeAlias

import grpc

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.audit import ProofError, StorageError
from shared.crypto.errors import SigningError
from shared.errors import CryptoError, Error
from shared.wire import ERROR_METADATA_KEY
from uwv_server.budget import ReplayConflict
from uwv_server.capacity import CapacityExceeded
from uwv_server.contexts import KeysNotChecked, QuotaExceeded, UnknownContext
from uwv_server.enclave.errors import (
    ApprovalRefused,
    BatchRefused,
    NotRunnable,
    RunFailed,
    SubmissionRefused,
    UnknownRule,
)
from uwv_server.grpc.runtime import (
    CallerStreamLimit,
    Draining,
    IdleStream,
    Refused,
    RequesterMismatch,
    TotalStreamLimit,
)
from uwv_server.he_rules import RuleNotApproved
from uwv_server.key_checks import KeyCheckFailed, KeyCheckRefused, UnknownProposal
from uwv_server.service import ChunkError, ModeNotServed

log = logging.getLogger("uwv_server")

Code: TypeAlias = pb.ErrorCode.ValueType

STATUS_OF: Final[tuple[tuple[type[Exception], grpc.StatusCode, Code], ...]] = (
    # the server's own limits: retry later (or elsewhere)
    (Draining, grpc.StatusCode.UNAVAILABLE, pb.ERROR_CODE_DRAINING),
    (IdleStream, grpc.StatusCode.DEADLINE_EXCEEDED, pb.ERROR_CODE_IDLE_TIMEOUT),
    (CallerStreamLimit, grpc.StatusCode.RESOURCE_EXHAUSTED, pb.ERROR_CODE_STREAM_LIMIT_CALLER),
    (TotalStreamLimit, grpc.StatusCode.RESOURCE_EXHAUSTED, pb.ERROR_CODE_STREAM_LIMIT_TOTAL),
    (Refused, grpc.StatusCode.RESOURCE_EXHAUSTED, pb.ERROR_CODE_UNSPECIFIED),
    (CapacityExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED, pb.ERROR_CODE_MEMORY_BOUND),
    (QuotaExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED, pb.ERROR_CODE_CONTEXT_QUOTA),
    # identity: a message that claims to be someone else
    (RequesterMismatch, grpc.StatusCode.PERMISSION_DENIED, pb.ERROR_CODE_INVALID_HEADER),
    # screening
    (UnknownContext, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_UNKNOWN_CONTEXT),
    (RuleNotApproved, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_RULE_NOT_APPROVED),
    (ModeNotServed, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_UNSUPPORTED_MODE),
    # an id (batch, chunk, run) re-sent with other content: refused and logged (every mode)
    (ReplayConflict, grpc.StatusCode.ALREADY_EXISTS, pb.ERROR_CODE_REPLAY_CONFLICT),
    # strict mode's key check (cut-and-choose): a cheat caught, or a proposal refused
    (KeyCheckFailed, grpc.StatusCode.PERMISSION_DENIED, pb.ERROR_CODE_KEY_CHECK_FAILED),
    (KeyCheckRefused, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_KEY_CHECK_FAILED),
    (UnknownProposal, grpc.StatusCode.NOT_FOUND, pb.ERROR_CODE_KEY_CHECK_FAILED),
    (KeysNotChecked, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_KEY_CHECK_FAILED),
    (CryptoError, grpc.StatusCode.INVALID_ARGUMENT, pb.ERROR_CODE_INVALID_CIPHERTEXT),
    # compute-to-data
    (SubmissionRefused, grpc.StatusCode.PERMISSION_DENIED, pb.ERROR_CODE_UNSPECIFIED),
    (SigningError, grpc.StatusCode.PERMISSION_DENIED, pb.ERROR_CODE_UNSPECIFIED),
    (UnknownRule, grpc.StatusCode.NOT_FOUND, pb.ERROR_CODE_UNSPECIFIED),
    (NotRunnable, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_UNSPECIFIED),
    (ApprovalRefused, grpc.StatusCode.FAILED_PRECONDITION, pb.ERROR_CODE_UNSPECIFIED),
    (BatchRefused, grpc.StatusCode.INVALID_ARGUMENT, pb.ERROR_CODE_INVALID_CHUNK),
    (RunFailed, grpc.StatusCode.ABORTED, pb.ERROR_CODE_UNSPECIFIED),
    # audit log: a range or a proof the log cannot give
    (ProofError, grpc.StatusCode.OUT_OF_RANGE, pb.ERROR_CODE_UNSPECIFIED),
    (StorageError, grpc.StatusCode.OUT_OF_RANGE, pb.ERROR_CODE_UNSPECIFIED),
    # every other domain error is bad input from the caller
    (Error, grpc.StatusCode.INVALID_ARGUMENT, pb.ERROR_CODE_INVALID_HEADER),
)

INT32_MAX: Final = 2**31 - 1


def classify(exc: BaseException) -> tuple[grpc.StatusCode, Code]:
    """The status and error code of ``exc`` (``INTERNAL`` for anything not in the table)."""
    for kind, status, code in STATUS_OF:
        if isinstance(exc, kind):
            return status, code
    return grpc.StatusCode.INTERNAL, pb.ERROR_CODE_INTERNAL


def _int32(value: int) -> int:
    """A position for an ``int32`` field; -1 (unknown) when it does not fit."""
    return value if -1 <= value <= INT32_MAX else -1


def detail_of(exc: BaseException, *, field: str = "", chunk_index: int = -1) -> pb.ErrorDetail:
    """The machine-readable detail of ``exc``: code, message and where (field, chunk, slot)."""
    _, code = classify(exc)
    if isinstance(exc, ChunkError):  # it says which check the chunk failed
        code = pb.ERROR_CODE_INVALID_BSN if exc.code == "bsn" else pb.ERROR_CODE_INVALID_CHUNK
    message = exc.diagnostics() if isinstance(exc, Error) else "internal error"
    return pb.ErrorDetail(
        code=code,
        message=message,
        field=field,
        chunk_index=_int32(chunk_index),
        slot=_int32(getattr(exc, "slot", -1)),
        member=_int32(getattr(exc, "member", -1)),
    )


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], exc: BaseException, field: str = ""
) -> NoReturn:
    """End the call with the status of ``exc`` and its ``ErrorDetail`` in trailing metadata."""
    status, _ = classify(exc)
    if status == grpc.StatusCode.INTERNAL:
        log.error("unexpected error", exc_info=exc)
    detail = detail_of(exc, field=field)
    await context.abort(
        status,
        detail.message,
        trailing_metadata=((ERROR_METADATA_KEY, detail.SerializeToString()),),
    )
    raise AssertionError("unreachable")  # context.abort raises
