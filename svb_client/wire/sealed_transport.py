"""The sealed-file transport: a batch as one request file now, its answers from a file later.

Two halves of one batch, the journal in between:

* :class:`SealedRequestTransport` writes the request file (the public context, the batch
  header and every chunk, as the gRPC transport's own messages, in a sealed file to UWV's
  encryption key, signed with SVB's identity) and raises :class:`BatchDeferred`: nothing is
  decided, every chunk stays pending, and ``on_sealed`` records in the journal which file the
  batch awaits an answer to;
* :class:`SealedResponseTransport` reads UWV's response file: it verifies the whole file
  first (signature, every chunk, the trailer, that it answers exactly that request file), then
  hands out the chunk answers like a gRPC stream would. A file that fails anywhere decides
  nothing.

The messages are built and read with :mod:`svb_client.wire.grpc_transport`'s functions, so a
file carries byte for byte what the channel would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import NoReturn, TypeVar

from cryptography import x509

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import enclave_pb2 as epb
from shared._proto.eligibility.v2 import sealed_pb2 as spb
from shared.errors import Error
from shared.he.params import BFV_PARAMETER_SETS, PARAMETER_SETS
from shared.ids import new_id
from shared.models import MAX_HOUSEHOLD_MEMBERS
from shared.sealed import (
    DEFAULT_CHUNK_SIZE,
    InReplyTo,
    MessageKind,
    ProcessedIds,
    ReceiverKey,
    Recipient,
    SealedError,
    SealedSummary,
    SenderKey,
    SenderVerifier,
    create_sealed_file,
    iter_records,
    open_sealed_file,
    verify_sealed_file,
    write_record,
)
from shared.sealed.payloads import (
    RULE_STATUS,
    RULE_SUBMISSION,
    RUNS_REQUEST,
    RUNS_RESPONSE,
    SCREEN_REFUSAL,
    SCREEN_REQUEST,
    SCREEN_RESPONSE,
)
from shared.wire import MAX_MESSAGE_BYTES
from svb_client.wire.errors import ServerError
from svb_client.wire.grpc_transport import (
    _error_info,
    _rule_status,
    chunk_answer,
    chunk_message,
    header_message,
    run_message,
    run_reply,
)
from svb_client.wire.messages import (
    BatchOpen,
    ChunkAnswer,
    EnclaveInfo,
    EncryptedChunk,
    KeyChallenge,
    RuleStatus,
    RunBatch,
    RunReply,
    ServerInfo,
)
from svb_client.wire.transport import BatchDeferred, WireStats


def offline_server_info() -> ServerInfo:
    """What a file transport can say without a server: the contract's limits."""
    slots = [p.slots for p in PARAMETER_SETS.values()]
    slots += [p.slots for p in BFV_PARAMETER_SETS.values()]
    return ServerInfo(
        server_version="sealed-file",
        parameter_sets=tuple(sorted([*PARAMETER_SETS, *BFV_PARAMETER_SETS])),
        max_households_per_chunk=max(slots),
        max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
        max_message_bytes=MAX_MESSAGE_BYTES,
        snapshot_digest="",
    )


def _no_key_check() -> ServerError:
    return ServerError(
        "strict mode's key check (cut-and-choose) is interactive and cannot travel as a file: run "
        "one strict batch (or the key check) online first; sealed strict requests then carry the "
        "context UWV accepted"
    )


_Message = TypeVar("_Message", pb.ScreenResponse, spb.SealedRunResult, epb.SubmitRuleResponse)


def _decode(cls: type[_Message], record: bytes, path: Path) -> _Message:
    try:
        return cls.FromString(record)
    except ValueError:  # protobuf's DecodeError
        raise ServerError(f"{path}: a record is not a {cls.__name__}") from None


class _FileEnclave:
    """What a file transport says of compute-to-data before it has UWV's answer."""

    authenticates_sender: bool = True
    """The file's signature names SVB to UWV (as its certificate does over mutual TLS), so the
    batch header leaves ``requester`` empty: UWV records the verified signer."""

    def enclave_info(self) -> EnclaveInfo:
        raise ServerError("a sealed-file transport cannot ask UWV about its enclave")

    def submit_rule(self, envelope: bytes) -> RuleStatus:
        raise ServerError("a rule is submitted as a file of its own (`svb-client rules submit`)")

    def rule_status(self, rule_digest: str) -> RuleStatus:
        """Not asked: UWV checks the rule when it processes the file (same register)."""
        return RuleStatus(
            rule_digest=rule_digest,
            state="unspecified",
            reason="a file cannot ask; UWV checks the approval when it processes the request",
            verifier_accepted=False,
            report_text="",
            checked_later=True,
        )

    def run(self, batch: RunBatch, deadline_s: float | None) -> RunReply:
        raise ServerError("a sealed-file transport takes a batch's runs together (run_many)")


