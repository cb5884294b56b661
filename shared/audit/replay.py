"""Replay of a run: recompute its output and compare with what the log recorded.

Replaying needs the compute-to-data runner (same rule, same snapshot, same
batch); that comes later. This module fixes the seam: a *recompute* callable
gets the entry and returns the digests it obtained, and :func:`replay`
compares them field by field with the entry and says what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.audit.entry import RunEntry
from shared.audit.errors import ReplayError
from shared.errors import Error


@dataclass(frozen=True, slots=True)
class Recomputed:
    """What a replay obtained. Fields left ``None`` were not recomputed and are not compared."""

    result_digest: str
    snapshot_digest: str | None = None
    engine_digest: str | None = None
    statement_digest: str | None = None


Recompute = Callable[[RunEntry], Recomputed]
"""Recomputes a run from its entry (and the salt, rule, snapshot and batch it looks up)."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One field whose recomputed value differs from the recorded one."""

    field: str
    recorded: str | None
    recomputed: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying one run."""

    run_id: str
    index: int | None
    differences: tuple[Difference, ...]

    @property
    def matches(self) -> bool:
        """True if every recomputed digest equals the recorded one."""
        return not self.differences

    def describe(self) -> str:
        """A human-readable verdict, one line per differing field."""
        where = f"entry {self.index} (run {self.run_id})" if self.index is not None else self.run_id
        if self.matches:
            return f"OK: replay of {where} reproduces the recorded digests"
        lines = [f"DIFFERS: replay of {where}:"]
        lines += [
            f"  {d.field}: recorded {d.recorded}, recomputed {d.recomputed}"
            for d in self.differences
        ]
        return "\n".join(lines)


def replay(entry: RunEntry, recompute: Recompute, *, index: int | None = None) -> ReplayReport:
    """Run ``recompute`` on the entry and compare its digests with the recorded ones.

    A failing recompute (a domain error, or a wrong return type) raises
    :class:`ReplayError`; differing digests are a report, not an exception.
    """
    try:
        got = recompute(entry)
    except Error as exc:
        raise ReplayError(f"replay of run {entry.run_id} failed: {exc.diagnostics()}") from None
    if not isinstance(got, Recomputed):
        raise ReplayError(f"recompute returned {type(got).__name__}, expected Recomputed")
    pairs = [
        ("result_digest", entry.result_digest, got.result_digest),
        ("snapshot_digest", entry.snapshot_digest, got.snapshot_digest),
        ("engine_digest", entry.engine_digest, got.engine_digest),
        ("statement_digest", entry.statement_digest, got.statement_digest),
    ]
    diffs = tuple(
        Difference(name, recorded, recomputed)
        for name, recorded, recomputed in pairs
        if recomputed is not None and recomputed != recorded
    )
    return ReplayReport(entry.run_id, index, diffs)
