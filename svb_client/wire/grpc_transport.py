"""The gRPC transport: the only client module that touches protobuf and grpc.

Turns the domain objects of :mod:`svb_client.wire.messages` into the contract's messages
(``proto/eligibility/v2``) and back, and every ``grpc.RpcError`` into a
:class:`~svb_client.wire.errors.ServerError` carrying UWV's ``ErrorDetail`` when it sent one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

import grpc
import numpy as np

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared._proto.eligibility.v2 import enclave_pb2 as epb
from shared._proto.eligibility.v2 import enclave_pb2_grpc as epb_grpc
from shared.client_channel import ChannelSecurity
from shared.wire import ERROR_METADATA_KEY
from svb_client.wire.errors import ErrorInfo, ServerError
from svb_client.wire.messages import (
    RULE_STATES,
    BatchOpen,
    ChunkAnswer,
    EnclaveInfo,
    EncryptedChunk,
    KeyChallenge,
    Refusal,
    RuleStatus,
    RunBatch,
    RunReply,
    ServerInfo,
)
from svb_client.wire.transport import WireStats, run_each

_MODES: Final = {"masked": pb.MODE_MASKED, "strict": pb.MODE_STRICT}
_Reply = TypeVar("_Reply")


def _error_info(detail: pb.ErrorDetail) -> ErrorInfo:
    return ErrorInfo(
        # The contract's names carry the enum prefix (buf STANDARD); ErrorInfo keeps the short
        # name ("INVALID_BSN").
        code=pb.ErrorCode.Name(detail.code).removeprefix("ERROR_CODE_")
        if detail.code in pb.ErrorCode.values()
        else "",
        message=detail.message,
        field=detail.field,
        chunk_index=detail.chunk_index,
        slot=detail.slot,
        member=detail.member,
    )


def server_error(exc: grpc.RpcError, doing: str) -> ServerError:
    """Turn an RpcError into a ServerError carrying the server's ErrorDetail if it sent one."""
    detail = None
    call = exc if isinstance(exc, grpc.Call) else None
    if call is not None:
        for key, value in call.trailing_metadata() or ():
            if key == ERROR_METADATA_KEY and isinstance(value, bytes):
                detail = _error_info(pb.ErrorDetail.FromString(value))
        code = call.code()
        text = call.details()
        if code == grpc.StatusCode.UNAVAILABLE:
            return ServerError(f"{doing}: UWV server unreachable ({text})", detail, code.name)
        return ServerError(f"{doing}: {code.name}: {text}", detail, code.name)
    return ServerError(f"{doing}: {exc}", detail)


def _rule_status(status: epb.RuleStatus) -> RuleStatus:
    state = RULE_STATES[status.state] if 0 <= status.state < len(RULE_STATES) else "unspecified"
    return RuleStatus(
        rule_digest=status.rule_digest,
        state=state,
        reason=status.reason,
        verifier_accepted=status.verifier_accepted,
        report_text=status.report_text,
        report_json=status.report_json,
    )


def header_message(header: BatchOpen) -> pb.ScreenRequest:
    """The first message of a screening stream."""
    return pb.ScreenRequest(
        header=pb.BatchHeader(
            batch_id=header.batch_id,
            context_sha256=header.context_sha256,
            mode=_MODES[header.mode],
            period=str(header.period),
            rule_digest=header.rule_digest,
            requester=header.requester,
            chunk_count=header.chunk_count,
        )
    )


def chunk_message(chunk: EncryptedChunk) -> pb.ScreenRequest:
    return pb.ScreenRequest(
        chunk=pb.Chunk(
            index=chunk.index,
            member_counts=chunk.member_counts.tolist(),
            member_bsns=chunk.member_bsns.tolist(),
            ciphertexts=list(chunk.ciphertexts),
        )
    )


def chunk_answer(result: pb.ChunkResult) -> ChunkAnswer:
    refused = None
    if result.HasField("error") and result.error.code:
        refused = result.error.message
    return ChunkAnswer(
        index=result.index,
        ciphertexts=tuple(result.ciphertexts),
        refused=refused,
        slot_errors={int(d.slot): d.message for d in result.slot_errors},
    )


