"""Masked mode over mutual TLS against a plaintext channel: same server, same data, same run.

    python -m benchmarks.bench_mtls --households 1000000

One UWV screening service behind one gRPC server listening twice on localhost: a plaintext
port and a mutual-TLS port (development PKI from shared.pki, ECDSA P-256, TLS 1.3). The same
SVB batch (the one client pipeline, masked CKKS N=8192) runs over each, alternating, and the
best time of each is compared. The public context is uploaded before timing. Prints
households/s of each and the mTLS overhead (issue 10: within 10%).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path

import grpc

from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.client_channel import ChannelSecurity
from shared.digests import sha256_hex
from shared.he.backend import SecretMaskedContext
from shared.he.params import MASKED_DEFAULT
from shared.models import Period
from shared.pki import PkiLayout, init_dev_pki, server_credentials
from shared.wire import CHANNEL_OPTIONS
from svb_client.pipeline import ScreenJob, run_screen
from svb_client.schemes import scheme_for
from svb_client.wire import GrpcTransport
from uwv_server.contexts import ContextRegistry
from uwv_server.grpc.screening import ScreeningServicer
from uwv_server.he_rules import PinnedRules
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

PASSPHRASE = b"benchmark passphrase"
ROOT = Path(__file__).resolve().parent.parent


def _now() -> datetime:
    return datetime.now(UTC)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--period", default="2025-01..2025-12")
    parser.add_argument("--repeat", type=int, default=1, help="runs per channel (best counts)")
    args = parser.parse_args()
    period = Period.parse(args.period)
    with tempfile.TemporaryDirectory(prefix="bench-mtls-") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        synth = generate(args.households, period, tmp / "synth", seed=2026)
        import_polis(synth.polis_path, tmp / "store")
        init_dev_pki(tmp / "pki", PASSPHRASE, now=_now(), days=2)
        service = ScreeningService(
            Snapshot.open_current(tmp / "store"),
            ContextRegistry(tmp / "contexts"),
            rules=PinnedRules.from_files([ROOT / "rules" / "aio.yaml"]),  # UWV's own choice
        )
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8), options=list(CHANNEL_OPTIONS)
        )
        pb_grpc.add_ScreeningServiceServicer_to_server(ScreeningServicer(service), server)
        plain_port = server.add_insecure_port("127.0.0.1:0")
        creds = server_credentials(
            PkiLayout(tmp / "pki").party("server").directory, PASSPHRASE, now=_now()
        )
        tls_port = server.add_secure_port("127.0.0.1:0", creds)
        server.start()
        secret = SecretMaskedContext.generate(MASKED_DEFAULT)
        scheme = scheme_for(secret)
        public = scheme.public_context()
        with GrpcTransport.unsafe_insecure(f"127.0.0.1:{plain_port}") as t0:
            t0.ensure_context(scheme.parameter_set, public, sha256_hex(public))
        print(f"# masked over mTLS vs plaintext: {args.households:,} households, {period}")
        print(
            f"setup (generate, import, PKI, key, context upload): {time.perf_counter() - t:.1f} s"
        )
        channels = {
            "plaintext": (f"127.0.0.1:{plain_port}", ChannelSecurity.unsafe_plaintext()),
            "mutual TLS": (
                f"localhost:{tls_port}",
                ChannelSecurity.mutual_tls(
                    PkiLayout(tmp / "pki").party("svb").directory, PASSPHRASE, clock=_now
                ),
            ),
        }
        best = dict.fromkeys(channels, float("inf"))
        sent: dict[str, int] = {}
        try:
            for _ in range(args.repeat):
                for label, (target, security) in channels.items():
                    t = time.perf_counter()
                    summary = run_screen(
                        ScreenJob(
                            households=synth.households_path,
                            period=period,
                            out=tmp / "out.csv",
                            journal=tmp / "journal.sqlite",
                            secret=secret,
                            server=target,
                            rule=ROOT / "rules" / "aio.yaml",
                            fresh=True,
                            progress=False,
                            security=security,
                        )
                    )
                    best[label] = min(best[label], time.perf_counter() - t)
                    sent[label] = summary.bytes_sent
        finally:
            server.stop(grace=None)
            service.contexts.close()
    n = args.households
    for label, seconds in best.items():
        print(
            f"{label:<11} {seconds:7.2f} s  {n / seconds:>10,.0f} households/s  "
            f"{sent[label] / n:.0f} bytes/household up"
        )
    overhead = best["mutual TLS"] / best["plaintext"] - 1
    print(f"mTLS overhead: {overhead:+.1%} (target: within 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
