"""The AuditLog service's gRPC adapter: proto ↔ :class:`shared.audit.LogService`.

Errors follow :mod:`uwv_server.grpc.errors` (a range or proof the log cannot give is
``OUT_OF_RANGE``, other bad requests ``INVALID_ARGUMENT``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from shared._proto.eligibility.v2 import audit_pb2 as apb
from shared._proto.eligibility.v2 import audit_pb2_grpc as apb_grpc
from shared.audit import AuditError
from shared.errors import InputError
from uwv_server.audit_trail import AuditTrail
from uwv_server.grpc.errors import abort

MAX_ENTRIES_PER_CALL = 1000


class AuditLogServicer(apb_grpc.AuditLogServiceServicer):
    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def GetLogKey(
        self, request: apb.GetLogKeyRequest, context: grpc.ServicerContext
    ) -> apb.GetLogKeyResponse:
        return apb.GetLogKeyResponse(
            origin=self._trail.service.log.origin,
            verifier_key=self._trail.signer.verifier.vkey(),
        )

    def GetCheckpoint(
        self, request: apb.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> apb.GetCheckpointResponse:
        return apb.GetCheckpointResponse(note=self._trail.service.checkpoint())

    def GetEntries(
        self, request: apb.GetEntriesRequest, context: grpc.ServicerContext
    ) -> apb.GetEntriesResponse:
        if request.end < request.start or request.end - request.start > MAX_ENTRIES_PER_CALL:
            abort(
                context, InputError(f"ask for 0..{MAX_ENTRIES_PER_CALL} entries with start <= end")
            )
        try:
            return apb.GetEntriesResponse(
                leaves=self._trail.service.entries(request.start, request.end)
            )
        except AuditError as exc:
            abort(context, exc)

    def GetInclusionProof(
        self, request: apb.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> apb.GetInclusionProofResponse:
        try:
            return apb.GetInclusionProofResponse(
                hashes=self._trail.service.inclusion_proof(request.index, request.tree_size)
            )
        except AuditError as exc:
            abort(context, exc)

    def GetConsistencyProof(
        self, request: apb.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> apb.GetConsistencyProofResponse:
        try:
            return apb.GetConsistencyProofResponse(
                hashes=self._trail.service.consistency_proof(request.old_size, request.new_size)
            )
        except AuditError as exc:
            abort(context, exc)


def audit_registrar(trail: AuditTrail) -> Callable[[grpc.Server], Sequence[str]]:
    """A registrar for :func:`uwv_server.grpc.server.build_server` (``extra_services=[…]``)."""

    def register(server: grpc.Server) -> Sequence[str]:
        apb_grpc.add_AuditLogServiceServicer_to_server(AuditLogServicer(trail), server)
        return [apb.DESCRIPTOR.services_by_name["AuditLogService"].full_name]

    return register
