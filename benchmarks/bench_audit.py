"""The audit log at scale: durable appends, inclusion and consistency proofs.

    python -m benchmarks.bench_audit --entries 1000000

Appends N entries (canonical run entries, distinct per index) in durable batches to a fresh
SQLite log, then generates and verifies random inclusion and consistency proofs against the
full tree. Targets (issue 6): at least 10,000 appends/s durable in batches, proofs in under a
millisecond.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from shared.audit import AuditLog, BatchSalt, BudgetUse, RunEntry, RunMode
from shared.audit.merkle import leaf_hash, verify_consistency, verify_inclusion


def _template() -> bytes:
    salt = BatchSalt(b"\x01" * 32)
    t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    entry = RunEntry.create(
        run_id="batch-XXXXXXXXXXXXXXXX",
        requester="SVB svb-client",
        rule_digest="ab" * 32,
        mode=RunMode.HE_MASKED,
        parameter_set="ckks-masked-n8192",
        period="2025-01..2025-12",
        household_count=4096,
        salt_commitment=salt.commitment(),
        batch_digest=salt.digest("batch", b"x"),
        result_digest=salt.digest("result", b"y"),
        budget=BudgetUse(bsns_charged=5900),
        requested_at=t,
        started_at=t,
        finished_at=t,
    )
    return entry.canonical_bytes()


def _letters(i: int) -> bytes:
    """16 letters a–p for ``i``: distinct entries with no digit runs (no BSN-like labels)."""
    return bytes(97 + ((i >> (4 * k)) & 15) for k in range(16))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000, help="entries per durable append")
    parser.add_argument("--proofs", type=int, default=2_000)
    args = parser.parse_args()
    template = _template()
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog.open(Path(tmp) / "log.sqlite", "bench/log")
        started = time.perf_counter()
        for start in range(0, args.entries, args.batch):
            end = min(args.entries, start + args.batch)
            leaves = [template.replace(b"XXXXXXXXXXXXXXXX", _letters(i)) for i in range(start, end)]
            log.store.append(leaves)
        append_s = time.perf_counter() - started
        size = log.size
        root = log.root()
        rng = random.Random(7)

        indices = [rng.randrange(size) for _ in range(args.proofs)]
        t0 = time.perf_counter()
        proofs = [log.inclusion_proof(i, size) for i in indices]
        gen_s = time.perf_counter() - t0
        hashes = [leaf_hash(log.leaves(i, i + 1)[0]) for i in indices]
        t0 = time.perf_counter()
        for i, h, proof in zip(indices, hashes, proofs, strict=True):
            verify_inclusion(i, size, h, proof, root)
        ver_s = time.perf_counter() - t0

        olds = [rng.randrange(1, size) for _ in range(args.proofs)]
        old_roots = [log.root(o) for o in olds]
        t0 = time.perf_counter()
        cproofs = [log.consistency_proof(o, size) for o in olds]
        cgen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for o, r, proof in zip(olds, old_roots, cproofs, strict=True):
            verify_consistency(o, size, proof, r, root)
        cver_s = time.perf_counter() - t0
        log.close()

    n = args.proofs
    print(f"# audit log benchmark: {size:,} entries, durable batches of {args.batch:,}")
    print(f"appends:                 {size / append_s:>12,.0f} entries/s  (target >= 10,000)")
    print(f"inclusion proof, make:   {gen_s / n * 1e3:>12.3f} ms each ({n / gen_s:,.0f}/s)")
    print(f"inclusion proof, verify: {ver_s / n * 1e3:>12.3f} ms each ({n / ver_s:,.0f}/s)")
    print(f"consistency proof, make: {cgen_s / n * 1e3:>12.3f} ms each ({n / cgen_s:,.0f}/s)")
    print(f"consistency proof, verify:{cver_s / n * 1e3:>11.3f} ms each ({n / cver_s:,.0f}/s)")
    worst = max(gen_s, ver_s, cgen_s, cver_s) / n * 1e3
    ok = size / append_s >= 10_000 and worst < 1.0
    print("RESULT:", "targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