class SealedRequestTransport(_FileEnclave):
    """Writes one batch as a sealed request file to ``path`` (plus its sidecar)."""

    def __init__(
        self,
        path: Path,
        *,
        sender: SenderKey,
        recipient: Recipient,
        reply_certificate: x509.Certificate,
        clock: Callable[[], datetime],
        on_sealed: Callable[[SealedSummary], None],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.path = path
        self._chunk_size = chunk_size
        self.stats = WireStats()
        self._sender = sender
        self._recipient = recipient
        self._reply = reply_certificate
        self._clock = clock
        self._on_sealed = on_sealed
        self._context: tuple[str, bytes] | None = None
        self.written: SealedSummary | None = None
        """The request file's summary, once written."""

    def close(self) -> None:
        self._context = None

    def server_info(self) -> ServerInfo:
        return offline_server_info()

    def ensure_context(self, parameter_set: str, context: bytes, digest: str) -> bool:
        """Kept for the file: UWV may not have it, and a file cannot ask."""
        self._context = (parameter_set, context)
        return True

    def has_context(self, digest: str) -> bool:
        return False  # a file cannot ask; the request carries the context

    def propose_key_sets(self, parameter_set: str, contexts: list[bytes]) -> KeyChallenge:
        raise _no_key_check()

    def open_key_sets(self, proposal_id: str, seeds: list[bytes]) -> str:
        raise _no_key_check()

    def screen(
        self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
    ) -> Iterator[ChunkAnswer]:
        if self._context is None:
            raise ServerError("the public context must be given before the batch")
        parameter_set, context = self._context

        def records() -> Iterator[bytes]:
            yield pb.UploadContextRequest(
                parameter_set=parameter_set, context=context
            ).SerializeToString()
            yield header_message(header).SerializeToString()
            for chunk in chunks:
                yield chunk_message(chunk).SerializeToString()

        self._write(header.batch_id, SCREEN_REQUEST, records())
        yield  # pragma: no cover  (a generator, like every screen())

    def run_many(self, batches: Iterable[RunBatch], deadline_s: float | None) -> Iterator[RunReply]:
        """Every run of the batch into one request file (the message id is the first run's)."""
        runs = iter(batches)
        first = next(runs, None)
        if first is None:
            return
        records = (run_message(b).SerializeToString() for b in itertools.chain([first], runs))
        self._write(first.run_id, RUNS_REQUEST, records)
        yield  # pragma: no cover  (a generator, like every run_many())

    def submit_rule(self, envelope: bytes) -> RuleStatus:
        """The signed rule bundle as one sealed rule-submission file."""
        record = epb.SubmitRuleRequest(envelope=envelope).SerializeToString()
        self._write(new_id("rule"), RULE_SUBMISSION, [record], MessageKind.RULE_SUBMISSION)

    def _write(
        self,
        message_id: str,
        content_type: str,
        records: Iterable[bytes],
        kind: MessageKind = MessageKind.REQUEST,
    ) -> NoReturn:
        try:
            with create_sealed_file(
                self.path,
                sender=self._sender,
                recipient=self._recipient,
                kind=kind,
                message_id=message_id,
                content_type=content_type,
                clock=self._clock,
                reply_certificate=self._reply,
                chunk_size=self._chunk_size,
            ) as writer:
                for record in records:
                    write_record(writer, record)
        except OSError as exc:
            raise ServerError(f"{self.path}: cannot write the request file: {exc}") from None
        assert writer.summary is not None
        self.stats.bytes_sent += writer.summary.size
        self.written = writer.summary
        self._on_sealed(writer.summary)
        raise BatchDeferred(
            f"wrote the sealed request {self.path} ({writer.summary.size:,} bytes, sha256 "
            f"{writer.summary.sha256[:16]}…) and its sidecar; carry both to UWV, and run the "
            "same command with --response FILE when UWV's answer arrives"
        )


class SealedResponseTransport(_FileEnclave):
    """Reads UWV's sealed response to the request file ``awaiting``."""

    def __init__(
        self,
        path: Path,
        *,
        receiver: ReceiverKey,
        senders: SenderVerifier,
        awaiting: InReplyTo,
        processed: ProcessedIds | None = None,
    ) -> None:
        self.path = path
        self.stats = WireStats()
        self._receiver = receiver
        self._senders = senders
        self._awaiting = awaiting
        self._processed = processed

    def close(self) -> None:
        pass

    def server_info(self) -> ServerInfo:
        return offline_server_info()

    def ensure_context(self, parameter_set: str, context: bytes, digest: str) -> bool:
        return False  # the request file carried it

    def has_context(self, digest: str) -> bool:
        return True  # the request file carried it

    def propose_key_sets(self, parameter_set: str, contexts: list[bytes]) -> KeyChallenge:
        raise _no_key_check()

    def open_key_sets(self, proposal_id: str, seeds: list[bytes]) -> str:
        raise _no_key_check()

    def screen(
        self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
    ) -> Iterator[ChunkAnswer]:
        """The answers in the response file; ``chunks`` is not consumed (nothing is sent)."""
        for record in self._records(SCREEN_RESPONSE, "a screening response"):
            response = _decode(pb.ScreenResponse, record, self.path)
            if response.WhichOneof("item") == "result":
                yield chunk_answer(response.result)

    def run_many(self, batches: Iterable[RunBatch], deadline_s: float | None) -> Iterator[RunReply]:
        """The replies in the response file to the runs asked, in their order.

        ``batches`` is taken one run at a time, each matched to the file's next answers:
        answers to runs not asked again (journalled from this file before) are passed over,
        and an answer that is UWV's refusal of the run ends the batch with that refusal."""
        asked = iter(batches)
        want = next(asked, None)
        for record in self._records(RUNS_RESPONSE, "a compute-to-data response"):
            result = _decode(spb.SealedRunResult, record, self.path)
            if want is None or result.run_id != want.run_id:
                continue  # answered and journalled before, or never asked: nothing to use
            if result.WhichOneof("result") == "error":
                info = _error_info(result.error)
                raise ServerError(
                    f"UWV refused run {result.run_id}: {info.message}", info, info.code
                )
            yield run_reply(result.response, result.run_id)
            want = next(asked, None)

    def submit_rule(self, envelope: bytes) -> RuleStatus:
        """The rule's state and report in UWV's response to the submission file."""
        records = list(self._records(RULE_STATUS, "an answer to a rule submission"))
        if len(records) != 1:
            raise ServerError(f"{self.path}: {len(records)} records, not one rule status")
        reply = _decode(epb.SubmitRuleResponse, records[0], self.path)
        return _rule_status(reply.status)

    def _records(self, content_type: str, what: str) -> Iterator[bytes]:
        """The records of the response file, verified whole before the first is handed out;
        a refusal file becomes :class:`ServerError` with UWV's reason."""
        kinds = {MessageKind.RESPONSE}
        try:
            verified = verify_sealed_file(
                self.path,
                receiver=self._receiver,
                senders=self._senders,
                kinds=kinds,
                reply_to=self._awaiting,
                processed=self._processed,
            )
            with open_sealed_file(
                self.path,
                receiver=self._receiver,
                senders=self._senders,
                kinds=kinds,
                reply_to=self._awaiting,
                processed=self._processed,
                expect_header_sha256=verified.header_sha256,
            ) as reader:
                if self._processed is not None and reader.previous is not None:
                    raise ServerError(
                        f"{self.path}: this response was already read into the journal"
                    )
                content = reader.header.content_type
                records = iter_records(reader.chunks(), name=str(self.path))
                if content == SCREEN_REFUSAL:
                    detail = pb.ErrorDetail.FromString(next(records))
                    for _ in records:
                        pass
                    info = _error_info(detail)
                    raise ServerError(f"UWV refused the request: {info.message}", info, info.code)
                if content != content_type:
                    raise ServerError(f"{self.path}: a {content}, not {what}")
                for record in records:
                    self.stats.bytes_received += len(record)
                    yield record
                reader.mark_processed()
        except SealedError as exc:
            raise ServerError(f"the response file is refused: {exc.diagnostics()}") from None
        except (OSError, ValueError) as exc:  # protobuf's DecodeError is a ValueError
            if isinstance(exc, Error):
                raise
            raise ServerError(f"{self.path}: cannot read the response: {exc}") from None
