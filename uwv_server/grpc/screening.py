"""The Screening service's gRPC adapter: proto → domain → service → proto, and nothing else.

Errors follow :mod:`uwv_server.grpc.errors`: those that end a stream carry their status and an
``ErrorDetail`` in trailing metadata; a bad chunk instead yields a failed ``ChunkResult`` and
the batch goes on.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Final

import grpc
import numpy as np
from google.protobuf.unknown_fields import UnknownFieldSet

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.errors import Error, InputError
from shared.he.params import BFV_PARAMETER_SETS, PARAMETER_SETS
from shared.models import MAX_HOUSEHOLD_MEMBERS, Period
from shared.wire import MAX_MESSAGE_BYTES
from uwv_server.grpc.errors import abort, detail_of
from uwv_server.service import Batch, BatchRequest, ChunkOutput, ScreeningService

log = logging.getLogger("uwv_server")

SERVER_VERSION: Final = "0.1.0"
IN_FLIGHT: Final = 4
"""Chunks evaluated concurrently per stream (strict mode keeps both worker processes busy)."""
_MODE_NAMES: Final = {pb.MODE_MASKED: "masked", pb.MODE_STRICT: "strict"}
_MODE_OF: Final = {name: mode for mode, name in _MODE_NAMES.items()}
_SLOT_CODE: Final = {
    "budget": pb.ERROR_CODE_BUDGET_EXHAUSTED,
    "duplicate": pb.ERROR_CODE_DUPLICATE_BSN,
}


_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9 ._:/@-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NINE_DIGITS = re.compile(r"[0-9]{9}")


def _label(text: str, field: str) -> str:
    """A short name for the audit log: it must not hold a run of nine digits (a BSN could)."""
    if not _LABEL.match(text) or _NINE_DIGITS.search(text):
        raise InputError(
            f"{field} {text[:80]!r} must be 1-64 letters, digits or ' ._:/@-', starting with a "
            "letter and without nine digits in a row"
        )
    return text


def _digest(text: str, field: str) -> str:
    if not _HEX64.match(text):
        raise InputError(f"{field} must be a SHA-256 digest in 64 lowercase hex digits")
    return text


def _no_unknown_fields(header: pb.BatchHeader) -> None:
    """Refuse fields the contract no longer has (field 7, the client's income weights)."""
    if UnknownFieldSet(header):
        raise InputError(
            "the header carries fields this server does not know (field 7 was income_weights: "
            "UWV now computes the income the approved rule defines; drop the field)"
        )


class ScreeningServicer(pb_grpc.ScreeningServiceServicer):
    def __init__(self, service: ScreeningService) -> None:
        self._service = service

    def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetServerInfoResponse:
        return pb.GetServerInfoResponse(
            server_version=SERVER_VERSION,
            parameter_sets=sorted([*PARAMETER_SETS, *BFV_PARAMETER_SETS]),
            modes=[_MODE_OF[m] for m in self._service.modes],
            max_households_per_chunk=max(
                [p.slots for p in PARAMETER_SETS.values()]
                + [p.slots for p in BFV_PARAMETER_SETS.values()]
            ),
            max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
            max_message_bytes=MAX_MESSAGE_BYTES,
            snapshot_digest=self._service.snapshot.digest,
        )

    def UploadContext(
        self, request: pb.UploadContextRequest, context: grpc.ServicerContext
    ) -> pb.UploadContextResponse:
        try:
            digest, known = self._service.contexts.upload(request.parameter_set, request.context)
        except Error as exc:
            abort(context, exc, field="context")
        log.info("context %s… %s", digest[:12], "already known" if known else "stored")
        return pb.UploadContextResponse(context_sha256=digest, already_known=known)

    def HasContext(
        self, request: pb.HasContextRequest, context: grpc.ServicerContext
    ) -> pb.HasContextResponse:
        return pb.HasContextResponse(known=self._service.contexts.known(request.context_sha256))

    def Screen(
        self, request_iterator: Iterator[pb.ScreenRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ScreenResponse]:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("item") != "header":
            abort(context, InputError("the first message of a batch must be its header"), "header")
        header = first.header
        try:
            mode = _MODE_NAMES.get(header.mode)
            if mode is None:
                raise InputError(f"mode {header.mode} is not a known mode")
            request = BatchRequest(
                batch_id=_label(header.batch_id, "batch_id"),
                context_sha256=header.context_sha256,
                mode=mode,
                period=Period.parse(header.period),
                rule_digest=header.rule_digest,
                chunk_count=header.chunk_count,
                requester=_label(header.requester or "unnamed client", "requester"),
            )
            _digest(header.rule_digest, "rule_digest")
            _no_unknown_fields(header)
            batch = self._service.open_batch(request)
        except Error as exc:
            abort(context, exc, field="header")
        try:
            yield from self._run_batch(batch, request_iterator, context)
        finally:
            self._service.close_batch(batch)

    def _run_batch(
        self,
        batch: Batch,
        request_iterator: Iterator[pb.ScreenRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[pb.ScreenResponse]:
        header = batch.request
        pending: deque[tuple[int, Future[ChunkOutput]]] = deque()
        for message in request_iterator:
            if not context.is_active():  # deadline passed or client went away
                log.info("batch %s: client gone after %d chunks", header.batch_id, batch.chunks)
                return
            if message.WhichOneof("item") != "chunk":
                abort(context, InputError("only chunks may follow the header"), "chunk")
            chunk = message.chunk
            try:
                future = self._service.submit_chunk(
                    batch,
                    chunk.index,
                    np.asarray(chunk.member_counts, dtype=np.int64),
                    np.asarray(chunk.member_bsns, dtype=np.int64),
                    list(chunk.ciphertexts),
                )
            except Error as exc:
                future = Future()
                future.set_exception(exc)
            pending.append((chunk.index, future))
            # Answer in order; keep a few chunks in flight so worker processes stay busy.
            while pending and (pending[0][1].done() or len(pending) > IN_FLIGHT):
                yield self._answer(batch, *pending.popleft())
        while pending:
            yield self._answer(batch, *pending.popleft())
        log.info(
            "batch %s done: %d chunks, %d households, %d failed chunks",
            header.batch_id,
            batch.chunks,
            batch.households,
            batch.failed_chunks,
        )
        yield pb.ScreenResponse(
            summary=pb.BatchSummary(
                chunks=batch.chunks, households=batch.households, failed_chunks=batch.failed_chunks
            )
        )

    def _answer(self, batch: Batch, index: int, future: Future[ChunkOutput]) -> pb.ScreenResponse:
        """The response for one chunk: its result, or its error (the batch goes on)."""
        try:
            output = future.result()
        except Error as exc:
            batch.failed_chunks += 1
            log.warning("batch %s chunk %d refused: %s", batch.request.batch_id, index, exc)
            return pb.ScreenResponse(
                result=pb.ChunkResult(index=index, error=detail_of(exc, chunk_index=index))
            )
        slot_errors = [
            pb.ErrorDetail(
                code=_SLOT_CODE.get(refusal.code, pb.ERROR_CODE_BUDGET_EXHAUSTED),
                message=refusal.reason,
                chunk_index=index,
                slot=slot,
            )
            for slot, refusal in sorted(output.refused_slots.items())
        ]
        return pb.ScreenResponse(
            result=pb.ChunkResult(
                index=index, ciphertexts=output.ciphertexts, slot_errors=slot_errors
            )
        )
