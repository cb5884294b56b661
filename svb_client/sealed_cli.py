"""``svb-client screen --request-out FILE`` / ``--response FILE``: a batch through sealed files.

    svb-client screen --households H --period P --mode masked --out O --request-out batch.req
        (carry batch.req and batch.req.meta.json to UWV; UWV runs `uwv-server process`)
    svb-client screen --households H --period P --mode masked --out O --response batch.resp
        (the same command with the response: verifies, decrypts, writes O as online)

Identities come from the development PKI's party directories (``--pki DIR``, see
docs/identity.md): SVB signs with ``svb/``, opens answers with ``svb-sealing/``, and seals the
request to UWV's ``uwv-sealing/cert.pem``; each can be given on its own. The journal records
which request file (id and SHA-256) the batch awaits an answer to, so a response to any other
request is refused.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import Error
from shared.pki.keystore import read_passphrase
from shared.sealed import (
    DEFAULT_CHUNK_SIZE,
    InReplyTo,
    SealedSummary,
    check_sidecar,
    read_sidecar,
    sidecar_path,
)
from shared.sealed.parties import (
    load_receiver,
    load_recipient,
    load_sender,
    replies_from,
    trust_anchors,
)
from svb_client.journal import Journal
from svb_client.wire.sealed_transport import SealedRequestTransport, SealedResponseTransport
from svb_client.wire.transport import Transport

AWAITING_NOTE = "sealed_request"


def _add_pki_arguments(parser: argparse.ArgumentParser) -> None:
    """SVB's identities and UWV's sealing certificate, as every sealed-file command names them."""
    parser.add_argument("--pki", type=Path, default=Path("pki"), help="PKI directory (sealed)")
    parser.add_argument("--signing", type=Path, help="SVB's signing identity (default PKI/svb)")
    parser.add_argument(
        "--sealing", type=Path, help="SVB's sealing identity (default PKI/svb-sealing)"
    )
    parser.add_argument(
        "--uwv-sealing-cert",
        type=Path,
        help="UWV's sealing certificate (default PKI/uwv-sealing/cert.pem)",
    )
    parser.add_argument(
        "--pki-passphrase-file",
        type=Path,
        help="passphrase of the PKI keys (default: $AIO_PKI_PASSPHRASE)",
    )


def add_screen_arguments(screen: argparse.ArgumentParser) -> None:
    files = screen.add_mutually_exclusive_group()
    files.add_argument(
        "--request-out",
        type=Path,
        help="write the batch as one sealed request file for UWV (no network) and stop",
    )
    files.add_argument(
        "--response",
        type=Path,
        help="read UWV's sealed response to the request this journal awaits; write --out",
    )
    _add_pki_arguments(screen)
    screen.add_argument(
        "--sealed-chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="plaintext bytes per authenticated chunk of a request file (default 1 MiB)",
    )


def add_rule_arguments(submit: argparse.ArgumentParser) -> None:
    """``rules submit`` through files: the bundle as a sealed file, UWV's answer from one."""
    files = submit.add_mutually_exclusive_group()
    files.add_argument(
        "--request-out", type=Path, help="write the signed bundle as a sealed file for UWV; stop"
    )
    files.add_argument(
        "--response",
        type=Path,
        help="read UWV's sealed answer to the submission file given with --request",
    )
    submit.add_argument("--request", type=Path, help="the submission file --response answers")
    _add_pki_arguments(submit)


