"""``uwv-server pki``: make a development PKI (CA, server and organisation certificates).

uwv-server pki init DIR [--days N] [--passphrase-file F] [--force]
uwv-server pki issue DIR --name NAME --organisation ORG --oin OIN [--server [--dns H] [--ip A]]

The passphrase (for every key written, the CA's included) comes from ``--passphrase-file`` or
``AIO_PKI_PASSPHRASE``. The OINs ``init`` uses are fictitious (see docs/identity.md).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from shared.crypto.registry import AccessRole, OrganisationEntry
from shared.pki.ca import DEFAULT_DNS_NAMES, DEFAULT_IP_ADDRESSES, Organisation, Profile
from shared.pki.devpki import ADR, SVB, UWV, Issued, PartySpec, init_dev_pki, issue_party
from shared.pki.errors import PkiLayoutError
from shared.pki.keystore import PASSPHRASE_ENV, read_passphrase
from shared.pki.layout import PkiLayout


def _print(issued: list[Issued], root: Path) -> None:
    for item in issued:
        ident = item.identity
        print(
            f"{item.name:<14} {item.profile.value:<6} {ident.organisation:<6} OIN {ident.oin} "
            f"until {ident.not_after:%Y-%m-%d}  {item.directory}"
        )
    print(
        "Give each party its own directory (never ca/); the roles of each OIN go into the key "
        "registry's `organisations:` section (docs/identity.md)."
    )


DEV_ROLES: dict[str, frozenset[AccessRole]] = {
    UWV.oin: frozenset({AccessRole.OPERATOR}),
    SVB.oin: frozenset({AccessRole.SCREENER}),
    ADR.oin: frozenset({AccessRole.AUDITOR}),
}
"""The roles the demo gives the development organisations (in the registry, not in certs)."""


def registry_snippet(issued: list[Issued]) -> str:
    """The key registry's ``organisations:`` section for the development organisations."""
    entries: dict[str, OrganisationEntry] = {}
    for item in issued:
        ident = item.identity
        if ident.oin in DEV_ROLES and ident.oin not in entries:
            entries[ident.oin] = OrganisationEntry(
                name=ident.organisation, oin=ident.oin, roles=DEV_ROLES[ident.oin]
            )
    # JSON strings are YAML flow scalars: the OIN stays quoted (never read as a number).
    rows = [
        f"  - {{name: {json.dumps(e.name)}, oin: {json.dumps(e.oin)}, "
        f"roles: [{', '.join(sorted(r.value for r in e.roles))}]}}\n"
        for e in entries.values()
    ]
    return "organisations:\n" + "".join(rows)


def _init(args: argparse.Namespace) -> int:
    passphrase = read_passphrase(args.passphrase_file)
    issued = init_dev_pki(
        args.dir, passphrase, now=datetime.now(UTC), days=args.days, force=args.force
    )
    print(f"development CA in {PkiLayout(args.dir).ca_dir} (its key stays there)")
    _print(issued, args.dir)
    print("\nFor the key registry (roles are UWV's configuration, not part of a certificate):")
    print(registry_snippet(issued), end="")
    return 0


def _issue(args: argparse.Namespace) -> int:
    passphrase = read_passphrase(args.passphrase_file)
    spec = PartySpec(
        args.name,
        Organisation(args.organisation, args.oin),
        Profile.SERVER if args.server else Profile.CLIENT,
        args.common_name or args.name,
        dns_names=tuple(args.dns) if args.dns else DEFAULT_DNS_NAMES,
        ip_addresses=tuple(args.ip) if args.ip else DEFAULT_IP_ADDRESSES,
    )
    if (args.dns or args.ip) and not args.server:
        raise PkiLayoutError("--dns and --ip name a server's addresses; add --server")
    issued = issue_party(
        args.dir, passphrase, spec, now=datetime.now(UTC), days=args.days, force=args.force
    )
    _print([issued], args.dir)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pki init`` and ``pki issue`` to a command's subparsers."""
    pki = sub.add_parser("pki", help="development PKI: CA, server and client certificates")
    pki_sub = pki.add_subparsers(dest="pki_command", required=True)
    pw_help = f"first line is the key passphrase (default: ${PASSPHRASE_ENV})"

    init = pki_sub.add_parser("init", help="create a CA, a localhost server cert, client certs")
    init.add_argument("dir", type=Path)
    init.add_argument("--days", type=int, default=90, help="validity (default 90)")
    init.add_argument("--passphrase-file", type=Path, help=pw_help)
    init.add_argument("--force", action="store_true", help="replace the PKI in an existing DIR")
    init.set_defaults(func=_init)

    issue = pki_sub.add_parser("issue", help="one more organisation certificate from DIR's CA")
    issue.add_argument("dir", type=Path)
    issue.add_argument("--name", required=True, help="party directory name, e.g. gemeente-x")
    issue.add_argument("--organisation", required=True, help="subject O")
    issue.add_argument("--oin", required=True, help="20 digits, subject serialNumber")
    issue.add_argument("--common-name", help="subject CN (default: --name)")
    issue.add_argument("--server", action="store_true", help="server profile (default client)")
    issue.add_argument(
        "--dns", action="append", help="server host name for the SAN (repeat; default localhost)"
    )
    issue.add_argument(
        "--ip", action="append", help="server IP address for the SAN (default 127.0.0.1, ::1)"
    )
    issue.add_argument("--days", type=int, default=90)
    issue.add_argument("--passphrase-file", type=Path, help=pw_help)
    issue.add_argument("--force", action="store_true", help="replace an existing party dir")
    issue.set_defaults(func=_issue)
