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

A compute-to-data request (content type ``RUNS_REQUEST``: one ``RunRequest`` per run) goes
the same way through the :class:`~uwv_server.enclave.service.EnclaveService` of ``serve``:
pass 1 also parses every run as the ``Run`` RPC would (one bad run refuses the whole file,
nothing charged); pass 2 runs each in order (rule approval, budget, isolated runner, signed
run statement, audit entry) and writes each answer as a ``SealedRunResult``; a run the service
refuses ends the batch there, as a failed call ends SVB's online batch.

Interrupted anywhere, the same command runs again: no response file exists yet, the request is
not marked processed, and the budget does not charge a (batch, chunk) twice (no answer left
UWV, so re-evaluating leaks nothing). A request already processed gets the response that was
sent for it, byte for byte, from ``S/sealed-responses`` (no second masked sample, no charge);
another file with the same id is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TextIO

import numpy as np

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import enclave_pb2 as epb
from shared._proto.eligibility.v2 import sealed_pb2 as spb
from shared.errors import Error
from shared.sealed import (
    DEFAULT_CHUNK_SIZE,
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
from shared.sealed.identity import Party
from shared.sealed.payloads import (
    RULE_STATUS,
    RULE_SUBMISSION,
    RUNS_REQUEST,
    RUNS_RESPONSE,
    SCREEN_REFUSAL,
    SCREEN_REQUEST,
    SCREEN_RESPONSE,
)
from shared.sealed.writer import SealedWriter
from shared.wire import MAX_MESSAGE_BYTES
from uwv_server.enclave.errors import BatchRefused, NotRunnable
from uwv_server.enclave.service import EnclaveService, RunRequest
from uwv_server.grpc.compute_to_data import parse_run, run_response, submit_response
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
    compute_to_data: bool = False
    """A compute-to-data request: ``chunks`` counts its runs."""


class _Progress:
    def __init__(self, total: int, stream: TextIO | None, unit: str = "chunks") -> None:
        self.total, self.done, self.stream, self.unit = total, 0, stream, unit
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
        done = f"{self.done}/{self.total}" if self.total else str(self.done)
        self.stream.write(f"processed {done} {self.unit} ({rate:.1f}/s)\n")
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
    enclave: EnclaveService | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ProcessResult:
    """Verify, evaluate and answer one sealed request; see the module docstring.

    ``kept`` is the folder where UWV keeps every response it sent (``S/sealed-responses``):
    a request processed before gets that file again, so a repeated delivery never yields a
    second, fresh masked sample of the same households (DESIGN §4). ``enclave`` answers
    compute-to-data requests (None: they are refused as a whole, as ``--modes`` would)."""
    kinds = {MessageKind.REQUEST, MessageKind.RULE_SUBMISSION}
    # pass 1: the whole file, before anything is charged (compute-to-data: every run parsed)
    problem: Error | None = None
    runs = 0
    with open_sealed_file(
        request, receiver=receiver, senders=senders, kinds=kinds, processed=processed
    ) as reader:
        header = reader.header
        if header.content_type == RUNS_REQUEST:
            problem, runs = _check_runs(
                iter_records(reader.chunks(), limit=MAX_MESSAGE_BYTES, name=str(request)),
                request,
            )
        else:
            for _ in reader.chunks():
                pass
        verified = reader.summary
        party = reader.sender
        reply: Recipient | None = reader.reply_recipient
        repeated = reader.previous is not None
    assert verified is not None
    if header.content_type not in _CONTENT_TYPES[header.kind]:
        raise MalformedFile(
            f"{request}: a {header.kind.value} file may not carry {header.content_type}"
        )
    if reply is None:
        raise SignerRefused(f"{request}: carries no reply certificate to seal the answer to")
    keep = kept / f"{header.message_id}-{verified.sha256[:16]}.resp"
    if repeated and keep.exists():
        log.info("request %s was processed before: its response again", header.message_id)
        size, sha = _hand_out(keep, out)
        return ProcessResult(
            header.message_id, str(party), 0, 0, 0, None, True, verified, size, sha
        )  # fmt: skip
    answer = _Answer(
        request=request,
        out=out,
        keep=keep,
        signer=signer,
        reply=reply,
        clock=clock,
        bound=InReplyTo(message_id=header.message_id, sha256=verified.sha256),
        verified=verified,
        party=str(party),
        repeated=repeated,
        chunk_size=chunk_size,
    )
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
        if header.content_type == RULE_SUBMISSION:
            result = _answer_submission(enclave, records, answer)
        elif header.content_type == RUNS_REQUEST:
            if problem is None and enclave is None:
                problem = NotRunnable("this UWV does not serve the compute-to-data mode")
            if problem is not None:
                result = answer.refusal(problem, records, field="runs")
            else:
                assert enclave is not None
                meter = _Progress(runs, progress, "runs")
                result = _answer_runs(enclave, records, answer, str(party), meter)
        else:
            result = _answer_screening(service, records, answer, party, progress)
        _keep(out, keep)
        reader.mark_processed()
    return result


_CONTENT_TYPES: Final = {
    MessageKind.REQUEST: (SCREEN_REQUEST, RUNS_REQUEST),
    MessageKind.RULE_SUBMISSION: (RULE_SUBMISSION,),
}


def _answer_submission(
    enclave: EnclaveService | None, records: Iterator[bytes], answer: _Answer
) -> ProcessResult:
    """A rule bundle into the same register as the ``SubmitRule`` RPC; its state and the
    verifier's report back. Approval stays on UWV's side (``uwv-server rules approve``)."""
    try:
        message = epb.SubmitRuleRequest.FromString(next(records, b""))
    except ValueError:  # protobuf DecodeError
        raise MalformedFile(f"{answer.request}: the record is not a SubmitRuleRequest") from None
    if next(records, None) is not None:
        raise MalformedFile(f"{answer.request}: a rule submission holds one record")
    if enclave is None:
        error: Error = NotRunnable("this UWV does not serve the compute-to-data mode")
        return answer.refusal(error, records, field="envelope")
    try:
        info = enclave.submit(message.envelope)
    except Error as exc:
        return answer.refusal(exc, records, field="envelope")
    log.info("rule %s… submitted by sealed file: %s", info.digest[:16], info.state)
    with answer.create(RULE_STATUS) as writer:
        write_record(writer, submit_response(info).SerializeToString())
    return dataclasses.replace(answer.result(writer, 0, 0, 0), compute_to_data=True)


@dataclass(frozen=True)
class _Answer:
    """Where and how the response to one verified request is written."""

    request: Path
    out: Path
    keep: Path
    signer: SenderKey
    reply: Recipient
    clock: Callable[[], datetime]
    bound: InReplyTo
    verified: SealedSummary
    party: str
    repeated: bool
    chunk_size: int

    def create(self, content_type: str) -> AbstractContextManager[SealedWriter]:
        return create_sealed_file(
            self.out,
            sender=self.signer,
            recipient=self.reply,
            kind=MessageKind.RESPONSE,
            message_id=f"{self.bound.message_id}.response",
            content_type=content_type,
            clock=self.clock,
            in_reply_to=self.bound,
            chunk_size=self.chunk_size,
        )

    def result(
        self, writer: SealedWriter, chunks: int, households: int, failed: int
    ) -> ProcessResult:
        assert writer.summary is not None
        return ProcessResult(
            self.bound.message_id, self.party, chunks, households, failed, None, self.repeated,
            self.verified, writer.summary.size, writer.summary.sha256,
        )  # fmt: skip

    def refusal(self, exc: Error, records: Iterator[bytes], field: str) -> ProcessResult:
        """The request refused as a whole: nothing evaluated, nothing charged."""
        log.warning("request %s refused: %s", self.bound.message_id, exc)
        with self.create(SCREEN_REFUSAL) as writer:
            write_record(writer, detail_of(exc, field=field).SerializeToString())
        for _ in records:  # read to the end: the file is checked whole again
            pass
        result = self.result(writer, 0, 0, 0)
        return dataclasses.replace(result, refused=exc.diagnostics())


def _answer_screening(
    service: ScreeningService,
    records: Iterator[bytes],
    answer: _Answer,
    party: Party,
    progress: TextIO | None,
) -> ProcessResult:
    request = answer.request
    try:
        first = pb.UploadContextRequest.FromString(next(records, b""))
        opening = pb.ScreenRequest.FromString(next(records, b""))
        if opening.WhichOneof("item") != "header":
            raise MalformedFile(f"{request}: the second record is not the batch header")
        if answer.bound.message_id != opening.header.batch_id:
            raise MalformedFile(
                f"{request}: message id {answer.bound.message_id} but batch id "
                f"{opening.header.batch_id}"
            )
    except ValueError as exc:  # protobuf DecodeError
        if isinstance(exc, Error):
            raise
        raise MalformedFile(f"{request}: a record is not the expected message") from None
    try:
        service.contexts.upload(first.parameter_set, first.context)
        # the verified signer is the requester, as the TLS certificate is online
        opened = batch_request(opening.header, opening.header.requester, party)
        batch = service.open_batch(opened)
    except Error as exc:
        return answer.refusal(exc, records, field="header")
    meter = _Progress(opening.header.chunk_count, progress)
    try:
        with answer.create(SCREEN_RESPONSE) as writer:
            for response in _responses(service, batch, records, meter):
                write_record(writer, response.SerializeToString())
    except ValueError as exc:
        if isinstance(exc, Error):
            raise
        raise MalformedFile(f"{request}: a chunk record is not a ScreenRequest") from None
    finally:
        service.close_batch(batch)
    return answer.result(writer, batch.chunks, batch.households, batch.failed_chunks)


def _parse_run(record: bytes, request: Path, index: int) -> RunRequest:
    """A run record as the gRPC adapter parses a ``Run`` call (:func:`parse_run`)."""
    try:
        message = epb.RunRequest.FromString(record)
    except ValueError:  # protobuf DecodeError
        raise MalformedFile(f"{request}: record {index} is not a RunRequest") from None
    try:
        return parse_run(message)
    except BatchRefused as exc:
        raise BatchRefused(f"run {index} ({message.run_id or 'no id'}): {exc}") from None


def _check_runs(records: Iterator[bytes], request: Path) -> tuple[Error | None, int]:
    """Pass 1 of a compute-to-data request: every run as the gRPC adapter would parse it, ids
    unique. Returns the first problem (the file is still read to its end) or None, and the
    number of runs."""
    problem: Error | None = None
    seen: set[str] = set()
    count = 0
    for index, record in enumerate(records):
        count += 1
        if problem is not None:
            continue
        try:
            run = _parse_run(record, request, index)
        except Error as exc:
            problem = exc
            continue
        if run.run_id in seen:
            problem = BatchRefused(f"run {index}: run id {run.run_id} appears twice in the file")
        seen.add(run.run_id)
    if count == 0 and problem is None:
        problem = BatchRefused(f"{request}: the request holds no run")
    return problem, count


def _answer_runs(
    enclave: EnclaveService,
    records: Iterator[bytes],
    answer: _Answer,
    requester: str,
    meter: _Progress,
) -> ProcessResult:
    """Each run through the same :class:`EnclaveService` as the ``Run`` RPC (rule approval,
    budget, isolated runner, signed statement, audit hook), answered in order; a run the
    service refuses ends the batch there, as a failed call ends SVB's online batch.
    ``requester`` is the verified sender (organisation and OIN), as the audit log names it."""
    runs = households = failed = 0
    with answer.create(RUNS_RESPONSE) as writer:
        for index, record in enumerate(records):
            if failed:
                continue  # read to the end: the file is checked whole again
            run = dataclasses.replace(
                _parse_run(record, answer.request, index), requester=requester
            )
            runs += 1
            try:
                outcome = enclave.run(run)
            except Error as exc:
                log.warning(
                    "request %s: run %s refused: %s", answer.bound.message_id, run.run_id, exc
                )
                failed = 1
                result = spb.SealedRunResult(run_id=run.run_id, error=detail_of(exc, field="run"))
            else:
                households += len(run.member_counts)
                result = spb.SealedRunResult(run_id=run.run_id, response=run_response(outcome))
            write_record(writer, result.SerializeToString())
            meter.advance()
    done = answer.result(writer, runs, households, failed)
    return dataclasses.replace(done, compute_to_data=True)


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
