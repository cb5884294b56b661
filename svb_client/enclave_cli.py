"""``svb-client`` commands of the compute-to-data mode (added by :func:`add_commands`).

svb-client rules submit FILE --server HOST:PORT --key FILE [--passphrase-file FILE]
svb-client rules status FILE --server HOST:PORT
svb-client keys signing-init | keys registry-add          (see shared.crypto.cli)
svb-client screen --mode enclave --registry FILE ...      (the one pipeline, svb_client.pipeline)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shared.client_channel import add_channel_arguments, channel_security
from shared.crypto.cli import add_key_commands, load_key, subgroup
from shared.rules import digest, parse_file
from svb_client import sealed_cli
from svb_client.pipeline.enclave import DEFAULT_RUN_SIZE, sign_bundle
from svb_client.wire import BatchDeferred, GrpcTransport


def _submit(args: argparse.Namespace) -> int:
    d, envelope = sign_bundle(args.file, load_key(args.key, args.passphrase_file))
    sealed = sealed_cli.rule_transport_for(args)
    if sealed is not None:
        try:
            status = sealed.submit_rule(envelope)
        except BatchDeferred:
            print(
                f"sealed rule submission: {args.request_out} and {args.request_out.name}"
                ".meta.json; carry both to UWV (uwv-server process), then run `svb-client rules "
                f"submit {args.file} --key … --request {args.request_out} --response FILE`"
            )
            return 0
    else:
        with GrpcTransport(
            args.server, channel_security(args), timeout=args.connect_timeout
        ) as conn:
            status = conn.submit_rule(envelope)
    print(status.report_text, end="")
    print(f"submitted {d}: {status.state} ({status.reason})")
    return 0 if status.verifier_accepted else 1


def _status(args: argparse.Namespace) -> int:
    d = digest(parse_file(args.file))
    with GrpcTransport(args.server, channel_security(args), timeout=args.connect_timeout) as conn:
        status = conn.rule_status(d)
    print(f"{d}: {status.state} ({status.reason or 'may run'})")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``rules submit``, ``rules status`` and the ``keys`` signing commands."""
    rules = subgroup(subparsers, "rules", "rules for the compute-to-data mode")
    submit = rules.add_parser("submit", help="sign a rule as its author and submit it to UWV")
    submit.add_argument("file", type=Path)
    submit.add_argument("--key", type=Path, required=True, help="SVB's author signing key")
    submit.add_argument("--passphrase-file", type=Path)
    sealed_cli.add_rule_arguments(submit)
    submit.set_defaults(func=_submit)
    status = rules.add_parser("status", help="is the rule approved at UWV?")
    status.add_argument("file", type=Path)
    status.set_defaults(func=_status)
    for p in (submit, status):
        p.add_argument("--server", default="127.0.0.1:50051")
        p.add_argument("--connect-timeout", type=float, default=30.0)
        add_channel_arguments(p)
    add_key_commands(subparsers)


def add_screen_arguments(screen: argparse.ArgumentParser) -> None:
    """The extra ``screen`` arguments of ``--mode enclave``."""
    screen.add_argument(
        "--registry", type=Path, help="key registry to verify run statements (--mode enclave)"
    )
    screen.add_argument(
        "--run-size",
        type=int,
        default=None,
        help=f"households per enclave run (the --chunk-size of --mode enclave; default "
        f"{DEFAULT_RUN_SIZE:,})",
    )
