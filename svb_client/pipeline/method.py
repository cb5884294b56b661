"""The seam between the pipeline and a screening mode (masked, strict, compute-to-data).

The pipeline (:mod:`svb_client.pipeline.run`) owns what every mode does the same way: read and
validate the household file, write the plan to the journal chunk by chunk, resume, record each
chunk's decisions as they arrive, write the outreach file, summarise. A :class:`Method` owns
what differs: what a chunk carries, how it travels (through the transport) and how its answer
becomes decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shared.models import Period
from svb_client.households import HouseholdBatch
from svb_client.journal import Journal, Pending, PendingChunk
from svb_client.pipeline.summary import Summary
from svb_client.wire import Transport


@dataclass(frozen=True, slots=True, eq=False)
class Recorded:
    """One chunk's outcome, to be journalled: a decision per slot (``journal.ELIGIBLE`` …),
    the reason for each slot without one, and a mode's receipt (a signed run statement)."""

    chunk: PendingChunk
    decisions: npt.NDArray[np.int8]
    slot_errors: dict[int, str]
    receipt: bytes = b""
    receipt_digest: str = ""


@dataclass(slots=True)
class BatchContext:
    """What a method needs to know about the batch it exchanges."""

    batch_id: str
    total_chunks: int
    period: Period
    requester: str
    deadline_s: float | None
    summary: Summary = field(default_factory=Summary)


class Method(Protocol):
    mode: str
    rule_digest: str
    default_chunk_size: int
    max_chunk_size: int

    def identity(self) -> dict[str, str]:
        """Mode-specific parts of the batch identity (a journal resumes only a match)."""
        ...

    def plan_chunk(self, households: HouseholdBatch, period: Period, index: int) -> PendingChunk:
        """Chunk ``index`` of the batch (its accepted households, in file order), with what
        the mode sends with it, ready to journal."""
        ...

    def exchange(
        self, transport: Transport, pending: Pending, ctx: BatchContext
    ) -> Iterator[Recorded]:
        """Send the pending chunks; yield each one's outcome as soon as it is known.

        ``pending`` reads each chunk from the journal when it is iterated or looked up
        (``pending.get(index)``): keep indices, not chunks, for answers still to come.

        The pipeline journals a yielded outcome before asking for the next one.
        """
        ...

    def finish(self, journal: Journal, out: Path, ctx: BatchContext) -> None:
        """After the outreach file: write a mode's own artefacts (run statements)."""
        ...
