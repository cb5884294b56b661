"""The transport seam: what the client pipeline needs from a way of reaching UWV.

Modelled on httpx's transport: the pipeline (:mod:`svb_client.runner`,
:mod:`svb_client.enclave`) talks in the domain objects of :mod:`svb_client.wire.messages`; a
transport turns them into its own messages and back. Implementations:

- :class:`svb_client.wire.grpc_transport.GrpcTransport`: the gRPC channel to a UWV server;
- an in-memory one that calls UWV's service objects in process (tests, no sockets);
- a sealed-file transport (issue 13): ``screen`` and ``run_many`` write the request file and
  raise :class:`BatchDeferred`; a later run reads the response file and yields its answers.

Every method raises :class:`svb_client.wire.errors.ServerError` for what UWV refused or a
transport failure; a transport never lets its own exception types (``grpc.RpcError`` …) out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from shared.errors import Error
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


class BatchDeferred(Error):
    """The transport accepted the batch but its answers come later (e.g. as a response file):
    nothing was decided, and the journal keeps every chunk pending."""


@dataclass(slots=True)
class WireStats:
    """Bytes a transport sent and received, as counted in its own encoding."""

    bytes_sent: int = 0
    bytes_received: int = 0


class ScreeningTransport(Protocol):
    """The homomorphic modes: context upload and the chunk stream."""

    stats: WireStats
    authenticates_sender: bool
    """Whether UWV learns who sends from the transport itself (SVB's certificate over mutual
    TLS, a sealed file's signature): then the batch header leaves ``requester`` empty and UWV
    records the authenticated identity."""

    def server_info(self) -> ServerInfo:
        """What the server serves; also the first contact (waits up to the connect timeout)."""
        ...

    def ensure_context(self, parameter_set: str, context: bytes, digest: str) -> bool:
        """Make sure UWV holds the public context ``digest``; True if it was sent now."""
        ...

    def has_context(self, digest: str) -> bool:
        """Whether UWV holds the public context ``digest`` (a file transport cannot ask)."""
        ...

    def propose_key_sets(self, parameter_set: str, contexts: list[bytes]) -> KeyChallenge:
        """Strict mode's key check, step 1 (:mod:`shared.he.keysets`): the commitment."""
        ...

    def open_key_sets(self, proposal_id: str, seeds: list[bytes]) -> str:
        """Step 2: reveal every seed but the chosen one's; the accepted context's digest."""
        ...

    def screen(
        self, header: BatchOpen, chunks: Iterable[EncryptedChunk], deadline_s: float | None
    ) -> Iterator[ChunkAnswer]:
        """Send the header and then the chunks; yield each chunk's answer as it arrives.

        ``chunks`` is consumed lazily, and may block until an answer has been handed out
        (the pipeline's window of chunks in flight): a transport must hand out answers as
        they arrive rather than waiting for the next chunk.
        """
        ...

    def close(self) -> None: ...


class EnclaveTransport(Protocol):
    """The compute-to-data mode: rule submission and runs."""

    def enclave_info(self) -> EnclaveInfo: ...

    def submit_rule(self, envelope: bytes) -> RuleStatus: ...

    def rule_status(self, rule_digest: str) -> RuleStatus: ...

    def run(self, batch: RunBatch, deadline_s: float | None) -> RunReply: ...

    def run_many(self, batches: Iterable[RunBatch], deadline_s: float | None) -> Iterator[RunReply]:
        """Run each batch in order and yield its reply (``run_id`` set) before taking the next.

        The seam that lets a whole compute-to-data batch travel as one request file: an online
        transport runs them one at a time (:func:`run_each`); a file transport writes them all
        and raises :class:`BatchDeferred`, or yields the replies its response file holds for
        the batches given (skipping runs the file answers that were not asked again).
        """
        ...

    def close(self) -> None: ...


class Transport(ScreeningTransport, EnclaveTransport, Protocol):
    """A transport for all three modes."""


class _Runs(Protocol):
    def run(self, batch: RunBatch, deadline_s: float | None) -> RunReply: ...


def run_each(
    transport: _Runs, batches: Iterable[RunBatch], deadline_s: float | None
) -> Iterator[RunReply]:
    """``run_many`` for a transport that can ask one run at a time (gRPC, in memory)."""
    for batch in batches:
        yield transport.run(batch, deadline_s)