def run_message(batch: RunBatch) -> epb.RunRequest:
    return epb.RunRequest(
        run_id=batch.run_id,
        rule_digest=batch.rule_digest,
        period=str(batch.period),
        salt=batch.salt,
        member_counts_le64=batch.member_counts.astype("<i8").tobytes(),
        member_bsns_le64=batch.member_bsns.astype("<i8").tobytes(),
        is_couple_u8=batch.is_couple.astype(np.uint8).tobytes(),
        known_income_cents_le64=batch.known_income_cents.astype("<i8").tobytes(),
        # Empty when no household has cost-sharers: the request of a batch without any is
        # byte for byte what it was before the field existed.
        cost_sharers_u8=b""
        if batch.cost_sharers is None or not batch.cost_sharers.any()
        else batch.cost_sharers.astype(np.uint8).tobytes(),
    )


def run_reply(response: epb.RunResponse, run_id: str) -> RunReply:
    return RunReply(
        outcomes=response.outcomes,
        statement=response.statement,
        statement_digest=response.statement_digest,
        refusals=tuple(Refusal(r.position, r.code, r.reason) for r in response.refusals),
        run_id=run_id,
    )


class GrpcTransport:
    """One channel to a UWV server, for the Screening and ComputeToData services.

    ``security`` says how the channel is protected: mutual TLS from a party directory, or
    (:meth:`unsafe_insecure`) plaintext to a loopback address."""

    def __init__(self, target: str, security: ChannelSecurity, *, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self.stats = WireStats()
        self.authenticates_sender = not security.unsafe_insecure  # mutual TLS
        self._channel = security.open(target)
        self._screening = pb_grpc.ScreeningServiceStub(self._channel)
        self._enclave = epb_grpc.ComputeToDataServiceStub(self._channel)

    @classmethod
    def unsafe_insecure(cls, target: str, *, timeout: float = 30.0) -> GrpcTransport:
        """A plaintext channel, refused unless ``target`` is a loopback address."""
        return cls(target, ChannelSecurity.unsafe_plaintext(), timeout=timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, doing: str, call: Callable[[], _Reply]) -> _Reply:
        try:
            return call()
        except grpc.RpcError as exc:
            raise server_error(exc, doing) from None

    # -- Screening ---------------------------------------------------------------------------

    def _first_contact(self, doing: str, exc: grpc.RpcError) -> ServerError:
        """The first call waits for the channel; if it never became ready, say why it may not."""
        error = server_error(exc, doing)
        if error.status in ("DEADLINE_EXCEEDED", "UNAVAILABLE"):
            return ServerError(
                f"{doing}: UWV server unreachable within {self.timeout:g} s (nothing listening "
                "there, or the TLS handshake failed: check --tls-dir and that both sides trust "
                "the same CA)",
                error.detail,
                error.status,
            )
        return error

    def server_info(self) -> ServerInfo:
        doing = f"asking {self.target} for its parameters"
        try:
            info: pb.GetServerInfoResponse = self._screening.GetServerInfo(
                pb.GetServerInfoRequest(), timeout=self.timeout, wait_for_ready=True
            )
        except grpc.RpcError as exc:
            raise self._first_contact(doing, exc) from None
        return ServerInfo(
            server_version=info.server_version,
            parameter_sets=tuple(info.parameter_sets),
            max_households_per_chunk=info.max_households_per_chunk,
            max_members_per_household=info.max_members_per_household,
            max_message_bytes=info.max_message_bytes,
            snapshot_digest=info.snapshot_digest,
            strict_key_sets=info.strict_key_sets,
        )

    def has_context(self, digest: str) -> bool:
        reply: pb.HasContextResponse = self._call(
            "asking for the public context",
            lambda: self._screening.HasContext(
                pb.HasContextRequest(context_sha256=digest), timeout=self.timeout
            ),
        )
        return reply.known

    def propose_key_sets(self, parameter_set: str, contexts: list[bytes]) -> KeyChallenge:
        stats = self.stats

        def requests() -> Iterator[pb.ProposeKeySetsRequest]:
            for context in contexts:
                message = pb.ProposeKeySetsRequest(parameter_set=parameter_set, context=context)
                stats.bytes_sent += message.ByteSize()
                yield message

        # K contexts of ~6 MB each: allow for a slow link beyond the per-call timeout.
        reply: pb.ProposeKeySetsResponse = self._call(
            "proposing strict key sets",
            lambda: self._screening.ProposeKeySets(
                requests(), timeout=max(self.timeout, 30.0 * len(contexts))
            ),
        )
        return KeyChallenge(
            proposal_id=reply.proposal_id,
            chosen=reply.chosen_index,
            key_sets=reply.key_sets,
            context_sha256=tuple(reply.context_sha256),
        )

    def open_key_sets(self, proposal_id: str, seeds: list[bytes]) -> str:
        # UWV regenerates K - 1 key sets (~2 s each at N=16384 on one core).
        reply: pb.OpenKeySetsResponse = self._call(
            "opening strict key sets",
            lambda: self._screening.OpenKeySets(
                pb.OpenKeySetsRequest(proposal_id=proposal_id, seeds=seeds),
                timeout=max(self.timeout, 30.0 * len(seeds)),
            ),
        )
        return reply.context_sha256

    def ensure_context(self, parameter_set: str, context: bytes, digest: str) -> bool:
        """Upload the public context unless the server has it; True if it was uploaded."""
        doing = "uploading the public context"
        known = self._call(
            doing,
            lambda: (
                self._screening.HasContext(
                    pb.HasContextRequest(context_sha256=digest), timeout=self.timeout
                ).known
            ),
        )
        if known:
            return False
        reply = self._call(
            doing,
            lambda: self._screening.UploadContext(
                pb.UploadContextRequest(parameter_set=parameter_set, context=context),
                timeout=self.timeout,
            ),
        )
        if reply.context_sha256 != digest:
            raise ServerError(f"server stored context {reply.context_sha256}, expected {digest}")
        return True

    def screen(
        self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
    ) -> Iterator[ChunkAnswer]:
        """The bidirectional screening stream; answers are yielded as they arrive."""
        stats = self.stats

        def requests() -> Iterator[pb.ScreenRequest]:
            first = header_message(header)
            stats.bytes_sent += first.ByteSize()
            yield first
            for chunk in chunks:
                message = chunk_message(chunk)
                stats.bytes_sent += message.ByteSize()
                yield message

        try:
            for response in self._screening.Screen(requests(), timeout=deadline_s):
                stats.bytes_received += response.ByteSize()
                if response.WhichOneof("item") == "result":
                    yield chunk_answer(response.result)
        except grpc.RpcError as exc:
            raise server_error(exc, "screening stream") from None

    # -- ComputeToData -----------------------------------------------------------------------

    def enclave_info(self) -> EnclaveInfo:
        info: epb.GetEnclaveInfoResponse = self._call(
            "enclave info",
            lambda: self._enclave.GetEnclaveInfo(
                epb.GetEnclaveInfoRequest(), timeout=self.timeout, wait_for_ready=True
            ),
        )
        return EnclaveInfo(
            snapshot_digest=info.snapshot_digest,
            engine_digest=info.engine_digest,
            runner_key_id=info.runner_key_id,
            max_households=info.max_households,
            max_members_per_household=info.max_members_per_household,
        )

    def submit_rule(self, envelope: bytes) -> RuleStatus:
        reply: epb.SubmitRuleResponse = self._call(
            "submit rule",
            lambda: self._enclave.SubmitRule(
                epb.SubmitRuleRequest(envelope=envelope), timeout=self.timeout, wait_for_ready=True
            ),
        )
        return _rule_status(reply.status)

    def rule_status(self, rule_digest: str) -> RuleStatus:
        try:
            reply: epb.GetRuleResponse = self._enclave.GetRule(
                epb.GetRuleRequest(rule_digest=rule_digest),
                timeout=self.timeout,
                wait_for_ready=True,
            )
        except grpc.RpcError as exc:
            raise self._first_contact("rule state", exc) from None
        return _rule_status(reply.status)

    def run(self, batch: RunBatch, deadline_s: float | None) -> RunReply:
        request = run_message(batch)
        self.stats.bytes_sent += request.ByteSize()
        response: epb.RunResponse = self._call(
            "run",
            lambda: self._enclave.Run(request, timeout=deadline_s, wait_for_ready=True),
        )
        self.stats.bytes_received += response.ByteSize()
        return run_reply(response, batch.run_id)

    def run_many(self, batches: Iterable[RunBatch], deadline_s: float | None) -> Iterator[RunReply]:
        return run_each(self, batches, deadline_s)
