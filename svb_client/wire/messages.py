"""What the client pipeline and a transport exchange: domain objects, no protobuf.

A transport (:mod:`svb_client.wire.transport`) turns these into messages of its own kind (gRPC
messages, a sealed file, direct calls into an in-process server) and back. Arrays are numpy
``int64`` in household order; nothing here is shared with a transport's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from shared.models import Period

IntArray = npt.NDArray[np.int64]
HeMode = Literal["masked", "strict"]
RULE_STATES: Final = ("unspecified", "pending", "approved", "expired", "rejected", "revoked")


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a screening server says about itself."""

    server_version: str
    parameter_sets: tuple[str, ...]
    max_households_per_chunk: int
    max_members_per_household: int
    max_message_bytes: int
    snapshot_digest: str
    strict_key_sets: int = 0
    """K for strict mode's key check (cut-and-choose); 0: no check (or not known offline)."""


@dataclass(frozen=True, slots=True)
class KeyChallenge:
    """UWV's answer to a proposal of ``key_sets`` strict key sets: open all but ``chosen``."""

    proposal_id: str
    chosen: int
    key_sets: int
    context_sha256: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BatchOpen:
    """The header of a homomorphic screening batch."""

    batch_id: str
    context_sha256: str
    mode: HeMode
    period: Period
    rule_digest: str
    requester: str
    chunk_count: int


@dataclass(frozen=True, slots=True, eq=False)
class EncryptedChunk:
    """One chunk as sent: the members of its households and their encrypted thresholds."""

    index: int
    member_counts: IntArray
    member_bsns: IntArray
    ciphertexts: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ChunkAnswer:
    """UWV's answer to one chunk.

    ``refused`` is UWV's reason when the whole chunk was refused (then ``ciphertexts`` is
    empty); ``slot_errors`` maps household slots UWV did not evaluate to its reason.
    """

    index: int
    ciphertexts: tuple[bytes, ...]
    refused: str | None = None
    slot_errors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnclaveInfo:
    """What a compute-to-data server says about itself."""

    snapshot_digest: str
    engine_digest: str
    runner_key_id: str
    max_households: int
    max_members_per_household: int


@dataclass(frozen=True, slots=True)
class RuleStatus:
    """A rule's state at UWV; ``state`` is one of :data:`RULE_STATES`."""

    rule_digest: str
    state: str
    reason: str
    verifier_accepted: bool
    report_text: str
    report_json: str = ""
    checked_later: bool = False
    """A file transport cannot ask before it sends: UWV checks the rule's state when it
    processes the request file, and answers a rule that may not run with an error."""


@dataclass(frozen=True, slots=True, eq=False)
class RunBatch:
    """One compute-to-data run: positional households (their ids stay at SVB)."""

    run_id: str
    rule_digest: str
    period: Period
    salt: bytes
    member_counts: IntArray
    member_bsns: IntArray
    is_couple: npt.NDArray[np.bool_]
    known_income_cents: IntArray
    cost_sharers: IntArray | None = None
    """Per household, the other adults 27+ sharing the home besides the partner (art. 22a);
    None: none anywhere (as a client that predates the field sends)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A household of a run UWV did not evaluate, by position, with its code and reason."""

    position: int
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunReply:
    """The result of a run: one outcome byte per household and the signed run statement."""

    outcomes: bytes
    statement: bytes
    statement_digest: str
    refusals: tuple[Refusal, ...] = ()
    run_id: str = ""
    """The run this answers (as asked)."""