def _request_transport(
    args: argparse.Namespace,
    out: Path,
    on_sealed: Callable[[SealedSummary], None],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SealedRequestTransport:
    """A request file to ``out``, signed as SVB and sealed to UWV, asking for the reply to be
    sealed to SVB's sealing certificate."""
    pki: Path = args.pki
    passphrase = read_passphrase(args.pki_passphrase_file)
    _, reply_cert = load_receiver(args.sealing or pki / "svb-sealing", passphrase)
    return SealedRequestTransport(
        out,
        sender=load_sender(args.signing or pki / "svb", passphrase),
        recipient=load_recipient(args.uwv_sealing_cert or pki / "uwv-sealing" / "cert.pem"),
        reply_certificate=reply_cert,
        clock=_now,
        on_sealed=on_sealed,
        chunk_size=chunk_size,
    )


def _response_transport(
    args: argparse.Namespace, uwv_oin: str, awaiting: InReplyTo
) -> SealedResponseTransport:
    """UWV's response file ``--response``, opened with SVB's sealing key, from ``uwv_oin``,
    answering the request ``awaiting``."""
    sealing = args.sealing or args.pki / "svb-sealing"
    receiver, _ = load_receiver(sealing, read_passphrase(args.pki_passphrase_file))
    return SealedResponseTransport(
        args.response,
        receiver=receiver,
        senders=replies_from(uwv_oin, trust_anchors(sealing), _now),
        awaiting=awaiting,
    )


def _journal_note(journal: Path) -> str | None:
    """What the batch's journal says it awaits (:data:`AWAITING_NOTE`), if anything."""
    j = Journal(journal)
    try:
        return j.note(AWAITING_NOTE)
    finally:
        j.close()


def rule_transport_for(args: argparse.Namespace) -> Transport | None:
    """The sealed-file transport of ``rules submit``, or None for the network.

    The answer is bound to the submission file through that file's sidecar (its message id
    and SHA-256, checked against the file itself)."""
    if args.request_out is None and args.response is None:
        return None
    if args.request_out is not None:
        return _request_transport(args, args.request_out, on_sealed=lambda summary: None)
    if args.request is None:
        raise Error("--response needs --request FILE: the submission file it answers")
    car = read_sidecar(sidecar_path(args.request))
    check_sidecar(args.request, car)
    return _response_transport(
        args, car.receiver.oin, InReplyTo(message_id=car.message_id, sha256=car.checksum.value)
    )


def in_flight(args: argparse.Namespace) -> int:
    """Chunks sent ahead of their answers: all of them for a request file (no answer comes
    until UWV's response file), else ``--in-flight``."""
    return REQUEST_FILE_IN_FLIGHT if args.request_out is not None else int(args.in_flight)


REQUEST_FILE_IN_FLIGHT = 1 << 30


def _now() -> datetime:
    return datetime.now(UTC)


def transport_for(args: argparse.Namespace, journal: Path) -> Transport | None:
    """The sealed-file transport the arguments ask for, or None for the network."""
    if args.request_out is None and args.response is None:
        return None
    if args.request_out is not None:
        if journal.exists():
            waiting = _journal_note(journal)
            if waiting is not None and not args.fresh:
                raise Error(
                    f"{journal}: this batch already awaits the response to "
                    f"{json.loads(waiting)['path']}; run with --response FILE, or --fresh to "
                    "start the batch over"
                )
        out: Path = args.request_out

        def on_sealed(summary: SealedSummary) -> None:
            j = Journal(journal)
            try:
                j.set_note(
                    AWAITING_NOTE,
                    json.dumps(
                        {
                            "message_id": summary.header.message_id,
                            "sha256": summary.sha256,
                            "path": str(out),
                            "uwv_oin": summary.header.receiver.oin,
                        }
                    ),
                )
            finally:
                j.close()

        return _request_transport(args, out, on_sealed, args.sealed_chunk_size)
    if not journal.exists():
        raise Error(f"{journal}: no journal; write the request first with --request-out")
    note = _journal_note(journal)
    if note is None:
        raise Error(
            f"{journal}: this batch awaits no sealed response (it was not written with "
            "--request-out)"
        )
    waiting = json.loads(note)
    return _response_transport(
        args,
        waiting["uwv_oin"],
        InReplyTo(message_id=waiting["message_id"], sha256=waiting["sha256"]),
    )


def report(transport: Transport | None) -> None:
    """What a deferred batch left behind: the request file to carry to UWV."""
    if isinstance(transport, SealedRequestTransport) and transport.written is not None:
        w = transport.written
        print(
            f"sealed request: {transport.path} ({w.size:,} bytes, sha256 {w.sha256[:16]}…) and "
            f"{transport.path.name}.meta.json; carry both to UWV (uwv-server process), then run "
            "the same command with --response FILE"
        )
