"""The gRPC adapter of the compute-to-data service: proto → domain → service → proto.

Domain errors map to gRPC status codes in one table (:data:`STATUS_OF`); the status details
carry the domain error's diagnostics. Budget refusals are not errors: they are listed per
household in the response and the rest of the batch is evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final, NoReturn

import grpc
import numpy as np
import numpy.typing as npt

from shared._proto.eligibility.v1 import enclave_pb2 as pb
from shared._proto.eligibility.v1 import enclave_pb2_grpc as pb_grpc
from shared.crypto.errors import SigningError
from shared.errors import Error
from shared.models import MAX_HOUSEHOLD_MEMBERS
from uwv_server.enclave.approvals import RuleInfo
from uwv_server.enclave.errors import (
    ApprovalRefused,
    BatchRefused,
    NotRunnable,
    RunFailed,
    SubmissionRefused,
    UnknownRule,
)
from uwv_server.enclave.service import MAX_RUN_HOUSEHOLDS, EnclaveService, RunRequest

log = logging.getLogger("uwv_server.enclave")

STATUS_OF: Final[list[tuple[type[Exception], grpc.StatusCode]]] = [
    (SubmissionRefused, grpc.StatusCode.PERMISSION_DENIED),
    (SigningError, grpc.StatusCode.PERMISSION_DENIED),
    (UnknownRule, grpc.StatusCode.NOT_FOUND),
    (NotRunnable, grpc.StatusCode.FAILED_PRECONDITION),
    (ApprovalRefused, grpc.StatusCode.FAILED_PRECONDITION),
    (BatchRefused, grpc.StatusCode.INVALID_ARGUMENT),
    (RunFailed, grpc.StatusCode.ABORTED),
    (Error, grpc.StatusCode.INVALID_ARGUMENT),
]
_STATE: Final = {
    "pending": pb.RULE_STATE_PENDING,
    "approved": pb.RULE_STATE_APPROVED,
    "expired": pb.RULE_STATE_EXPIRED,
    "rejected": pb.RULE_STATE_REJECTED,
    "revoked": pb.RULE_STATE_REVOKED,
}


def _abort(context: grpc.ServicerContext, exc: Exception) -> NoReturn:
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            text = exc.diagnostics() if isinstance(exc, Error) else str(exc)
            context.abort(status, text)
    log.exception("unexpected error in the compute-to-data service")
    context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _status(info: RuleInfo) -> pb.RuleStatus:
    return pb.RuleStatus(
        rule_digest=info.digest,
        state=_STATE.get(info.state, pb.RULE_STATE_UNSPECIFIED),
        reason=info.state_reason,
        verifier_accepted=info.accepted,
        report_text=info.report_text,
        report_json=info.report_json,
    )


def _array(data: bytes, dtype: str, field: str) -> npt.NDArray[Any]:
    size = np.dtype(dtype).itemsize
    if len(data) % size:
        raise BatchRefused(
            f"{field} has {len(data)} bytes, not a whole number of {size}-byte values"
        )
    return np.frombuffer(data, dtype=dtype)


def parse_run(request: pb.RunRequest) -> RunRequest:
    """The proto request as a checked domain request."""
    return RunRequest.parse(
        run_id=request.run_id,
        rule_digest=request.rule_digest,
        period=request.period,
        salt=request.salt,
        member_counts=_array(request.member_counts_le64, "<i8", "member_counts_le64"),
        member_bsns=_array(request.member_bsns_le64, "<i8", "member_bsns_le64"),
        is_couple=_array(request.is_couple_u8, "u1", "is_couple_u8") == 1,
        known_income_cents=_array(
            request.known_income_cents_le64, "<i8", "known_income_cents_le64"
        ),
    )


class ComputeToDataServicer(pb_grpc.ComputeToDataServicer):
    """Thin adapter over :class:`EnclaveService`."""

    def __init__(self, service: EnclaveService) -> None:
        self.service = service

    def GetEnclaveInfo(
        self, request: pb.GetEnclaveInfoRequest, context: grpc.ServicerContext
    ) -> pb.EnclaveInfo:
        s = self.service
        return pb.EnclaveInfo(
            snapshot_digest=s.snapshot_digest,
            engine_digest=s.engine_digest,
            runner_key_id=s.runner_key.key_id,
            max_households=MAX_RUN_HOUSEHOLDS,
            max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
        )

    def SubmitRule(
        self, request: pb.SubmitRuleRequest, context: grpc.ServicerContext
    ) -> pb.RuleStatus:
        try:
            return _status(self.service.submit(request.envelope))
        except Exception as exc:
            _abort(context, exc)

    def GetRule(self, request: pb.GetRuleRequest, context: grpc.ServicerContext) -> pb.RuleStatus:
        try:
            return _status(self.service.info(request.rule_digest))
        except Exception as exc:
            _abort(context, exc)

    def Run(self, request: pb.RunRequest, context: grpc.ServicerContext) -> pb.RunResponse:
        try:
            outcome = self.service.run(parse_run(request))
        except Exception as exc:
            _abort(context, exc)
        return pb.RunResponse(
            outcomes=outcome.outcomes.tobytes(),
            refusals=[
                pb.Refusal(position=pos, code="budget", reason=reason)
                for pos, reason in sorted(outcome.refused.items())
            ],
            statement=outcome.statement,
            statement_digest=outcome.statement_digest,
        )


def enclave_registrar(service: EnclaveService) -> Callable[[grpc.Server], Sequence[str]]:
    """A registrar for :func:`uwv_server.grpc_api.build_server` (``extra_services=[…]``)."""

    def register(server: grpc.Server) -> Sequence[str]:
        pb_grpc.add_ComputeToDataServicer_to_server(ComputeToDataServicer(service), server)
        return [pb.DESCRIPTOR.services_by_name["ComputeToData"].full_name]

    return register
