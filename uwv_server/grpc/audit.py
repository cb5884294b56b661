"""The AuditLog service's gRPC adapter: proto ↔ :class:`shared.audit.LogService`.

Errors follow :mod:`uwv_server.grpc.errors` (a range or proof the log cannot give is
``OUT_OF_RANGE``, other bad requests ``INVALID_ARGUMENT``).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from shared._proto.eligibility.v2 import audit_pb2 as apb
from shared._proto.eligibility.v2 import audit_pb2_grpc as apb_grpc
from shared.audit import AuditError
from shared.errors import InputError
from uwv_server.audit_trail import AuditTrail
from uwv_server.grpc.errors import abort
from uwv_server.grpc.runtime import BlockingPool, Context, Runtime, ServiceRegistrar

MAX_ENTRIES_PER_CALL = 1000


class AuditLogServicer(apb_grpc.AuditLogServiceServicer):
    """Thin adapter over the audit trail's log service; reads run on the blocking pool."""

    def __init__(self, trail: AuditTrail, pool: BlockingPool) -> None:
        self._trail = trail
        self._pool = pool

    async def GetLogKey(
        self, request: apb.GetLogKeyRequest, context: Context
    ) -> apb.GetLogKeyResponse:
        return apb.GetLogKeyResponse(
            origin=self._trail.service.log.origin,
            verifier_key=self._trail.signer.verifier.vkey(),
        )

    async def GetCheckpoint(
        self, request: apb.GetCheckpointRequest, context: Context
    ) -> apb.GetCheckpointResponse:
        return apb.GetCheckpointResponse(note=await self._pool.run(self._trail.service.checkpoint))

    async def GetEntries(
        self, request: apb.GetEntriesRequest, context: Context
    ) -> apb.GetEntriesResponse:
        if request.end < request.start or request.end - request.start > MAX_ENTRIES_PER_CALL:
            await abort(
                context, InputError(f"ask for 0..{MAX_ENTRIES_PER_CALL} entries with start <= end")
            )
        try:
            leaves = await self._pool.run(self._trail.service.entries, request.start, request.end)
            return apb.GetEntriesResponse(leaves=leaves)
        except AuditError as exc:
            await abort(context, exc)

    async def GetInclusionProof(
        self, request: apb.GetInclusionProofRequest, context: Context
    ) -> apb.GetInclusionProofResponse:
        try:
            hashes = await self._pool.run(
                self._trail.service.inclusion_proof, request.index, request.tree_size
            )
            return apb.GetInclusionProofResponse(hashes=hashes)
        except AuditError as exc:
            await abort(context, exc)

    async def GetConsistencyProof(
        self, request: apb.GetConsistencyProofRequest, context: Context
    ) -> apb.GetConsistencyProofResponse:
        try:
            hashes = await self._pool.run(
                self._trail.service.consistency_proof, request.old_size, request.new_size
            )
            return apb.GetConsistencyProofResponse(hashes=hashes)
        except AuditError as exc:
            await abort(context, exc)


def audit_registrar(trail: AuditTrail) -> ServiceRegistrar:
    """A registrar for :func:`uwv_server.grpc.server.build_server` (``extra_services=[…]``)."""

    def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        apb_grpc.add_AuditLogServiceServicer_to_server(
            AuditLogServicer(trail, runtime.pool), server
        )
        return [apb.DESCRIPTOR.services_by_name["AuditLogService"].full_name]

    return register
