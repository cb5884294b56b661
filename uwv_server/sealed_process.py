"""``uwv-server process``: a sealed request file in, a sealed response file out, offline.

The same :class:`~uwv_server.service.ScreeningService` as ``serve`` (same budget, same audit
trail, same evaluators) and the same conversions of the contract's messages as the gRPC
adapter (:mod:`uwv_server.grpc.screening`); only the transport differs. In order:

1. **verify the whole request** (pass 1): addressed to UWV's sealing key, signed by an
   organisation whose registry role may screen, every chunk authentic, trailer signed, and
   not an id already processed from another file. Nothing is charged before this passed;
2. **evaluate** (pass 2, the same file, checked to be the one verified): context, header,
   then each chunk through ``submit_chunk`` (validate → charge → evaluate), answers written in
   order to the response as they come, with progress on stderr;
3. **seal the response** to the reply key the request carried (verified to be the sender's),
   bound to the request's id and the SHA-256 of the request file; written to ``OUT.partial``
   and renamed when complete, then the request is recorded as processed.

Interrupted anywhere, the same command runs again: no response file exists yet, the request is
not marked processed, and the budget does not charge a (batch, chunk) twice (no answer left
UWV, so re-evaluating leaks nothing). A request already processed gets the response that was
sent for it, byte for byte, from ``S/sealed-responses`` (no second masked sample, no charge);
another file with the same id is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TextIO

import numpy as np

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.errors import Error
from shared.sealed import (
    InReplyTo,
    MessageKind,
    ProcessedIds,
    ReceiverKey,
    Recipient,
    SealedSummary,
    SenderKey,
    SenderVerifier,
    check_sidecar,
    create_sealed_file,
    iter_records,
    open_sealed_file,
    read_sidecar,
    sidecar_path,
    write_record,
)
from shared.sealed.errors import MalformedFile, SignerRefused
from shared.sealed.payloads import SCREEN_REFUSAL, SCREEN_REQUEST, SCREEN_RESPONSE
from shared.wire import MAX_MESSAGE_BYTES
from uwv_server.grpc.errors import detail_of
from uwv_server.grpc.screening import ScreeningServicer, batch_request
from uwv_server.service import Batch, ChunkOutput, ScreeningService

log = logging.getLogger("uwv_server")

IN_FLIGHT: Final = 4
"""Chunks evaluated concurrently, as on a gRPC stream."""


@dataclass(frozen=True)
class ProcessResult:
    """What one ``process`` run did."""

    request_id: str
    sender: str
    chunks: int
    households: int
    failed_chunks: int
    refused: str | None
    """UWV's reason when it refused the whole batch (then a refusal file was written)."""
    repeated: bool
    """The request had been processed before: its kept response was handed out again, byte for
    byte (nothing evaluated, nothing charged)."""
    request: SealedSummary
    response_size: int
    response_sha256: str


class _Progress:
    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.started = time.monotonic()
        self._decile = -1

    def advance(self) -> None:
        self.done += 1
        if self.stream is None:
            return
        decile = 10 * self.done // max(self.total, 1)
        if decile == self._decile and self.done < self.total:
            return
        self._decile = decile
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        self.stream.write(f"processed {self.done}/{self.total or '?'} chunks ({rate:.1f}/s)\n")
        self.stream.flush()


