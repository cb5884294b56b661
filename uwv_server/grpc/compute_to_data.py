"""The ComputeToData service's gRPC adapter: proto → domain → service → proto.

Errors follow :mod:`uwv_server.grpc.errors` (status, diagnostics, ``ErrorDetail``). Budget
refusals are not errors: they are listed per household in the response and the rest of the
batch is evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

import grpc
import numpy as np
import numpy.typing as npt

from shared._proto.eligibility.v2 import enclave_pb2 as pb
from shared._proto.eligibility.v2 import enclave_pb2_grpc as pb_grpc
from shared.models import MAX_HOUSEHOLD_MEMBERS
from shared.pki import Identity
from uwv_server.enclave.approvals import RuleInfo
from uwv_server.enclave.errors import BatchRefused
from uwv_server.enclave.service import (
    MAX_RUN_HOUSEHOLDS,
    UNNAMED_REQUESTER,
    EnclaveService,
    RunOutcome,
    RunRequest,
)
from uwv_server.grpc.errors import abort
from uwv_server.grpc.runtime import (
    BlockingPool,
    Context,
    Runtime,
    ServiceRegistrar,
    identity_of,
)

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


def parse_run(request: pb.RunRequest, identity: Identity | None = None) -> RunRequest:
    """The proto request as a checked domain request; the requester is the authenticated
    caller (``identity``, from its certificate), or the unnamed client on an insecure server."""
    return RunRequest.parse(
        requester=UNNAMED_REQUESTER if identity is None else str(identity),
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
        # empty: a client that sends no cost-sharers (none in the batch, or older)
        cost_sharers=_array(request.cost_sharers_u8, "u1", "cost_sharers_u8")
        if request.cost_sharers_u8
        else None,
    )


def submit_response(info: RuleInfo) -> pb.SubmitRuleResponse:
    """A submitted rule's state as ``SubmitRule`` answers it (also in a sealed response)."""
    return pb.SubmitRuleResponse(status=_status(info))


def run_response(outcome: RunOutcome) -> pb.RunResponse:
    """A run's outcome as the contract's response (also what a sealed response file carries)."""
    return pb.RunResponse(
        outcomes=outcome.outcomes.tobytes(),
        refusals=[
            pb.Refusal(position=pos, code=refusal.code, reason=refusal.reason)
            for pos, refusal in sorted(outcome.refused.items())
        ],
        statement=outcome.statement,
        statement_digest=outcome.statement_digest,
    )


class ComputeToDataServicer(pb_grpc.ComputeToDataServiceServicer):
    """Thin adapter over :class:`EnclaveService`; its calls run on the blocking pool."""

    def __init__(self, service: EnclaveService, pool: BlockingPool) -> None:
        self.service = service
        self._pool = pool

    async def GetEnclaveInfo(
        self, request: pb.GetEnclaveInfoRequest, context: Context
    ) -> pb.GetEnclaveInfoResponse:
        s = self.service
        return pb.GetEnclaveInfoResponse(
            snapshot_digest=s.snapshot_digest,
            engine_digest=s.engine_digest,
            runner_key_id=s.runner_key.key_id,
            max_households=MAX_RUN_HOUSEHOLDS,
            max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
        )

    async def SubmitRule(
        self, request: pb.SubmitRuleRequest, context: Context
    ) -> pb.SubmitRuleResponse:
        try:
            info = await self._pool.run(self.service.submit, request.envelope)
            return submit_response(info)
        except Exception as exc:
            await abort(context, exc)

    async def GetRule(self, request: pb.GetRuleRequest, context: Context) -> pb.GetRuleResponse:
        try:
            info = await self._pool.run(self.service.info, request.rule_digest)
            return pb.GetRuleResponse(status=_status(info))
        except Exception as exc:
            await abort(context, exc)

    async def Run(self, request: pb.RunRequest, context: Context) -> pb.RunResponse:
        try:
            run = parse_run(request, identity_of(context))
            outcome = await self._pool.run(self.service.run, run)
        except Exception as exc:
            await abort(context, exc)
        return run_response(outcome)


def enclave_registrar(service: EnclaveService) -> ServiceRegistrar:
    """A registrar for :func:`uwv_server.grpc.server.build_server` (``extra_services=[…]``)."""

    def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        servicer = ComputeToDataServicer(service, runtime.pool)
        pb_grpc.add_ComputeToDataServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["ComputeToDataService"].full_name]

    return register
