"""The in-memory transport: UWV's real service objects, called in process (no sockets).

For tests of the client pipeline: ``run_screen`` runs against the same
:class:`~uwv_server.service.ScreeningService` and
:class:`~uwv_server.enclave.service.EnclaveService` a server would, without gRPC. Answers
are handed out as soon as each chunk is evaluated, one chunk at a time.

This module imports the server package, so nothing in the client imports it except tests
and tools that build a server in process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from shared.errors import Error
from shared.models import MAX_HOUSEHOLD_MEMBERS
from svb_client.wire.errors import ServerError
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

if TYPE_CHECKING:
    from uwv_server.enclave.approvals import RuleInfo
    from uwv_server.enclave.service import EnclaveService
    from uwv_server.service import ScreeningService


def _refused(doing: str, exc: Error) -> ServerError:
    return ServerError(
        f"{doing}: {type(exc).__name__}: {exc.diagnostics()}", status=type(exc).__name__
    )


class InMemoryTransport:
    """A transport over UWV's service objects; either may be None if a test needs one only."""

    authenticates_sender = False
    """No certificate or signature: the header names the caller (``PLAINTEXT_REQUESTER``)."""

    def __init__(
        self,
        screening: ScreeningService | None = None,
        enclave: EnclaveService | None = None,
        *,
        caller: str = "unnamed client",
    ) -> None:
        self.caller = caller
        """Who the in-process UWV takes the caller to be (a certificate's identity on gRPC)."""
        self.screening = screening
        self.enclave = enclave
        self.stats = WireStats()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _screening(self) -> ScreeningService:
        if self.screening is None:
            raise ServerError("this in-memory UWV has no screening service", status="UNIMPLEMENTED")
        return self.screening

    def _enclave(self) -> EnclaveService:
        if self.enclave is None:
            raise ServerError(
                "this in-memory UWV has no compute-to-data service", status="UNIMPLEMENTED"
            )
        return self.enclave

    # -- Screening ---------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        from shared.he.params import BFV_PARAMETER_SETS, PARAMETER_SETS
        from shared.wire import MAX_MESSAGE_BYTES

        service = self._screening()
        slots = [p.slots for p in PARAMETER_SETS.values()]
        slots += [p.slots for p in BFV_PARAMETER_SETS.values()]
        return ServerInfo(
            server_version="in-memory",
            parameter_sets=tuple(sorted([*PARAMETER_SETS, *BFV_PARAMETER_SETS])),
            max_households_per_chunk=max(slots),
            max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
            max_message_bytes=MAX_MESSAGE_BYTES,
            snapshot_digest=service.snapshot.digest,
            strict_key_sets=0
            if service.contexts.unsafe_trust_strict_keys
            else service.contexts.key_check.key_sets,
        )

    def has_context(self, digest: str) -> bool:
        return self._screening().contexts.known(digest)

    def propose_key_sets(self, parameter_set: str, contexts: list[bytes]) -> KeyChallenge:
        service = self._screening()
        try:
            challenge = service.contexts.key_check.propose(
                self.caller, parameter_set, contexts, service.audit
            )
        except Error as exc:
            raise _refused("proposing strict key sets", exc) from None
        self.stats.bytes_sent += sum(map(len, contexts))
        return KeyChallenge(
            challenge.proposal_id, challenge.chosen, challenge.key_sets, challenge.digests
        )

    def open_key_sets(self, proposal_id: str, seeds: list[bytes]) -> str:
        service = self._screening()
        try:
            return service.contexts.key_check.open(self.caller, proposal_id, seeds, service.audit)
        except Error as exc:
            raise _refused("opening strict key sets", exc) from None

    def ensure_context(self, parameter_set: str, context: bytes, digest: str) -> bool:
        contexts = self._screening().contexts
        if contexts.known(digest):
            return False
        try:
            stored, _ = contexts.upload(parameter_set, context, self.caller)
        except Error as exc:
            raise _refused("uploading the public context", exc) from None
        self.stats.bytes_sent += len(context)
        if stored != digest:
            raise ServerError(f"server stored context {stored}, expected {digest}")
        return True

    def screen(
        self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
    ) -> Iterator[ChunkAnswer]:
        from uwv_server.service import BatchRequest

        service = self._screening()
        try:
            batch = service.open_batch(
                BatchRequest(
                    batch_id=header.batch_id,
                    context_sha256=header.context_sha256,
                    mode=header.mode,
                    period=header.period,
                    rule_digest=header.rule_digest,
                    chunk_count=header.chunk_count,
                    requester=header.requester,
                )
            )
        except Error as exc:
            raise _refused("screening stream", exc) from None
        try:
            for chunk in chunks:
                self.stats.bytes_sent += sum(map(len, chunk.ciphertexts)) + 8 * len(
                    chunk.member_bsns
                )
                try:
                    output = service.submit_chunk(
                        batch,
                        chunk.index,
                        np.asarray(chunk.member_counts, dtype=np.int64),
                        np.asarray(chunk.member_bsns, dtype=np.int64),
                        list(chunk.ciphertexts),
                    ).result()
                except Error as exc:
                    yield ChunkAnswer(index=chunk.index, ciphertexts=(), refused=str(exc))
                    continue
                self.stats.bytes_received += sum(map(len, output.ciphertexts))
                yield ChunkAnswer(
                    index=chunk.index,
                    ciphertexts=tuple(output.ciphertexts),
                    slot_errors={k: v.reason for k, v in output.refused_slots.items()},
                )
        finally:
            service.close_batch(batch)

    # -- ComputeToData -----------------------------------------------------------------------

    def enclave_info(self) -> EnclaveInfo:
        from uwv_server.enclave.service import MAX_RUN_HOUSEHOLDS

        s = self._enclave()
        return EnclaveInfo(
            snapshot_digest=s.snapshot_digest,
            engine_digest=s.engine_digest,
            runner_key_id=s.runner_key.key_id,
            max_households=MAX_RUN_HOUSEHOLDS,
            max_members_per_household=MAX_HOUSEHOLD_MEMBERS,
        )

    def submit_rule(self, envelope: bytes) -> RuleStatus:
        try:
            return _status(self._enclave().submit(envelope))
        except Error as exc:
            raise _refused("submit rule", exc) from None

    def rule_status(self, rule_digest: str) -> RuleStatus:
        try:
            return _status(self._enclave().info(rule_digest))
        except Error as exc:
            raise _refused("rule state", exc) from None

    def run(self, batch: RunBatch, deadline_s: float | None) -> RunReply:
        from uwv_server.enclave.service import RunRequest

        service = self._enclave()
        try:
            outcome = service.run(
                RunRequest.parse(
                    run_id=batch.run_id,
                    rule_digest=batch.rule_digest,
                    period=str(batch.period),
                    salt=batch.salt,
                    member_counts=batch.member_counts,
                    member_bsns=batch.member_bsns,
                    is_couple=batch.is_couple,
                    known_income_cents=batch.known_income_cents,
                    cost_sharers=batch.cost_sharers,
                )
            )
        except Error as exc:
            raise _refused("run", exc) from None
        self.stats.bytes_sent += 8 * (2 * len(batch.member_counts) + len(batch.member_bsns))
        self.stats.bytes_received += len(outcome.outcomes) + len(outcome.statement)
        return RunReply(
            outcomes=outcome.outcomes.tobytes(),
            statement=outcome.statement,
            statement_digest=outcome.statement_digest,
            refusals=tuple(
                Refusal(position=pos, code=refusal.code, reason=refusal.reason)
                for pos, refusal in sorted(outcome.refused.items())
            ),
            run_id=batch.run_id,
        )

    def run_many(self, batches: Iterable[RunBatch], deadline_s: float | None) -> Iterator[RunReply]:
        return run_each(self, batches, deadline_s)


def _status(info: RuleInfo) -> RuleStatus:
    return RuleStatus(
        rule_digest=info.digest,
        state=info.state if info.state in RULE_STATES else "unspecified",
        reason=info.state_reason,
        verifier_accepted=info.accepted,
        report_text=info.report_text,
        report_json=info.report_json,
    )
