"""``aio-audit``: the auditor's command over a file export of the log.

Subcommands (``aio-audit <command> --help`` for details)::

    verify             recompute the tree, check the checkpoint signature and root
    prove-inclusion    prove that entry INDEX is in the signed tree
    prove-consistency  prove that the log only grew since an earlier checkpoint
    list               list the runs: time, mode, rule digest, requester, approvals
    witness            cosign the export's checkpoint after a consistency check
    keygen             make an Ed25519 key for a witness (or a test log)

Exit status: 0 verified, 1 verification failed or bad input (one line on
stderr saying why), 2 wrong usage. Never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.audit.auditor import VerifiedLog, prove_consistency, prove_inclusion, verify_export
from shared.audit.export import load_export
from shared.audit.note import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    NoteSigner,
    NoteVerifier,
    parse_skey,
    parse_vkey,
)
from shared.audit.proofs import consistency_proof
from shared.audit.witness import Witness
from shared.client_channel import add_channel_arguments
from shared.errors import Error

EXIT_OK = 0
EXIT_FAIL = 1


def _read_arg(value: str) -> str:
    """A key given inline, or ``@path`` to read it from a file."""
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise _Fail(f"cannot read {value[1:]}: {exc}") from None
    return value


class _Fail(Exception):
    """A failure of the command line itself (unreadable file), reported like a domain error."""


def _log_key(args: argparse.Namespace) -> NoteVerifier | None:
    return None if args.log_key is None else parse_vkey(_read_arg(args.log_key))


def _verified(args: argparse.Namespace) -> VerifiedLog:
    witnesses = [parse_vkey(_read_arg(k)) for k in getattr(args, "witness_key", None) or []]
    return verify_export(
        load_export(args.export),
        _log_key(args),
        witnesses,
        min_cosigners=getattr(args, "min_cosigners", 0),
    )


def _trust_note(log: VerifiedLog) -> str:
    if log.key_from_export:
        return " (log key taken from the export itself: pass --log-key to use a key you trust)"
    return ""


def _witness_note(args: argparse.Namespace, log: VerifiedLog) -> str:
    """Say so when nothing witnessed the checkpoint: a split view cannot then be excluded."""
    if getattr(args, "witness_key", None) and getattr(args, "min_cosigners", 0) > 0:
        return ""
    return (
        "\nWARNING: verified without a witness (no --witness-key with --min-cosigners): this "
        "proves the export matches the log's own signature, not that other auditors see the "
        "same log. A log operator can show each auditor a different, internally consistent "
        "history (a split view); require cosignatures by at least one witness you trust, "
        "or compare this checkpoint with another auditor's (docs/audit.md, 'Split views')."
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    log = _verified(args)
    head = log.head
    when = head.signed_at.isoformat() if head.signed_at else "unknown time"
    cosigned = ", ".join(log.checkpoint.cosigners) or "none"
    print(
        f"OK: log {head.origin}: {head.size} entries match the checkpoint root "
        f"{head.root_hash.hex()} signed at {when}; cosigned by: {cosigned}{_trust_note(log)}"
        f"{_witness_note(args, log)}"
    )
    return EXIT_OK


def _cmd_prove_inclusion(args: argparse.Namespace) -> int:
    log = _verified(args)
    result = prove_inclusion(log, args.index)
    print(
        f"OK: entry {result.index} (run {log.entries[result.index].run_id}) is in the tree of "
        f"{result.size} entries with root {result.root_hash.hex()}{_trust_note(log)}"
    )
    print(f"leaf hash {result.leaf_hash.hex()}")
    for i, h in enumerate(result.proof):
        print(f"proof[{i}] {h.hex()}")
    return EXIT_OK


def _cmd_prove_consistency(args: argparse.Namespace) -> int:
    log = _verified(args)
    key = _log_key(args) or parse_vkey(log.export.log_key)
    try:
        old_text = Path(args.old_checkpoint).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Fail(f"cannot read {args.old_checkpoint}: {exc}") from None
    result = prove_consistency(log, old_text, key)
    print(
        f"OK: the log only grew: {result.old.size} -> {result.new.size} entries, "
        f"the first {result.old.size} are unchanged{_trust_note(log)}"
    )
    for i, h in enumerate(result.proof):
        print(f"proof[{i}] {h.hex()}")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    log = _verified(args)
    print(f"# {log.head.origin}: {log.head.size} runs, verified{_trust_note(log)}")
    print("index\tfinished_at\tmode\trule_digest\trequester\thouseholds\tapprovals")
    for i, e in enumerate(log.entries):
        approvals = ",".join(a.approver for a in e.approvals) or "-"
        print(
            f"{i}\t{e.finished_at.isoformat()}\t{e.mode.value}\t{e.rule_digest}\t"
            f"{e.requester}\t{e.household_count}\t{approvals}"
        )
    return EXIT_OK


def _cmd_witness(args: argparse.Namespace) -> int:
    log_key = parse_vkey(_read_arg(args.log_key))
    log = verify_export(load_export(args.export), log_key)
    signer = parse_skey(_read_arg("@" + args.key))
    witness = Witness(signer, {log.head.origin: log_key}, args.state)
    prior = witness.last_seen(log.head.origin)
    proof: list[bytes] = []
    if prior is not None and prior.size <= log.head.size:
        # The proof comes from the export's own tree; the witness checks it against
        # the root *it* stored, so a rewritten export cannot pass.
        proof = consistency_proof(log.tree, prior.size, log.head.size)
    now = datetime.fromtimestamp(args.now, UTC) if args.now is not None else datetime.now(UTC)
    cosigned = witness.cosign(log.checkpoint.text(), proof, now)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.write_text(cosigned, encoding="utf-8")
    since = f"consistent with size {prior.size}" if prior else "first checkpoint seen for this log"
    print(f"OK: cosigned {log.head.origin} at size {log.head.size} ({since})", file=sys.stderr)
    if out is None:
        sys.stdout.write(cosigned)
    return EXIT_OK


def _cmd_keygen(args: argparse.Namespace) -> int:
    sig_type = SIG_TYPE_COSIGNATURE_V1 if args.cosigner else SIG_TYPE_ED25519
    signer = NoteSigner(args.name, Ed25519PrivateKey.generate(), sig_type)
    path = Path(args.out)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(signer.unsafe_export_skey() + "\n")
    print(signer.verifier.vkey())
    return EXIT_OK


def _cmd_fetch(args: argparse.Namespace) -> int:
    from shared.audit.fetch import fetch_export  # gRPC only for this command
    from shared.client_channel import channel_security

    size = fetch_export(
        args.server, Path(args.out), security=channel_security(args), timeout=args.timeout
    )
    print(f"fetched {size} entries and the signed checkpoint into {args.out}")
    print("next: aio-audit verify " + args.out + " --log-key KEY (a key you got out of band)")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aio-audit", description="Verify and witness an export of the AIO audit log offline."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_export(p: argparse.ArgumentParser, *, key_required: bool = False) -> None:
        p.add_argument("export", help="the export file (JSON lines)")
        p.add_argument(
            "--log-key",
            required=key_required,
            help="the log's verifier key (name+id+base64, or @file); default: the export's own",
        )

    p = sub.add_parser("verify", help="recompute the tree and check the signed checkpoint")
    with_export(p)
    p.add_argument("--witness-key", action="append", help="a trusted witness key (repeatable)")
    p.add_argument("--min-cosigners", type=int, default=0, help="cosignatures required")
    p.set_defaults(run=_cmd_verify)

    p = sub.add_parser("prove-inclusion", help="prove that an entry is in the signed tree")
    with_export(p)
    p.add_argument("index", type=int, help="entry index, from 0")
    p.set_defaults(run=_cmd_prove_inclusion)

    p = sub.add_parser("prove-consistency", help="prove the log only grew since a checkpoint")
    with_export(p)
    p.add_argument("old_checkpoint", help="file with an earlier signed checkpoint")
    p.set_defaults(run=_cmd_prove_consistency)

    p = sub.add_parser("list", help="list the runs with rule digests and approvals")
    with_export(p)
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("witness", help="cosign the checkpoint after a consistency check")
    with_export(p, key_required=True)
    p.add_argument("--key", required=True, help="file with the witness's signer key")
    p.add_argument("--state", required=True, help="witness state file (created if missing)")
    p.add_argument("--out", help="write the cosigned checkpoint here (default: stdout)")
    p.add_argument("--now", type=int, help="cosignature time, POSIX seconds (default: clock)")
    p.set_defaults(run=_cmd_witness)

    p = sub.add_parser("fetch", help="fetch UWV's log over gRPC into an export file")
    p.add_argument("--server", required=True, help="UWV server HOST:PORT")
    p.add_argument("--out", required=True, help="export file to write (JSON lines)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    add_channel_arguments(p)  # mutual TLS with the auditor's certificate by default
    p.set_defaults(run=_cmd_fetch)

    p = sub.add_parser("keygen", help="make a new Ed25519 signer key file, print its vkey")
    p.add_argument("name", help="key name, e.g. ap.nl/witness")
    p.add_argument("--out", required=True, help="new file for the secret key (mode 0600)")
    p.add_argument("--cosigner", action="store_true", help="a witness key (cosignature/v1)")
    p.set_defaults(run=_cmd_keygen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except Error as exc:
        print(f"aio-audit: FAIL: {exc.diagnostics()}", file=sys.stderr)
    except _Fail as exc:
        print(f"aio-audit: FAIL: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"aio-audit: FAIL: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
    except Exception as exc:  # last resort: the auditor gets a line, not a traceback
        print(f"aio-audit: FAIL: internal error {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
