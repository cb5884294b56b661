"""``uwv-server process REQUEST --store S --out RESPONSE``: answer a sealed request offline.

Builds the service exactly as ``serve`` does (:func:`uwv_server.cli.screening_components`:
snapshot, audit trail, budget and charge ledger, approved rules, modes) and runs
:func:`uwv_server.sealed_process.process_request`. UWV opens requests with its sealing identity
(``--sealing``, default ``PKI/uwv-sealing``), signs the response with its server identity
(``--signing``, default ``PKI/server``), and accepts requests from the organisations the key
registry (``--registry``) gives the ``screener`` role.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from shared.crypto.registry import Registry
from shared.errors import Error
from shared.pki.keystore import read_passphrase
from shared.sealed import DEFAULT_CHUNK_SIZE, SqliteProcessedIds
from shared.sealed.parties import (
    load_receiver,
    load_sender,
    senders_from_registry,
    trust_anchors,
)
from uwv_server import enclave_cli
from uwv_server.sealed_process import process_request

PROCESSED_DB = "sealed-processed.sqlite"
KEPT_RESPONSES = "sealed-responses"


def _now() -> datetime:
    return datetime.now(UTC)


def _process(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    if args.registry is None:
        raise Error("uwv-server process: --registry is required (who may send requests)")
    if args.out.exists() and not args.force:
        raise Error(f"{args.out} exists already; give --force to write the response again")
    pki: Path = args.pki
    passphrase = read_passphrase(args.pki_passphrase_file)
    receiver, _ = load_receiver(args.sealing or pki / "uwv-sealing", passphrase)
    signing = args.signing or pki / "server"
    signer = load_sender(signing, passphrase)
    registry = Registry.from_file(args.registry)
    senders = senders_from_registry(registry, trust_anchors(signing), _now)

    from uwv_server.cli import screening_components  # the cli imports this module

    service, trail, parts = screening_components(args)
    processed = SqliteProcessedIds(args.store / PROCESSED_DB)
    try:
        result = process_request(
            args.request,
            args.out,
            service=service,
            receiver=receiver,
            senders=senders,
            signer=signer,
            processed=processed,
            clock=_now,
            kept=args.store / KEPT_RESPONSES,
            progress=None if args.quiet else sys.stderr,
            enclave=parts.enclave,
            chunk_size=args.sealed_chunk_size,
        )
    finally:
        processed.close()
        service.contexts.close()
        parts.close()
        trail.close()
    print(f"request {result.request_id} from {result.sender}")
    if result.repeated:
        print("  processed before: the response sent then, again (nothing evaluated or charged)")
    if result.refused is not None:
        print(f"  refused as a whole: {result.refused}")
    else:
        unit = "runs" if result.compute_to_data else "chunks"
        print(
            f"  {result.households:,} households in {result.chunks} {unit} "
            f"({result.failed_chunks} {unit} refused)"
        )
    print(
        f"response {args.out}: {result.response_size:,} bytes, sha256 "
        f"{result.response_sha256[:16]}… (and {args.out.name}.meta.json); carry both to SVB"
    )
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``process`` to ``uwv-server``'s subcommands."""
    p = sub.add_parser("process", help="answer a sealed request file offline (no network)")
    p.add_argument("request", type=Path, help="the sealed request file from SVB")
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="the sealed response file to write")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--pki", type=Path, default=Path("pki"), help="PKI directory")
    p.add_argument("--sealing", type=Path, help="UWV's sealing identity (PKI/uwv-sealing)")
    p.add_argument("--signing", type=Path, help="UWV's signing identity (PKI/server)")
    p.add_argument("--pki-passphrase-file", type=Path, help="default: $AIO_PKI_PASSPHRASE")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--sealed-chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="plaintext bytes per authenticated chunk of the response (default 1 MiB)",
    )
    enclave_cli.add_serve_arguments(p)  # --registry, --budget-limit … exactly as serve
    p.set_defaults(func=_process)
