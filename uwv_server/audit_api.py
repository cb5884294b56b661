"""The gRPC adapter of the audit log: proto ↔ :class:`shared.audit.LogService`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from shared._proto.eligibility.v1 import audit_pb2 as apb
from shared._proto.eligibility.v1 import audit_pb2_grpc as apb_grpc
from shared.audit import AuditError, ProofError, StorageError
from uwv_server.audit_trail import AuditTrail

MAX_ENTRIES_PER_CALL = 1000


class AuditLogServicer(apb_grpc.AuditLogServicer):
    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def _fail(self, context: grpc.ServicerContext, exc: AuditError) -> None:
        status = (
            grpc.StatusCode.OUT_OF_RANGE
            if isinstance(exc, ProofError | StorageError)
            else grpc.StatusCode.INVALID_ARGUMENT
        )
        context.abort(status, str(exc))

    def GetLogKey(self, request: apb.GetLogKeyRequest, context: grpc.ServicerContext) -> apb.LogKey:
        return apb.LogKey(
            origin=self._trail.service.log.origin,
            verifier_key=self._trail.signer.verifier.vkey(),
        )

    def GetCheckpoint(
        self, request: apb.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> apb.SignedCheckpoint:
        return apb.SignedCheckpoint(note=self._trail.service.checkpoint())

    def GetEntries(
        self, request: apb.GetEntriesRequest, context: grpc.ServicerContext
    ) -> apb.Entries:
        if request.end < request.start or request.end - request.start > MAX_ENTRIES_PER_CALL:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"ask for 0..{MAX_ENTRIES_PER_CALL} entries with start <= end",
            )
        try:
            return apb.Entries(leaves=self._trail.service.entries(request.start, request.end))
        except AuditError as exc:
            self._fail(context, exc)
            raise

    def GetInclusionProof(
        self, request: apb.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> apb.Proof:
        try:
            return apb.Proof(
                hashes=self._trail.service.inclusion_proof(request.index, request.tree_size)
            )
        except AuditError as exc:
            self._fail(context, exc)
            raise

    def GetConsistencyProof(
        self, request: apb.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> apb.Proof:
        try:
            return apb.Proof(
                hashes=self._trail.service.consistency_proof(request.old_size, request.new_size)
            )
        except AuditError as exc:
            self._fail(context, exc)
            raise


def audit_registrar(trail: AuditTrail) -> Callable[[grpc.Server], Sequence[str]]:
    """Adds the audit log service to a server (see ``build_server(extra_services=…)``)."""

    def register(server: grpc.Server) -> Sequence[str]:
        apb_grpc.add_AuditLogServicer_to_server(AuditLogServicer(trail), server)
        return [apb.DESCRIPTOR.services_by_name["AuditLog"].full_name]

    return register
