"""``svb-client``: SVB's operator commands.

    svb-client screen --server HOST:PORT --tls-dir pki/svb --households FILE \\
                      --period YYYY-MM..YYYY-MM --mode masked --out FILE
    svb-client keys init --key FILE
    svb-client keys check --key FILE --server HOST:PORT --tls-dir pki/svb
    svb-client rules check FILE | rules digest FILE

The secret key lives encrypted in ``--key`` (created on first use); its passphrase comes
from ``--passphrase-file`` or the ``SVB_KEY_PASSPHRASE`` environment variable.

UWV is reached over mutual TLS: ``--tls-dir`` is SVB's party directory (``cert.pem``,
``key.pem``, ``ca.pem``), its key's passphrase from ``--tls-passphrase-file`` or
``AIO_PKI_PASSPHRASE``. ``--unsafe-insecure`` is plaintext, for a server on this machine only.
Who is asking comes from SVB's certificate, not from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.cli_support import run_command
from shared.client_channel import add_channel_arguments, channel_security
from shared.crypto import Registry
from shared.errors import Error
from shared.he.params import BFV_PARAMETER_SETS, MASKED_DEFAULT, PARAMETER_SETS, STRICT_DEFAULT
from shared.models import Period
from shared.rules import cli as rules_cli
from svb_client import enclave_cli, sealed_cli
from svb_client.keys import load_or_create, load_secret_key, read_passphrase
from svb_client.pipeline import DEFAULT_RULE, ScreenJob, run_screen
from svb_client.pipeline.enclave import statements_path
from svb_client.pipeline.he import DEFAULT_IN_FLIGHT
from svb_client.preflight import check_inputs

DEFAULT_PARAMETER_SET = {"masked": MASKED_DEFAULT.name, "strict": STRICT_DEFAULT.name}
DEFAULT_KEY = {"masked": "svb-key.enc", "strict": "svb-key-strict.enc"}


def _screen(args: argparse.Namespace) -> int:
    period = Period.parse(args.period)
    # Before any key, journal or connection: a period without a published norm, a bad rule or
    # an unreadable households file is refused with nothing created.
    households = None if args.response is not None else args.households
    check_inputs(args.rule, period, households, mode=args.mode)
    secret = None
    registry = None
    if args.mode == "enclave":
        if args.registry is None:
            raise Error("--mode enclave needs --registry (the key registry to verify statements)")
        registry = Registry.from_file(args.registry)
    else:
        params_name = args.parameter_set or DEFAULT_PARAMETER_SET[args.mode]
        key = args.key or Path(DEFAULT_KEY[args.mode])
        secret, created = load_or_create(key, read_passphrase(args.passphrase_file), params_name)
        if created:
            print(
                f"created a new {params_name} secret key in {key} (encrypted with your passphrase)",
                file=sys.stderr,
            )
    journal = args.journal or args.out.with_name(args.out.name + ".journal.sqlite")
    transport = sealed_cli.transport_for(args, journal)  # None: over the network
    job = ScreenJob(
        households=args.households,
        server=args.server,
        period=period,
        out=args.out,
        journal=journal,
        mode=args.mode,
        secret=secret,
        registry=registry,
        rule=args.rule,
        chunk_size=args.chunk_size or (args.run_size if args.mode == "enclave" else None),
        in_flight=sealed_cli.in_flight(args),
        fresh=args.fresh,
        progress=not args.quiet,
        deadline_s=args.deadline,
        connect_timeout_s=args.connect_timeout,
        security=channel_security(args),
        transport=transport,
    )
    summary = run_screen(job)
    if args.summary_json:
        data = dataclasses.asdict(summary) | {"runs": summary.runs}
        args.summary_json.write_text(json.dumps(data, indent=2))
    print(summary.text())
    if summary.awaiting_response:
        sealed_cli.report(transport)
        return 0
    print(f"outreach file: {args.out} (household_id, decision, reason)")
    if summary.statement_digests:
        print(f"run statements: {statements_path(args.out)}")
    return 0


def _keys_init(args: argparse.Namespace) -> int:
    if args.key.exists():
        raise Error(f"{args.key} exists already; refusing to overwrite a key")
    load_or_create(
        args.key, read_passphrase(args.passphrase_file), DEFAULT_PARAMETER_SET[args.mode]
    )
    print(f"created a new secret key in {args.key}")
    return 0


def _keys_check(args: argparse.Namespace) -> int:
    """Pass UWV's key check for a strict key now (cut-and-choose, docs/he.md), e.g. before
    sending strict requests as sealed files, which cannot run it."""
    from shared.he.keysets import StrictKeyFamily
    from svb_client.schemes import StrictScheme
    from svb_client.wire.grpc_transport import GrpcTransport

    passphrase = read_passphrase(args.passphrase_file)
    name = args.parameter_set
    if name is None:  # an existing key's own set, or the default for a new one
        name = (
            load_secret_key(args.key, passphrase).params.name
            if args.key.exists()
            else STRICT_DEFAULT.name
        )
    secret, _ = load_or_create(args.key, passphrase, name)
    if not isinstance(secret, StrictKeyFamily):
        raise Error(f"{args.key} is not a strict-mode key")
    with GrpcTransport(args.server, channel_security(args), timeout=args.timeout) as transport:
        digest, sent = StrictScheme(secret).register(transport)
    print(
        f"key set {secret.chosen} accepted by UWV: context {digest[:16]}… "
        + ("(key check passed now)" if sent else "(already held)")
    )
    return 0


def _rules_check(args: argparse.Namespace) -> int:
    binding = None if args.binding is None else str(args.binding)
    return rules_cli.check_command(str(args.file), sys.stdout, binding=binding)


def _rules_digest(args: argparse.Namespace) -> int:
    binding = None if args.binding is None else str(args.binding)
    return rules_cli.digest_command(str(args.file), sys.stdout, binding=binding)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svb-client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    screen = sub.add_parser("screen", help="screen a household file at UWV")
    screen.add_argument("--server", default="127.0.0.1:50051", help="UWV server HOST:PORT")
    add_channel_arguments(screen)
    screen.add_argument("--households", type=Path, required=True, help="CSV or Parquet")
    screen.add_argument("--period", required=True, help="YYYY-MM..YYYY-MM")
    screen.add_argument(
        "--mode",
        choices=("masked", "strict", "enclave"),
        default="masked",
        help="masked: BFV, sign of a masked difference (fast); strict: BFV, exactly one bit; "
        "enclave: UWV runs the approved rule in its isolated runner (compute-to-data)",
    )
    screen.add_argument(
        "--parameter-set",
        choices=sorted([*PARAMETER_SETS, *BFV_PARAMETER_SETS]),
        help="HE parameter set (default: the mode's own; see docs/he.md)",
    )
    screen.add_argument("--out", type=Path, required=True, help="outreach CSV to write")
    screen.add_argument(
        "--rule",
        type=Path,
        default=DEFAULT_RULE,
        help="the eligibility rule (YAML; default: the AIO rule shipped with the package); "
        "HE modes run its compiled HE plan",
    )
    screen.add_argument(
        "--key",
        type=Path,
        help="encrypted secret key (default svb-key.enc, strict: svb-key-strict.enc)",
    )
    screen.add_argument("--passphrase-file", type=Path)
    screen.add_argument("--journal", type=Path, help="default: OUT.journal.sqlite")
    screen.add_argument("--fresh", action="store_true", help="discard the journal, start over")
    screen.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="households per chunk (default: every slot; masked 16384, strict 16384; "
        "enclave: one run of 1,000,000)",
    )
    screen.add_argument(
        "--in-flight",
        type=int,
        default=DEFAULT_IN_FLIGHT,
        help=f"HE modes: chunks sent ahead of their answers (default {DEFAULT_IN_FLIGHT}; "
        "1 waits for each answer before sending the next chunk)",
    )
    screen.add_argument("--deadline", type=float, default=None, help="seconds for the stream")
    screen.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds to wait for the server"
    )
    screen.add_argument("--quiet", action="store_true", help="no progress bar")
    screen.add_argument("--summary-json", type=Path, help="also write the summary as JSON")
    enclave_cli.add_screen_arguments(screen)
    sealed_cli.add_screen_arguments(screen)
    screen.set_defaults(func=_screen)

    rules = sub.add_parser("rules", help="check a rule and compute its digest")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    for name, func, text in (
        ("check", _rules_check, "parse, check and run the rule's own test cases"),
        ("digest", _rules_digest, "print the rule's identity (SHA-256 of its canonical form)"),
    ):
        cmd = rules_sub.add_parser(name, help=text)
        cmd.add_argument("file", type=Path)
        cmd.add_argument("--binding", type=Path, help="binding file for a RegelRecht rule")
        cmd.set_defaults(func=func)

    keys = sub.add_parser("keys", help="manage the secret key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init", help="create a new encrypted secret key")
    init.add_argument("--key", type=Path, default=Path("svb-key.enc"))
    init.add_argument("--mode", choices=("masked", "strict"), default="masked")
    init.add_argument("--passphrase-file", type=Path)
    init.set_defaults(func=_keys_init)
    key_check = keys_sub.add_parser(
        "check", help="pass UWV's key check for a strict key (once per key; docs/he.md)"
    )
    key_check.add_argument("--key", type=Path, default=Path(DEFAULT_KEY["strict"]))
    key_check.add_argument("--parameter-set", help="strict set of a new key (default: the default)")
    key_check.add_argument("--passphrase-file", type=Path)
    key_check.add_argument("--server", default="127.0.0.1:50051", help="UWV server HOST:PORT")
    key_check.add_argument("--timeout", type=float, default=30.0)
    add_channel_arguments(key_check)
    key_check.set_defaults(func=_keys_check)
    enclave_cli.add_commands(sub)  # rules submit|status, keys signing-init|registry-add
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(
        build_parser(), argv, interrupted_hint="interrupted; run the same command again to resume"
    )


if __name__ == "__main__":
    sys.exit(main())
