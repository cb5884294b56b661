"""The Screening service's gRPC adapter: proto → domain → service → proto, and nothing else.

Errors follow :mod:`uwv_server.grpc.errors`: those that end a stream carry their status and an
``ErrorDetail`` in trailing metadata; a bad chunk instead yields a failed ``ChunkResult`` and
the batch goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import numpy as np
from google.protobuf.unknown_fields import UnknownFieldSet

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.errors import Error, InputError
from shared.he.params import BFV_PARAMETER_SETS, PARAMETER_SETS
from shared.models import MAX_HOUSEHOLD_MEMBERS, Period
from shared.pki import Identity
from shared.sealed.identity import Party
from shared.wire import MAX_MESSAGE_BYTES
from uwv_server.grpc.errors import abort, detail_of
from uwv_server.grpc.metrics import ServerMetrics
from uwv_server.grpc.runtime import (
    Admission,
    BlockingPool,
    Context,
    IdleStream,
    Refused,
    RequesterMismatch,
    ServerLimits,
    caller_of,
    identity_of,
)
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


def _requester(claimed: str, identity: Identity | Party | None) -> str:
    """Who asks, for the audit log: the authenticated caller, which the message may name (by
    OIN, organisation or both as logged) but never contradict: the certificate of the TLS
    connection, or the verified signer of a sealed file. On an insecure loopback server there
    is no identity and the message's label is taken as it is."""
    if identity is None:
        return _label(claimed or "unnamed client", "requester")
    if claimed not in ("", identity.oin, identity.organisation, str(identity)):
        raise RequesterMismatch(
            f"requester {claimed[:80]!r} is not the authenticated caller {identity}: send its "
            "OIN, its organisation name or nothing"
        )
    return str(identity)


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


def batch_request(
    header: pb.BatchHeader, claimed: str, identity: Identity | Party | None
) -> BatchRequest:
    """A batch header as a domain request, with every check of the contract (gRPC and sealed
    files alike): known mode, labels, period, the caller as :func:`_requester` decides it,
    the rule digest's form and no field the contract no longer has."""
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
        requester=_requester(claimed, identity),
    )
    _digest(header.rule_digest, "rule_digest")
    _no_unknown_fields(header)
    return request


@dataclass(slots=True)
class _Stream:
    """What the idle timeout needs to know about one stream."""

    last_activity: float
    in_flight: int = 0