def _responses(
    service: ScreeningService, batch: Batch, records: Iterator[bytes], progress: _Progress
) -> Iterator[pb.ScreenResponse]:
    # Each chunk's answer exactly as the gRPC adapter writes it (its ChunkResult conversion).
    adapter = ScreeningServicer(service)
    pending: deque[tuple[int, Future[ChunkOutput]]] = deque()
    for record in records:
        message = pb.ScreenRequest.FromString(record)
        if message.WhichOneof("item") != "chunk":
            raise MalformedFile("the request holds a second header: only chunks follow it")
        chunk = message.chunk
        try:
            future = service.submit_chunk(
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
        while pending and (pending[0][1].done() or len(pending) > IN_FLIGHT):
            yield adapter.answer_now(batch, *pending.popleft())
            progress.advance()
    while pending:
        yield adapter.answer_now(batch, *pending.popleft())
        progress.advance()
    yield pb.ScreenResponse(
        summary=pb.BatchSummary(
            chunks=batch.chunks, households=batch.households, failed_chunks=batch.failed_chunks
        )
    )


def process_request(
    request: Path,
    out: Path,
    *,
    service: ScreeningService,
    receiver: ReceiverKey,
    senders: SenderVerifier,
    signer: SenderKey,
    processed: ProcessedIds,
    clock: Callable[[], datetime],
    kept: Path,
    progress: TextIO | None = sys.stderr,
) -> ProcessResult:
    """Verify, evaluate and answer one sealed request; see the module docstring.

    ``kept`` is the folder where UWV keeps every response it sent (``S/sealed-responses``):
    a request processed before gets that file again, so a repeated delivery never yields a
    second, fresh masked sample of the same households (DESIGN §4)."""
    kinds = {MessageKind.REQUEST}
    # pass 1: the whole file, before anything is charged
    with open_sealed_file(
        request, receiver=receiver, senders=senders, kinds=kinds, processed=processed
    ) as reader:
        for _ in reader.chunks():
            pass
        verified = reader.summary
        header = reader.header
        party = reader.sender
        reply: Recipient | None = reader.reply_recipient
        repeated = reader.previous is not None
    assert verified is not None
    if header.content_type != SCREEN_REQUEST:
        raise MalformedFile(f"{request}: a {header.content_type}, not a screening request")
    if reply is None:
        raise SignerRefused(f"{request}: carries no reply certificate to seal the answer to")
    bound = InReplyTo(message_id=header.message_id, sha256=verified.sha256)
    keep = kept / f"{header.message_id}-{verified.sha256[:16]}.resp"
    if repeated and keep.exists():
        log.info("request %s was processed before: its response again", header.message_id)
        size, sha = _hand_out(keep, out)
        return ProcessResult(
            header.message_id, str(party), 0, 0, 0, None, True, verified, size, sha
        )  # fmt: skip

    # pass 2: the same file, evaluated
    with open_sealed_file(
        request,
        receiver=receiver,
        senders=senders,
        kinds=kinds,
        processed=processed,
        expect_header_sha256=verified.header_sha256,
    ) as reader:
        records = iter_records(reader.chunks(), limit=MAX_MESSAGE_BYTES, name=str(request))
        try:
            first = pb.UploadContextRequest.FromString(next(records, b""))
            opening = pb.ScreenRequest.FromString(next(records, b""))
            if opening.WhichOneof("item") != "header":
                raise MalformedFile(f"{request}: the second record is not the batch header")
            if header.message_id != opening.header.batch_id:
                raise MalformedFile(
                    f"{request}: message id {header.message_id} but batch id "
                    f"{opening.header.batch_id}"
                )
        except ValueError as exc:  # protobuf DecodeError
            if isinstance(exc, Error):
                raise
            raise MalformedFile(f"{request}: a record is not the expected message") from None
        try:
            service.contexts.upload(first.parameter_set, first.context)
            opened = batch_request(opening.header, f"{party.organisation} sealed file", None)
            batch = service.open_batch(opened)
        except Error as exc:
            log.warning("request %s refused: %s", header.message_id, exc)
            with create_sealed_file(
                out,
                sender=signer,
                recipient=reply,
                kind=MessageKind.RESPONSE,
                message_id=f"{header.message_id}.response",
                content_type=SCREEN_REFUSAL,
                clock=clock,
                in_reply_to=bound,
            ) as writer:
                write_record(writer, detail_of(exc, field="header").SerializeToString())
            for _ in records:
                pass
            _keep(out, keep)
            reader.mark_processed()
            assert writer.summary is not None
            return ProcessResult(
                header.message_id, str(party), 0, 0, 0, exc.diagnostics(), repeated, verified,
                writer.summary.size, writer.summary.sha256,
            )  # fmt: skip
        meter = _Progress(opening.header.chunk_count, progress)
        try:
            with create_sealed_file(
                out,
                sender=signer,
                recipient=reply,
                kind=MessageKind.RESPONSE,
                message_id=f"{header.message_id}.response",
                content_type=SCREEN_RESPONSE,
                clock=clock,
                in_reply_to=bound,
            ) as writer:
                for response in _responses(service, batch, records, meter):
                    write_record(writer, response.SerializeToString())
        except ValueError as exc:
            if isinstance(exc, Error):
                raise
            raise MalformedFile(f"{request}: a chunk record is not a ScreenRequest") from None
        finally:
            service.close_batch(batch)
        _keep(out, keep)
        reader.mark_processed()
    assert writer.summary is not None
    return ProcessResult(
        request_id=header.message_id,
        sender=str(party),
        chunks=batch.chunks,
        households=batch.households,
        failed_chunks=batch.failed_chunks,
        refused=None,
        repeated=repeated,
        request=verified,
        response_size=writer.summary.size,
        response_sha256=writer.summary.sha256,
    )


def _copy(source: Path, target: Path) -> None:
    """``target`` as a complete copy of ``source``: written aside, fsynced, renamed."""
    tmp = target.with_name(target.name + ".partial")
    with source.open("rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    tmp.replace(target)


def _keep(out: Path, keep: Path) -> None:
    """Keep a copy of the response (and its sidecar) that was just written to ``out``."""
    keep.parent.mkdir(parents=True, exist_ok=True)
    _copy(out, keep)
    _copy(sidecar_path(out), sidecar_path(keep))


def _hand_out(keep: Path, out: Path) -> tuple[int, str]:
    """The kept response to ``out`` again, with its sidecar renamed for ``out``."""
    car = read_sidecar(sidecar_path(keep))
    _copy(keep, out)
    check_sidecar(out, car)  # the kept copy is what was sent: size and SHA-256 unchanged
    side = sidecar_path(out)
    tmp = side.with_name(side.name + ".partial")
    tmp.write_text(car.model_copy(update={"filename": out.name}).to_json())
    tmp.replace(side)
    return car.size, car.checksum.value
