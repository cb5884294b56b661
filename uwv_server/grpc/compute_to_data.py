"""The ComputeToData service's gRPC adapter: proto → domain → service → proto.

Errors follow :mod:`uwv_server.grpc.errors` (status, diagnostics, ``ErrorDetail``). Budget
refusals are not errors: they are listed per household in the response and the rest of the
batch is evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

import grpc
import numpy as np
import numpy.typing as npt

from shared._proto.eligibility.v2 import enclave_pb2 as pb
from shared._proto.eligibility.v2 import enclave_pb2_grpc as pb_grpc
from shared.models import MAX_HOUSEHOLD_MEMBERS
from uwv_server.enclave.approvals import RuleInfo
from uwv_server.enclave.errors import BatchRefused
from uwv_server.enclave.service import MAX_RUN_HOUSEHOLDS, EnclaveService, RunRequest
from uwv_server.grpc.errors import abort

log = logging.getLogger("uwv_server.enclave")

_STATE: Final = {
    "pending": pb.RULE_STATE_PENDING,
    "approved": pb.RULE_STATE_APPROVED,
    "expired": pb.RULE_STATE_EXPIRED,
    "rejected": pb.RULE_STATE_REJECTED,
    "revoked": pb.RULE_STATE_REVOKED,
}


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


class ComputeToDataServicer(pb_grpc.ComputeToDataServiceServicer):
    """Thin adapter over :class:`EnclaveService`."""

    def __init__(self, service: EnclaveService) -> None:
        self.service = service

    def GetEnclaveInfo(
        self, request: pb.GetEnclaveInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetEnclaveInfoResponse:
        s = self.service
        return pb.GetEnclaveInfoResponse(
            snapshot_digest=s.snapshot_digest,
            engine_digest=s.engine_digest,
            runner_key_id=s.runner_key.key_id,
            max_households=MAX_RUN_HOUSEHOLDS,
            max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
        )

    def SubmitRule(
        self, request: pb.SubmitRuleRequest, context: grpc.ServicerContext
    ) -> pb.SubmitRuleResponse:
        try:
            return pb.SubmitRuleResponse(status=_status(self.service.submit(request.envelope)))
        except Exception as exc:
            abort(context, exc)

    def GetRule(
        self, request: pb.GetRuleRequest, context: grpc.ServicerContext
    ) -> pb.GetRuleResponse:
        try:
            return pb.GetRuleResponse(status=_status(self.service.info(request.rule_digest)))
        except Exception as exc:
            abort(context, exc)

    def Run(self, request: pb.RunRequest, context: grpc.ServicerContext) -> pb.RunResponse:
        try:
            outcome = self.service.run(parse_run(request))
        except Exception as exc:
            abort(context, exc)
        return pb.RunResponse(
            outcomes=outcome.outcomes.tobytes(),
            refusals=[
                pb.Refusal(position=pos, code=refusal.code, reason=refusal.reason)
                for pos, refusal in sorted(outcome.refused.items())
            ],
            statement=outcome.statement,
            statement_digest=outcome.statement_digest,
        )


def enclave_registrar(service: EnclaveService) -> Callable[[grpc.Server], Sequence[str]]:
    """A registrar for :func:`uwv_server.grpc.server.build_server` (``extra_services=[…]``)."""

    def register(server: grpc.Server) -> Sequence[str]:
        pb_grpc.add_ComputeToDataServiceServicer_to_server(ComputeToDataServicer(service), server)
        return [pb.DESCRIPTOR.services_by_name["ComputeToDataService"].full_name]

    return register
