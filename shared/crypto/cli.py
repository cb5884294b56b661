"""Key and registry commands shared by ``svb-client keys …`` and ``uwv-server keys …``.

    keys signing-init --key FILE --owner NAME        a new Ed25519 key, encrypted at rest
    keys registry-add --registry FILE --key FILE --name N --organisation O --role R [...]

The passphrase comes from ``--passphrase-file`` or the ``AIO_SIGNING_PASSPHRASE``
environment variable (never from the command line, where other users could read it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from shared.crypto import at_rest
from shared.crypto.errors import KeyFileError
from shared.crypto.keys import SigningKey, read_public
from shared.crypto.registry import KeyEntry, Registry, Role

PASSPHRASE_ENV = "AIO_SIGNING_PASSPHRASE"


def read_passphrase(path: Path | None) -> bytes:
    """The passphrase from a file (first line) or from ``AIO_SIGNING_PASSPHRASE``."""
    try:
        return at_rest.read_passphrase(path, variable=PASSPHRASE_ENV)
    except at_rest.AtRestError as exc:
        raise KeyFileError(str(exc)) from None


def load_key(path: Path, passphrase_file: Path | None) -> SigningKey:
    return SigningKey.load(path, read_passphrase(passphrase_file))


def subgroup(subparsers: Any, name: str, text: str) -> Any:
    """The sub-command group ``name`` of ``subparsers``, created if it does not exist yet."""
    if name in subparsers.choices:
        parser = subparsers.choices[name]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
        return parser.add_subparsers(dest=f"{name}_command", required=True)
    parser = subparsers.add_parser(name, help=text)
    return parser.add_subparsers(dest=f"{name}_command", required=True)


def _signing_init(args: argparse.Namespace) -> int:
    key = SigningKey.generate(args.owner)
    key.save(args.key, read_passphrase(args.passphrase_file))
    print(f"created signing key {key.key_id} for {args.owner} in {args.key}")
    print(f"public key: {key.public.to_b64()}")
    return 0


def _registry_add(args: argparse.Namespace) -> int:
    public = read_public(args.key)
    entry = KeyEntry(
        name=args.name,
        organisation=args.organisation,
        roles=frozenset(Role(r) for r in args.role),
        public_key=public.to_b64(),
    )
    registry = (
        Registry.from_file(args.registry) if args.registry.exists() else Registry(keys=())
    ).with_key(entry)
    tmp = args.registry.with_name(args.registry.name + ".tmp")
    tmp.write_text(registry.to_yaml())
    os.replace(tmp, args.registry)
    print(f"added {args.name} ({public.key_id}) as {', '.join(args.role)} to {args.registry}")
    return 0


def add_key_commands(subparsers: Any) -> None:
    """Add ``keys signing-init`` and ``keys registry-add`` to a CLI's top-level sub-commands."""
    keys = subgroup(subparsers, "keys", "manage keys")
    init = keys.add_parser("signing-init", help="create an Ed25519 signing key (encrypted)")
    init.add_argument("--key", type=Path, required=True)
    init.add_argument("--owner", required=True, help="a label, e.g. svb-rules or uwv-runner")
    init.add_argument("--passphrase-file", type=Path)
    init.set_defaults(func=_signing_init)
    add = keys.add_parser("registry-add", help="add a key's public half to a key registry")
    add.add_argument("--registry", type=Path, required=True)
    add.add_argument("--key", type=Path, required=True, help="the key file (no passphrase needed)")
    add.add_argument("--name", required=True)
    add.add_argument("--organisation", required=True)
    add.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])
    add.set_defaults(func=_registry_add)
