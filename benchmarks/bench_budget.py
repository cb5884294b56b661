"""The differencing budget at national size: charge time and the memory of the per-BSN counts.

    python -m benchmarks.bench_budget --households 1000000

Charges N households (44% couples, so ~1.44 BSNs per household; BSNs as int64) in chunks of
8,192 households, as the masked mode sends them, into a fresh :class:`SqliteBudget` (limit 2)
in a temporary directory; then a second batch of the same people on top (every lookup finds a
count), a third that finds every budget spent (all refused), then reopens the database (the
start-up replay rebuilds the counts from the rows, in a fresh process).
Prints wall time of each step, the process's resident memory kept after it and the growth of
its peak (``/proc/self/status``: VmRSS, VmHWM), and with ``--trace`` the same for the Python
heap (tracemalloc, which also sees numpy's arrays; slow where Python objects are made per BSN
or per household). What grows with the households: the per-BSN counts of the year (per year, and per
mode and year) and the BSN set of each open batch (the once-per-batch rule).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shared.models import Period
from uwv_server.budget import SqliteBudget

PERIOD = Period.parse("2025-01..2025-12")
AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MiB = 1024 * 1024


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure in bytes (Linux; 0 elsewhere). ``VmHWM`` is the peak of
    this process image (``ru_maxrss`` would carry the parent's peak across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss() -> int:
    return _status("VmRSS")


def _peak() -> int:
    return _status("VmHWM")


def _households(n: int, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Member counts (1 or 2) and distinct 9-digit int64 BSNs, in random order."""
    rng = np.random.default_rng(seed)
    counts = np.where(rng.random(n) < 0.44, 2, 1).astype(np.int64)
    total = int(counts.sum())
    drawn = np.unique(rng.integers(100_000_000, 1_000_000_000, total + total // 8 + 64))
    return counts, rng.permutation(drawn)[:total].astype(np.int64)


def _charge_batch(
    budget: SqliteBudget,
    batch_id: str,
    counts: npt.NDArray[np.int64],
    bsns: npt.NDArray[np.int64],
    chunk: int,
) -> tuple[float, int]:
    """Charge one batch chunk by chunk; (seconds, households refused)."""
    offsets = np.concatenate([[0], np.cumsum(counts)])
    refused = 0
    started = time.perf_counter()
    for index, start in enumerate(range(0, len(counts), chunk)):
        end = min(len(counts), start + chunk)
        refused += len(
            budget.charge(
                batch_id=batch_id,
                chunk_index=index,
                digest=f"{batch_id}/{index}",
                mode="masked",
                period=PERIOD,
                member_bsns=bsns[offsets[start] : offsets[end]],
                member_counts=counts[start:end],
                audit_digest=b"\0" * 32,
                at=AT,
            )
        )
    return time.perf_counter() - started, refused


class _Meter:
    """Memory figures of one step: resident (kept, peak growth) and, when tracing, the heap."""

    def __init__(self) -> None:
        self.rss, self.peak = _rss(), _peak()
        self.heap = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()

    def report(self, step: str, seconds: float, extra: str = "") -> None:
        heap = ""
        if tracemalloc.is_tracing():
            now, top = tracemalloc.get_traced_memory()
            kept, grew = (now - self.heap) / MiB, (top - self.heap) / MiB
            heap = f"   heap kept {kept:+6.1f} MiB peak {grew:+6.1f} MiB"
        print(
            f"{step:<18} {seconds:6.2f} s   rss kept {(_rss() - self.rss) / MiB:+6.1f} MiB"
            f"   peak growth {(_peak() - self.peak) / MiB:+6.1f} MiB{heap}{extra}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=8192, help="households per chunk")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trace", action="store_true", help="also the heap (tracemalloc)")
    parser.add_argument("--replay", nargs=2, metavar=("DB", "BSNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trace:
        tracemalloc.start()
    if args.replay:
        return _replay(Path(args.replay[0]), [int(b) for b in args.replay[1].split(",")])
    counts, bsns = _households(args.households, args.seed)
    print(
        f"{args.households:,} households, {len(bsns):,} BSNs, chunks of {args.chunk:,} "
        f"({-(-args.households // args.chunk)} chunks per batch)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "budget.sqlite"
        budget = SqliteBudget(path, limit=2)  # the third batch finds every budget spent
        steps = (("batch 1 (fresh)", "bench-1"), ("batch 2 (on top)", "bench-2"))
        for step, batch_id in (*steps, ("batch 3 (refused)", "bench-3")):
            meter = _Meter()
            seconds, refused = _charge_batch(budget, batch_id, counts, bsns, args.chunk)
            per = seconds / args.households * 1e6
            meter.report(step, seconds, f"   {per:.2f} µs/household, {refused} refused")
        budget.close()
        print(f"process peak RSS {_peak() / MiB:.0f} MiB")
        # In a fresh process, so the memory freed by the first budget does not hide the replay's.
        probe = ",".join(str(b) for b in bsns[:: max(1, len(bsns) // 1000)].tolist())
        cmd = [sys.executable, "-m", "benchmarks.bench_budget", "--replay", str(path), probe]
        cmd += ["--trace"] if args.trace else []
        subprocess.run(cmd, check=True)
    return 0


def _replay(path: Path, probe: list[int]) -> int:
    """Reopen a charged budget (the start-up replay) and check a sample of the counts."""
    meter = _Meter()
    started = time.perf_counter()
    budget = SqliteBudget(path, limit=2)
    meter.report("reopen (replay)", time.perf_counter() - started)
    lost = [b for b in probe if budget.used(b, 2025) != 2]
    budget.close()
    if lost:
        print(f"replay lost the counts of {len(lost)} of {len(probe)} sampled BSNs")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
