"""The one error table of the gRPC layer: every service maps domain errors the same way."""

from __future__ import annotations

import grpc
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.audit import EntryError, ProofError, StorageError
from shared.crypto.errors import SigningError
from shared.errors import CryptoError, Error, InputError
from svb_client.wire.errors import ADVICE
from uwv_server.capacity import CapacityExceeded
from uwv_server.contexts import QuotaExceeded, UnknownContext
from uwv_server.enclave.errors import (
    ApprovalRefused,
    BatchRefused,
    NotRunnable,
    RunFailed,
    SubmissionRefused,
    UnknownRule,
)
from uwv_server.grpc.errors import STATUS_OF, classify, detail_of
from uwv_server.grpc.runtime import CallerStreamLimit, Draining, IdleStream, TotalStreamLimit
from uwv_server.service import ChunkError

S = grpc.StatusCode


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (UnknownContext("x"), S.FAILED_PRECONDITION),
        (CryptoError("x"), S.INVALID_ARGUMENT),
        (SubmissionRefused("x"), S.PERMISSION_DENIED),
        (SigningError("x"), S.PERMISSION_DENIED),
        (UnknownRule("x"), S.NOT_FOUND),
        (NotRunnable("x"), S.FAILED_PRECONDITION),
        (ApprovalRefused("x"), S.FAILED_PRECONDITION),
        (BatchRefused("x"), S.INVALID_ARGUMENT),
        (RunFailed("x"), S.ABORTED),
        (ProofError("x"), S.OUT_OF_RANGE),
        (StorageError("x"), S.OUT_OF_RANGE),
        (EntryError("x"), S.INVALID_ARGUMENT),
        (InputError("x"), S.INVALID_ARGUMENT),
        (ValueError("x"), S.INTERNAL),
    ],
)
def test_status_of_each_domain_error(exc: Exception, status: grpc.StatusCode) -> None:
    assert classify(exc)[0] == status


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (CallerStreamLimit("x"), S.RESOURCE_EXHAUSTED, pb.ERROR_CODE_STREAM_LIMIT_CALLER),
        (TotalStreamLimit("x"), S.RESOURCE_EXHAUSTED, pb.ERROR_CODE_STREAM_LIMIT_TOTAL),
        (CapacityExceeded("x"), S.RESOURCE_EXHAUSTED, pb.ERROR_CODE_MEMORY_BOUND),
        (QuotaExceeded("x"), S.RESOURCE_EXHAUSTED, pb.ERROR_CODE_CONTEXT_QUOTA),
        (Draining("x"), S.UNAVAILABLE, pb.ERROR_CODE_DRAINING),
        (IdleStream("x"), S.DEADLINE_EXCEEDED, pb.ERROR_CODE_IDLE_TIMEOUT),
    ],
)
def test_server_refusals_have_their_own_codes(
    exc: Exception, status: grpc.StatusCode, code: int
) -> None:
    assert classify(exc) == (status, code)
    assert detail_of(exc).code == code


def test_every_code_the_client_advises_on_exists() -> None:
    names = {name.removeprefix("ERROR_CODE_") for name in pb.ErrorCode.DESCRIPTOR.values_by_name}
    assert set(ADVICE) <= names


def test_no_row_is_shadowed_by_an_earlier_one() -> None:
    kinds = [kind for kind, _, _ in STATUS_OF]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(kind, earlier) for earlier in kinds[:i]), kind
    assert kinds[-1] is Error


def test_chunk_error_detail_names_the_position() -> None:
    bsn = detail_of(ChunkError("bad", slot=3, member=1, code="bsn"), chunk_index=7)
    assert (bsn.code, bsn.chunk_index, bsn.slot, bsn.member) == (pb.ERROR_CODE_INVALID_BSN, 7, 3, 1)
    assert detail_of(ChunkError("too many")).code == pb.ERROR_CODE_INVALID_CHUNK


def test_chunk_index_beyond_int32_is_unknown_not_an_overflow() -> None:
    detail = detail_of(ChunkError("bad"), chunk_index=2**31)
    assert detail.chunk_index == -1
    assert detail.message == "bad"


def test_internal_errors_do_not_leak_their_text() -> None:
    detail = detail_of(RuntimeError("/srv/secret/path exploded"))
    assert detail.code == pb.ERROR_CODE_INTERNAL
    assert "secret" not in detail.message