class ScreeningServicer(pb_grpc.ScreeningServiceServicer):
    """The Screening service on the asyncio server: domain calls run on the blocking pool,
    results are written as soon as each chunk is evaluated (in order)."""

    def __init__(
        self,
        service: ScreeningService,
        *,
        limits: ServerLimits | None = None,
        admission: Admission | None = None,
        pool: BlockingPool | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self._service = service
        self._limits = limits if limits is not None else ServerLimits()
        self._admission = admission if admission is not None else Admission(self._limits)
        self._pool = pool if pool is not None else BlockingPool(self._limits.blocking_workers)
        self._metrics = metrics if metrics is not None else ServerMetrics()

    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: Context
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
            strict_key_sets=0
            if self._service.contexts.unsafe_trust_strict_keys
            else self._service.contexts.key_check.key_sets,
        )

    async def UploadContext(
        self, request: pb.UploadContextRequest, context: Context
    ) -> pb.UploadContextResponse:
        caller = caller_of(context)
        try:
            digest, known = await self._pool.run(
                self._service.contexts.upload, request.parameter_set, request.context, caller
            )
        except Error as exc:
            self._refused(exc)
            await abort(context, exc, field="context")
        log.info("context %s… %s", digest[:12], "already known" if known else "stored")
        return pb.UploadContextResponse(context_sha256=digest, already_known=known)

    async def HasContext(
        self, request: pb.HasContextRequest, context: Context
    ) -> pb.HasContextResponse:
        known = await self._pool.run(self._service.contexts.known, request.context_sha256)
        return pb.HasContextResponse(known=known)

    async def ProposeKeySets(
        self, request_iterator: AsyncIterator[pb.ProposeKeySetsRequest], context: Context
    ) -> pb.ProposeKeySetsResponse:
        """Strict mode's key check, step 1: K contexts in, the challenge out."""
        caller = caller_of(context)
        check = self._service.contexts.key_check
        contexts: list[bytes] = []
        parameter_set = ""
        async for message in request_iterator:
            if contexts and message.parameter_set != parameter_set:
                await abort(
                    context,
                    InputError("every message of a proposal names the same parameter_set"),
                    "parameter_set",
                )
            parameter_set = message.parameter_set
            contexts.append(message.context)
            if len(contexts) > check.key_sets:
                await abort(
                    context,
                    InputError(f"a proposal has exactly {check.key_sets} contexts, got more"),
                    "context",
                )
        try:
            challenge = await self._pool.run(
                check.propose, caller, parameter_set, contexts, self._service.audit
            )
        except Error as exc:
            self._refused(exc)
            await abort(context, exc, field="context")
        log.info(
            "key check %s by %s: %d sets, set %d stays closed",
            challenge.proposal_id[:12],
            caller,
            challenge.key_sets,
            challenge.chosen,
        )
        return pb.ProposeKeySetsResponse(
            proposal_id=challenge.proposal_id,
            chosen_index=challenge.chosen,
            key_sets=challenge.key_sets,
            context_sha256=list(challenge.digests),
            already_accepted=challenge.accepted,
        )

    async def OpenKeySets(
        self, request: pb.OpenKeySetsRequest, context: Context
    ) -> pb.OpenKeySetsResponse:
        """Strict mode's key check, step 2: the other seeds in, the accepted digest out."""
        caller = caller_of(context)
        check = self._service.contexts.key_check
        try:
            digest = await self._pool.run(
                check.open, caller, request.proposal_id, list(request.seeds), self._service.audit
            )
        except Error as exc:
            self._refused(exc)
            log.warning("key check %s by %s refused: %s", request.proposal_id[:12], caller, exc)
            await abort(context, exc, field="seeds")
        log.info("key check %s by %s: accepted %s…", request.proposal_id[:12], caller, digest[:12])
        return pb.OpenKeySetsResponse(context_sha256=digest)

    def _refused(self, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, Refused) else type(exc).__name__
        self._metrics.refusals.labels(reason=reason).inc()

    async def Screen(
        self, request_iterator: AsyncIterator[pb.ScreenRequest], context: Context
    ) -> AsyncIterator[pb.ScreenResponse]:
        caller = caller_of(context)
        try:
            async with self._admission.stream(caller):
                async for response in self._screen(request_iterator, context):
                    yield response
        except Refused as exc:
            self._refused(exc)
            await abort(context, exc)

    async def _screen(
        self, request_iterator: AsyncIterator[pb.ScreenRequest], context: Context
    ) -> AsyncIterator[pb.ScreenResponse]:
        loop = asyncio.get_running_loop()
        stream = _Stream(last_activity=loop.time())
        messages = aiter(request_iterator)
        first = await self._next(messages, stream)
        if first is None or first.WhichOneof("item") != "header":
            await abort(
                context, InputError("the first message of a batch must be its header"), "header"
            )
        header = first.header
        try:
            request = batch_request(header, header.requester, identity_of(context))
            mode = request.mode
            batch = await self._pool.run(self._service.open_batch, request)
        except Error as exc:
            self._refused(exc)
            await abort(context, exc, field="header")
        self._metrics.batches.labels(mode=mode).inc()
        try:
            async for response in self._run_batch(batch, messages, stream, context):
                yield response
        finally:
            # Also when the call is cancelled: the audit entry and the evaluator's lease must
            # not depend on the client staying (shield: a second cancel cannot skip it).
            await asyncio.shield(self._pool.run(self._service.close_batch, batch))

    async def _next(
        self, messages: AsyncIterator[pb.ScreenRequest], stream: _Stream
    ) -> pb.ScreenRequest | None:
        """The next client message, or None at the end; raises :class:`IdleStream` when the
        client sent nothing and the server owed it nothing for the idle timeout. The read is
        never cancelled (a cancelled read would end the call), only waited for."""
        loop = asyncio.get_running_loop()
        read = asyncio.ensure_future(anext(messages, None))
        idle = self._limits.idle_timeout_s
        while True:
            quiet = loop.time() - stream.last_activity
            done, _ = await asyncio.wait({read}, timeout=max(idle - quiet, 0.001))
            if done:
                stream.last_activity = loop.time()
                return read.result()
            if stream.in_flight == 0 and loop.time() - stream.last_activity >= idle:
                read.cancel()
                raise IdleStream(
                    f"no message on this stream for {idle:g} s while nothing was pending; "
                    "the batch is closed (a resumed run re-sends what is missing)"
                )

    async def _run_batch(
        self,
        batch: Batch,
        messages: AsyncIterator[pb.ScreenRequest],
        stream: _Stream,
        context: Context,
    ) -> AsyncIterator[pb.ScreenResponse]:
        header = batch.request
        loop = asyncio.get_running_loop()
        # (index, evaluation) in arrival order; None at the end; an exception to end the call.
        queue: asyncio.Queue[tuple[int, asyncio.Future[ChunkOutput]] | BaseException | None]
        queue = asyncio.Queue(maxsize=IN_FLIGHT)

        async def submit(chunk: pb.Chunk) -> asyncio.Future[ChunkOutput]:
            """Validate, charge and start one chunk (in arrival order: the budget and the
            retry memory see the stream's chunks one after another, as sent); its evaluation
            then runs on while the next chunk is read."""
            started = loop.time()
            households = len(chunk.member_counts)
            try:
                inner = await self._pool.run(
                    self._service.submit_chunk,
                    batch,
                    chunk.index,
                    np.asarray(chunk.member_counts, dtype=np.int64),
                    np.asarray(chunk.member_bsns, dtype=np.int64),
                    list(chunk.ciphertexts),
                )
            except Exception as exc:
                failed: asyncio.Future[ChunkOutput] = loop.create_future()
                failed.set_exception(exc)
                return failed

            async def finish() -> ChunkOutput:
                output = await asyncio.wrap_future(inner)
                self._metrics.chunk_seconds.labels(mode=header.mode).observe(loop.time() - started)
                self._metrics.households.labels(mode=header.mode).inc(households)
                return output

            return asyncio.ensure_future(finish())

        async def read() -> None:
            try:
                while True:
                    message = await self._next(messages, stream)
                    if message is None:
                        break
                    if message.WhichOneof("item") != "chunk":
                        raise _FieldError(InputError("only chunks may follow the header"), "chunk")
                    stream.in_flight += 1
                    task = await submit(message.chunk)
                    await queue.put((message.chunk.index, task))
                await queue.put(None)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # handed to the writer, which ends the call
                await queue.put(exc)

        reader = asyncio.ensure_future(read())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    if isinstance(item, Refused):
                        self._refused(item)
                    if isinstance(item, _FieldError):
                        await abort(context, item.error, item.field)
                    await abort(context, item)
                index, task = item
                response = await self._answer(batch, index, task)
                stream.in_flight -= 1
                stream.last_activity = loop.time()
                yield response
        finally:
            reader.cancel()
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

    async def _answer(
        self, batch: Batch, index: int, task: asyncio.Future[ChunkOutput]
    ) -> pb.ScreenResponse:
        """The response for one chunk: its result, or its error (the batch goes on)."""
        try:
            output = await task
        except Error as exc:
            return self._failed(batch, index, exc)
        return self._result(index, output)

    def answer_now(
        self, batch: Batch, index: int, future: concurrent.futures.Future[ChunkOutput]
    ) -> pb.ScreenResponse:
        """:meth:`_answer` for a caller without an event loop (``uwv-server process``)."""
        try:
            output = future.result()
        except Error as exc:
            return self._failed(batch, index, exc)
        return self._result(index, output)

    def _failed(self, batch: Batch, index: int, exc: Error) -> pb.ScreenResponse:
        batch.failed_chunks += 1
        detail = detail_of(exc, chunk_index=index)
        self._metrics.refusals.labels(reason=pb.ErrorCode.Name(detail.code)).inc()
        log.warning("batch %s chunk %d refused: %s", batch.request.batch_id, index, exc)
        return pb.ScreenResponse(result=pb.ChunkResult(index=index, error=detail))

    def _result(self, index: int, output: ChunkOutput) -> pb.ScreenResponse:
        slot_errors = [
            pb.ErrorDetail(
                code=_SLOT_CODE.get(refusal.code, pb.ERROR_CODE_BUDGET_EXHAUSTED),
                message=refusal.reason,
                chunk_index=index,
                slot=slot,
            )
            for slot, refusal in sorted(output.refused_slots.items())
        ]
        self._metrics.budget_refused.inc(
            sum(1 for r in output.refused_slots.values() if r.code == "budget")
        )
        return pb.ScreenResponse(
            result=pb.ChunkResult(
                index=index, ciphertexts=output.ciphertexts, slot_errors=slot_errors
            )
        )


class _FieldError(Exception):
    """A domain error and the field it is about, passed from the reader to the writer."""

    def __init__(self, error: Error, field: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.field = field
