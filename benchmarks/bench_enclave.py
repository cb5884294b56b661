"""The compute-to-data mode end to end versus the plaintext path, same data, same run.

    python -m benchmarks.bench_enclave --households 1000000
    python -m benchmarks.bench_enclave --households 20000 --budget     # with the SQLite budget

Generates a seeded synthetic polis and household file, loads the store, then times
1. the plaintext path (benchmarks/plaintext_path.py, in this process), and
2. ``run_screen`` in ``--mode enclave``: a real gRPC server on localhost with the
   ComputeToData service,
   the AIO rule signed, submitted, approved, and run in the isolated runner process, every
   run statement verified by the client, the outreach file written.
Prints households/s of each, the ratio (target: at most 2) and checks the decisions agree.
Setup (generation, import, snapshot digest, approval) is not timed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import plaintext_path
from shared.client_channel import ChannelSecurity
from shared.crypto import Role
from shared.models import Period
from svb_client.pipeline import ScreenJob, run_screen
from tests.unit.enclave.enclave_testkit import (
    AIO_RULE,
    Clock,
    aio_bundle,
    approval,
    make_identities,
    make_service,
)
from uwv_server.contexts import ContextRegistry
from uwv_server.enclave.sandbox import Limits
from uwv_server.grpc.compute_to_data import enclave_registrar
from uwv_server.grpc.server import build_server
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

TARGET_RATIO = 2.0


def _decisions(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        return {r["household_id"]: r["decision"] for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--period", default="2025-01..2025-12")
    parser.add_argument("--budget", action="store_true", help="charge the durable budget too")
    parser.add_argument("--run-size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of R timings of each path")
    args = parser.parse_args(argv)
    period = Period.parse(args.period)
    with tempfile.TemporaryDirectory(prefix="bench-enclave-") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        generate(args.households, period, tmp / "synth", seed=2025)
        import_polis(tmp / "synth" / "polis.parquet", tmp / "store")
        households = tmp / "synth" / "households.parquet"
        ids = make_identities()
        clock = Clock()
        service = make_service(
            tmp,
            tmp / "store",
            ids,
            clock=clock,
            budget_limit=1000 if args.budget else None,
            limits=Limits(cpu_seconds=600, memory_bytes=16 * 1024**3, wall_seconds=900),
        )
        d, envelope = aio_bundle(ids)
        service.submit(envelope)
        service.register.approve(approval(ids.uwv, Role.APPROVER, d), clock())
        service.register.approve(approval(ids.auditor, Role.AUDITOR, d), clock())
        screening = ScreeningService(
            Snapshot.open_current(tmp / "store"), ContextRegistry(tmp / "contexts")
        )
        server, port = build_server(screening, 0, extra_services=[enclave_registrar(service)])
        server.start()
        print(
            f"setup (generate, import, snapshot digest, approve): {time.perf_counter() - t:.1f} s"
        )
        try:
            plain_s = enclave_s = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                plaintext_path.run(tmp / "store", households, period, tmp / "plain.csv")
                plain_s = min(plain_s, time.perf_counter() - t)
                t = time.perf_counter()
                summary = run_screen(
                    ScreenJob(
                        security=ChannelSecurity.unsafe_plaintext(),
                        households=households,
                        period=period,
                        out=tmp / "enclave.csv",
                        journal=tmp / "enclave.journal.sqlite",
                        mode="enclave",
                        registry=ids.registry,
                        server=f"127.0.0.1:{port}",
                        rule=AIO_RULE,
                        chunk_size=args.run_size,
                        fresh=True,  # every repeat is a new batch, not a resumed one
                        progress=False,
                    )
                )
                enclave_s = min(enclave_s, time.perf_counter() - t)
        finally:
            server.stop(grace=None)
            screening.contexts.close()
        n = summary.households
        agree = _decisions(tmp / "plain.csv") == _decisions(tmp / "enclave.csv")
        ratio = enclave_s / plain_s
        print(f"households:          {n:,}")
        print(f"plaintext path:      {plain_s:.2f} s  {n / plain_s:,.0f} households/s")
        print(
            f"enclave mode:        {enclave_s:.2f} s  {n / enclave_s:,.0f} households/s  "
            f"({summary.runs} run(s), statements verified"
            + (", budget charged" if args.budget else "")
            + ")"
        )
        print(f"ratio enclave/plain: {ratio:.2f} (target <= {TARGET_RATIO})")
        print(f"decisions agree:     {agree}")
        return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
