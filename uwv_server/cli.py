"""``uwv-server``: UWV's operator commands.

uwv-server generate --households N --period P --out DIR     synthetic polis + SVB file
uwv-server load --polis FILE --store DIR [--skip-invalid]    import a polis extract
uwv-server serve --store DIR --tls DIR --registry FILE      serve over mutual TLS
uwv-server rules verify FILE [--json]                        the rule verifier's report
uwv-server pki init DIR | pki issue DIR ...                  development CA and certificates
uwv-server process REQ --store DIR --out RESP --registry R   answer a sealed request file
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from shared.cli_support import run_command
from shared.crypto import Registry
from shared.he.keysets import DEFAULT_KEY_SETS
from shared.models import Period
from shared.pki import CertificateReloader, read_passphrase, reloading_server_credentials
from shared.pki import cli as pki_cli
from shared.rules import cli as rules_cli
from uwv_server import enclave_cli, sealed_cli, synth
from uwv_server.audit_trail import AuditTrail
from uwv_server.contexts import ContextRegistry
from uwv_server.grpc.audit import audit_registrar
from uwv_server.grpc.auth import Authoriser
from uwv_server.grpc.metrics import ServerMetrics, tree_rss_bytes
from uwv_server.grpc.runtime import GIL_SWITCH_INTERVAL_S, ServerLimits
from uwv_server.grpc.server import TlsConfig, build_server, is_loopback
from uwv_server.he_rules import ApprovedRules, PinnedRules, RegisterRules
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot, import_polis


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _generate(args: argparse.Namespace) -> int:
    started = time.monotonic()
    summary = synth.generate(
        args.households, Period.parse(args.period), args.out, seed=args.seed, fmt=args.format
    )
    print(
        f"wrote {summary.records:,} polis records for {summary.persons:,} persons to "
        f"{summary.polis_path} and {summary.households:,} households to "
        f"{summary.households_path} in {time.monotonic() - started:.1f} s"
    )
    return 0


def _load(args: argparse.Namespace) -> int:
    started = time.monotonic()
    result = import_polis(args.polis, args.store, skip_invalid=args.skip_invalid)
    print(
        f"imported {result.rows:,} records of {result.persons:,} persons into {args.store} "
        f"(snapshot {result.snapshot[:16]}…) in {time.monotonic() - started:.1f} s"
        + (f"; {result.rejected} invalid rows written to rejects file" if result.rejected else "")
    )
    return 0


def screening_components(
    args: argparse.Namespace,
) -> tuple[ScreeningService, AuditTrail, enclave_cli.ServeComponents]:
    """The screening service as ``serve`` builds it (snapshot, audit trail, budget and charge
    ledger, approved rules, modes), from ``serve``'s arguments; ``uwv-server process`` builds
    its service here too, so a batch from a file meets the very same service."""
    log = logging.getLogger("uwv_server")
    snapshot = Snapshot.open_current(args.store)
    trail = AuditTrail.open(args.store)
    parts = enclave_cli.serve_components(
        args,
        args.store,
        snapshot,
        on_statement=trail.record_statement,
        on_unlogged=trail.log_batch,
    )
    trail.ledger = parts.budget
    # UWV computes only rules it approved: the HE modes read the compute-to-data register.
    rules: ApprovedRules | None = (
        None if parts.enclave is None else RegisterRules.of(parts.enclave.register, _utc_now)
    )
    if args.unsafe_pinned_rule:
        if rules is not None:
            raise SystemExit("uwv-server serve: --unsafe-pinned-rule replaces the register")
        rules = PinnedRules.from_files(args.unsafe_pinned_rule)
    contexts = ContextRegistry(
        args.store / "contexts",
        memory_limit_bytes=getattr(args, "memory_limit_mb", 4096) * 1024 * 1024,
        strict_workers=getattr(args, "strict_workers", None),
        # the server's process tree as the kernel counts it, beside the estimates
        measure_memory=tree_rss_bytes,
        strict_key_sets=getattr(args, "strict_key_sets", DEFAULT_KEY_SETS),
    )
    service = ScreeningService(
        snapshot,
        contexts,
        budget=parts.budget,
        audit=trail if parts.budget is not None else None,
        rules=rules,
        modes=parts.modes,
    )
    budget = parts.budget
    log.info(
        "modes served: %s; budget: %s; HE rules: %s",
        ", ".join(parts.modes),
        "NONE (--unsafe-no-budget)"
        if budget is None
        else f"{budget.limit} evaluations per BSN per calendar year"
        + "".join(f", {m} {n}" for m, n in sorted(budget.mode_limits.items())),
        "pinned files (--unsafe-pinned-rule)"
        if args.unsafe_pinned_rule
        else ("approved in the register" if rules is not None else "none (no register)"),
    )
    for index in service.recover():
        log.warning("audit log entry %d written for charges a crash left unlogged", index)
    return service, trail, parts


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("uwv_server")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    tls, reloader = _tls(args)
    service, trail, parts = screening_components(args)
    snapshot = service.snapshot
    limits = ServerLimits(
        max_streams_total=args.max_streams,
        max_streams_per_caller=args.max_streams_per_caller,
        idle_timeout_s=args.idle_timeout,
        drain_grace_s=args.drain_grace,
    )
    metrics = ServerMetrics()
    server, port = build_server(
        service,
        args.port,
        host=args.host,
        extra_services=[audit_registrar(trail), *parts.registrars],
        limits=limits,
        metrics=metrics,
        tls=tls,
    )
    server.start()
    log.info(
        "serving on %s:%d (snapshot %s…, %s records); health: grpc.health.v1",
        args.host,
        port,
        snapshot.digest[:12],
        snapshot.manifest.get("rows"),
    )
    if args.metrics_port is not None:
        bound = metrics.serve(args.metrics_port, args.metrics_host)
        log.info("metrics on http://%s:%d/metrics", args.metrics_host, bound)
    if args.port_file:
        args.port_file.write_text(f"{port}\n")
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if reloader is not None:
        # Only sets a flag: the next handshake re-reads cert, key and CA bundle; connections
        # and batches in flight keep the session they have.
        signal.signal(signal.SIGHUP, lambda signum, frame: reloader.request_reload())
    stop.wait()
    log.info("shutting down: draining for up to %.0f s", limits.drain_grace_s)
    server.drain()
    server.stop(grace=1.0)
    service.contexts.close()
    parts.close()
    trail.close()
    log.info("stopped")
    return 0


def _tls(args: argparse.Namespace) -> tuple[TlsConfig | None, CertificateReloader | None]:
    """Mutual TLS from ``--tls DIR`` (the default), or plaintext with ``--unsafe-insecure``."""
    if args.tls is None:
        if not args.unsafe_insecure:
            raise SystemExit(
                "uwv-server serve: give --tls DIR (mutual TLS, with --registry for the roles) "
                "or, for development on a loopback address only, --unsafe-insecure"
            )
        if not is_loopback(args.host):
            raise SystemExit(
                f"uwv-server serve: --unsafe-insecure is refused on {args.host}: plaintext is "
                "only allowed on a loopback address"
            )
        return None, None
    if args.registry is None:
        raise SystemExit(
            "uwv-server serve: --tls needs --registry (the key registry whose organisations: "
            "section gives each OIN its roles)"
        )
    passphrase = read_passphrase(args.tls_passphrase_file)
    credentials, reloader = reloading_server_credentials(args.tls, passphrase, clock=_utc_now)
    authoriser = Authoriser(Registry.from_file(args.registry), clock=_utc_now)
    logging.getLogger("uwv_server").info(
        "mutual TLS as %s; roles from %s", reloader.material.identity, args.registry
    )
    return TlsConfig(credentials, authoriser), reloader


def _audit_replay(args: argparse.Namespace) -> int:
    from shared.audit.note import parse_vkey
    from uwv_server.audit_replay import replay

    key_text = args.log_key
    if key_text.startswith("@"):
        key_text = Path(key_text[1:]).read_text().strip()
    checks = replay(
        export=args.export,
        log_key=parse_vkey(key_text),
        run_id=args.run_id,
        package=args.package,
        rule=args.rule,
        store=args.store,
    )
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<20} {c.detail}")
    verdict = all(c.ok for c in checks)
    print(
        "VERDICT:",
        "the run replays: same rule, data, batch and output"
        if verdict
        else "the run does NOT replay (see FAIL above)",
    )
    return 0 if verdict else 1


def _rules_verify(args: argparse.Namespace) -> int:
    return rules_cli.verify_command(
        str(args.file),
        sys.stdout,
        json_output=args.json,
        binding=None if args.binding is None else str(args.binding),
        policy=None if args.policy is None else str(args.policy),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uwv-server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic polis and matching SVB household file")
    gen.add_argument("--households", type=int, default=100_000)
    gen.add_argument("--period", default="2025-01..2025-12")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=2025)
    gen.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    gen.set_defaults(func=_generate)

    load = sub.add_parser("load", help="import a polis extract (CSV or Parquet)")
    load.add_argument("--polis", type=Path, required=True)
    load.add_argument("--store", type=Path, required=True)
    load.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import valid rows, write invalid ones to a rejects file",
    )
    load.set_defaults(func=_load)

    rules = sub.add_parser("rules", help="verify rules SVB submits")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    verify = rules_sub.add_parser("verify", help="the static verifier's report on a rule file")
    verify.add_argument("file", type=Path)
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.add_argument("--binding", type=Path, help="binding file for a RegelRecht rule")
    verify.add_argument("--policy", type=Path, help="release policy (releasable attributes)")
    verify.set_defaults(func=_rules_verify)

    audit = sub.add_parser("audit", help="auditor tools that need UWV's data")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    rp = audit_sub.add_parser("replay", help="replay a compute-to-data run and compare digests")
    rp.add_argument("--store", type=Path, required=True)
    rp.add_argument("--export", type=Path, required=True, help="export of the audit log")
    rp.add_argument("--log-key", required=True, help="the log's verifier key, or @file")
    rp.add_argument("--run-id", required=True)
    rp.add_argument("--package", type=Path, required=True, help="SVB's replay package (.npz)")
    rp.add_argument("--rule", type=Path, required=True, help="the approved rule file")
    rp.set_defaults(func=_audit_replay)

    serve = sub.add_parser("serve", help="serve screening over gRPC")
    serve.add_argument("--store", type=Path, required=True)
    serve.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    d = ServerLimits()
    serve.add_argument(
        "--memory-limit-mb",
        type=int,
        default=4096,
        help="bound on evaluator worker pools and cached contexts; new batches beyond it are "
        "refused with RESOURCE_EXHAUSTED (default 4096)",
    )
    serve.add_argument(
        "--strict-workers", type=int, help="worker processes per strict evaluator (default: cores)"
    )
    serve.add_argument(
        "--strict-key-sets",
        type=int,
        default=DEFAULT_KEY_SETS,
        help="K, the key sets a strict-mode client uploads for the cut-and-choose key check: a "
        f"malformed key is caught with probability (K-1)/K (default {DEFAULT_KEY_SETS}: 87.5%%; "
        "each set costs the client ~2 s and 6.4 MB once, docs/he.md)",
    )
    serve.add_argument("--max-streams", type=int, default=d.max_streams_total)
    serve.add_argument("--max-streams-per-caller", type=int, default=d.max_streams_per_caller)
    serve.add_argument(
        "--idle-timeout", type=float, default=d.idle_timeout_s, help="seconds (default 120)"
    )
    serve.add_argument(
        "--drain-grace",
        type=float,
        default=d.drain_grace_s,
        help="on SIGTERM, seconds running batches may finish (default 30)",
    )
    serve.add_argument(
        "--tls",
        type=Path,
        help="the server's TLS directory (cert.pem, key.pem, ca.pem; see uwv-server pki init): "
        "every service over mutual TLS; SIGHUP reloads it",
    )
    serve.add_argument("--tls-passphrase-file", type=Path, help="passphrase of the TLS key")
    serve.add_argument(
        "--unsafe-insecure",
        action="store_true",
        help="plaintext without authentication, on a loopback address only (development)",
    )
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    serve.add_argument("--metrics-host", default="127.0.0.1")
    enclave_cli.add_serve_arguments(serve)
    serve.set_defaults(func=_serve)
    enclave_cli.add_commands(sub)  # rules list|report|approve|reject|revoke, keys …
    pki_cli.add_commands(sub)  # pki init|issue
    sealed_cli.add_commands(sub)  # process REQUEST --out RESPONSE (sealed files)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
