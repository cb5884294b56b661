"""What a batch prints: one summary for every mode, and a progress line while it runs."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

REFUSED_BY_UWV = "refused by UWV"
"""How every reason UWV gave starts in the outreach file (chunk or household refused)."""


@dataclass(slots=True)
class Summary:
    """Counts of one batch, from its journal (so a resumed batch reports the whole batch)."""

    mode: str = ""
    households: int = 0
    screened: int = 0
    eligible: int = 0
    rejected: int = 0
    refused_by_uwv: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    chunks: int = 0
    resumed_chunks: int = 0
    context_uploaded: bool = False
    statement_digests: list[str] = field(default_factory=list)
    """Compute-to-data: the digest of every verified run statement, in chunk order."""
    awaiting_response: bool = False
    """The transport deferred the answers (a request file was written): nothing decided yet."""

    @property
    def runs(self) -> int:
        """Compute-to-data runs, one per chunk, each with a verified statement."""
        return len(self.statement_digests)

    def count(self, decision: str, reason: str) -> None:
        """Count one row of the outreach file."""
        self.households += 1
        if decision == "rejected":
            self.rejected += 1
            self.refused_by_uwv += reason.startswith(REFUSED_BY_UWV)
            key = reason_kind(reason)
            self.rejected_reasons[key] = self.rejected_reasons.get(key, 0) + 1
        else:
            self.screened += 1
            self.eligible += decision == "eligible"

    def text(self) -> str:
        if self.awaiting_response:
            return (
                f"request written for {self.chunks:,} chunk(s); nothing is decided until UWV's "
                "response is read (run the same command with the response)"
            )
        rate = self.screened / self.seconds if self.seconds > 0 else 0.0
        per_hh = max(self.screened, 1)
        done_before = (
            f" ({self.resumed_chunks} of {self.chunks} chunks already done before this run)"
            if self.resumed_chunks
            else ""
        )
        lines = [
            f"mode:                   {self.mode}",
            f"households in file:     {self.households:,}",
            f"screened:               {self.screened:,}{done_before}",
        ]
        if self.statement_digests:
            lines.append(
                f"run statements:         {self.runs} verified (runner signature, rule, batch, "
                "output, approvals)"
            )
        lines += [
            f"potentially eligible:   {self.eligible:,}",
            f"rejected:               {self.rejected:,} ({self.refused_by_uwv:,} refused by UWV)",
        ]
        for reason, count in sorted(self.rejected_reasons.items(), key=lambda kv: -kv[1])[:8]:
            lines.append(f"  {count:>8,} × {reason}")
        lines += [
            f"time:                   {self.seconds:.1f} s ({rate:,.0f} households/s)",
            f"sent to UWV:            {self.bytes_sent:,} bytes "
            f"({self.bytes_sent / per_hh:.0f}/household)",
            f"received from UWV:      {self.bytes_received:,} bytes "
            f"({self.bytes_received / per_hh:.0f}/household)",
        ]
        return "\n".join(lines)


def reason_kind(reason: str) -> str:
    """A reason without its line number and quoted values, for counting in the summary."""
    text = re.sub(r"^line \d+: ", "", reason)
    text = re.sub(r"^household '[^']*': ", "", text)
    return re.sub(r"'[^']*'", "'…'", re.sub(r"\b\d{9}\b", "…", text))


class Progress:
    """A progress line on stderr: in place on a terminal, every 10% otherwise."""

    def __init__(
        self,
        total: int,
        stream: TextIO = sys.stderr,
        enabled: bool = True,
        label: str = "households",
    ) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = 0.0
        self._last_decile = -1
        self._tty = stream.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        decile = 10 * self.done // max(self.total, 1)
        if self._tty and now - self._last < 0.2 and self.done < self.total:
            return
        if not self._tty and decile == self._last_decile and self.done < self.total:
            return
        self._last, self._last_decile = now, decile
        rate = self.done / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,} {self.label} "
            f"{rate:,.0f}/s ETA {eta:.0f}s"
        )
        self.stream.write(("\r" + line) if self._tty else line + "\n")
        if self._tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
